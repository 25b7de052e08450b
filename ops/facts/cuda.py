"""CUDA toolkits present: /usr/local/cuda-* and nvcc on PATH, with the version nvcc reports."""

from __future__ import annotations

import re

_RELEASE = re.compile(r"release (\d+\.\d+), V([\d.]+)")


def command(_vars: dict) -> str:
    return ('for d in /usr/local/cuda-*; do [ -x "$d/bin/nvcc" ] && echo "@@toolkit $d" && "$d/bin/nvcc" --version; '
            'done; '
            'n=$(command -v nvcc) && echo "@@path $n" && nvcc --version; true')


def parse(text: str) -> dict:
    toolkits: list[dict] = []
    on_path = None
    for block in text.split("@@")[1:]:
        head, _, body = block.partition("\n")
        kind, _, location = head.partition(" ")
        match = _RELEASE.search(body)
        entry = {"path": location.strip(), "version": match[1] if match else None,
                 "build": match[2] if match else None}
        if kind == "toolkit":
            toolkits.append(entry)
        elif kind == "path":
            on_path = entry
    return {"toolkits": toolkits, "nvcc_on_path": on_path}
