"""flashhead-ops: provision, deploy and accept a SoulX-FlashHead talking-head server."""

__version__ = "0.1.0"
