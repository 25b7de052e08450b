"""The `flashhead` backend: SoulX-FlashHead's cloned repository and checkpoints behind the server.

- paths.py: where the repository, checkpoints and compile cache are (all from the server config);
- backend.py: `FlashheadBackend` (start-up checks, per-stream state, the Backend protocol);
- arch.py: the released architectures and `weights: random` (a capacity probe);
- engines/: what runs a chunk (`Engine` protocol in engines/base.py; `pipeline` and `fast`).

Importing this package imports nothing heavy; the backend module is loaded when selected.
"""
