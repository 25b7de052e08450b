"""Python interpreters available on the host (and uv, which builds venvs faster)."""

from __future__ import annotations

CANDIDATES = ("python3", "python3.10", "python3.11", "python3.12", "python3.13")


def command(_vars: dict) -> str:
    names = " ".join(CANDIDATES)
    return (f'for p in {names}; do b=$(command -v "$p") || continue; '
            'v=$("$b" -c "import sys; print(\'%d.%d.%d\' % sys.version_info[:3])" 2>/dev/null) || continue; '
            'echo "python $b $v"; done; '
            'u=$(command -v uv) && echo "uv $u $(uv --version | cut -d" " -f2)"; '
            '"$(command -v python3 || echo false)" -c "import venv, ensurepip" >/dev/null 2>&1 && echo venv yes; true')


def parse(text: str) -> dict:
    interpreters, seen, uv = [], set(), None
    venv_ok = False
    for line in text.splitlines():
        kind, *rest = line.split()
        if kind == "python" and len(rest) == 2:
            path, version = rest
            if (path, version) not in seen:
                seen.add((path, version))
                interpreters.append({"path": path, "version": version})
        elif kind == "uv" and len(rest) == 2:
            uv = {"path": rest[0], "version": rest[1]}
        elif kind == "venv":
            venv_ok = True
    return {"interpreters": interpreters, "uv": uv, "venv_module": venv_ok}
