"""What to do about a failed step command, from the output it left (first match wins)."""

from __future__ import annotations

import re

REMEDIES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"sudo: (a password is required|a terminal is required)"),
     "this step runs as root: give the login user passwordless sudo (`flashhead doctor HOST` checks it), "
     "or run the play as root"),
    (re.compile(r"No matching distribution found|Could not find a version that satisfies"),
     "pip cannot find that package at the configured source: check pip_index_url / torch_index_url, or "
     "put the wheel in pip_find_links (with pip_no_index for an offline wheelhouse)"),
    (re.compile(r"(unable to connect to|Could not resolve host|unable to access) .*", re.IGNORECASE),
     "the host cannot reach that server: check the URL var (flashhead_repo_url, hf_endpoint, cuda_repo_url…), "
     "DNS and proxies on the host, or point it at a mirror"),
    (re.compile(r"(401 Client Error|403 Client Error|GatedRepoError|Invalid credentials|"
                r"Access to model .* is restricted)"),
     "the hub refused the download: export HF_TOKEN (or FLASHHEAD_HF_TOKEN) with read access to the repo "
     "before running flashhead; for gated repos accept the terms on the hub first"),
    (re.compile(r"pre-staged source missing: "),
     "--source DIR must hold a copy of each snapshot folder (DIR/SoulX-FlashHead-1_3B, DIR/wav2vec2-base-960h): "
     "copy them there from a provisioned host's models/ folder, or leave --source out to fetch from the hub"),
    (re.compile(r"No space left on device"),
     "the disk filled up: free space at model_root or move it (--var model_root=...), then re-run"),
    (re.compile(r"checkpoint verification failed for "),
     "a file does not match its expected hash even after fetching it again: the source (mirror or "
     "pre-staged copy) holds a bad copy; fix it there and re-run"),
]
DEFAULT = "fix the cause shown in the output, then re-run: every step is safe to re-run"


def remedy_for(output: str) -> str:
    """The remedy for a failed command's output."""
    for pattern, remedy in REMEDIES:
        if pattern.search(output):
            return remedy
    return DEFAULT
