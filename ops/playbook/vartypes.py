"""What a play var's value may be: the type of its default, and for text the format the playbook names.

A playbook's `formats:` block maps a format to the vars that must have it (a list var: each item).
Vars not named keep the type of their default (text, number, true/false, list, mapping). Checked
after the inventory's vars and `--var` are merged and expanded, before anything connects: a bad
value is a usage error naming the var. Every value still reaches the host's shell quoted; this
check is what turns `cuda_version: "12.8; rm -rf /"` into a clear message instead.
"""

from __future__ import annotations

import re
from typing import Any

from ops.errors import UsageError
from ops.inventory import MODEL_TYPES

# format -> (pattern the whole text must match, what it looks like)
FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "version": (re.compile(r"[0-9][0-9A-Za-z]*([.+-][0-9A-Za-z]+)*"), "a version like 12.8, 1.1-1 or 2.8.0.post2"),
    "commit": (re.compile(r"[0-9a-f]{40}"), "a 40-hex git commit"),
    "path": (re.compile(r"/[^\x00-\x1f\x7f]*"), "an absolute path (no control characters)"),
    "program": (re.compile(r"[A-Za-z0-9_./+-]+"), "a program name or path like python3.10 or /usr/bin/python3"),
    "name": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*"), "a name of letters, digits, '.', '_' and '-'"),
    "url": (re.compile(r"[^\s\x00-\x1f\x7f]+"), "a URL or a host path without spaces"),
    "repo": (re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*"), "a hub repo id like org/name"),
    "ref": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*"), "a branch, tag or commit"),
    "module": (re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"), "a dotted Python module name"),
    "uv_mode": (re.compile(r"auto|always|never"), "auto, always or never"),
    "model_type": (re.compile("|".join(MODEL_TYPES)), " or ".join(MODEL_TYPES)),
}
_KINDS = ((bool, "true or false"), ((int, float), "a number"), (str, "text"), (list, "a list"),
          (dict, "a mapping"))


def _kind(value: Any) -> tuple[Any, str] | None:
    for types, label in _KINDS:
        if isinstance(value, types) and (types is bool or not isinstance(value, bool)):
            return types, label
    return None


def parse_formats(raw: Any, source: str, var_names: set[str]) -> dict[str, str]:
    """The `formats:` block → {var: format}; unknown formats and vars are usage errors."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: `formats` must map a format to a list of vars")
    formats: dict[str, str] = {}
    for name, names in raw.items():
        if name not in FORMATS:
            raise UsageError(f"{source}: formats.{name}: unknown format", f"formats: {', '.join(FORMATS)}")
        for var in names or []:
            if var not in var_names:
                raise UsageError(f"{source}: formats.{name}: {var!r} is not a var of the play")
            formats[str(var)] = str(name)
    return formats


def check_value(name: str, value: Any, default: Any, fmt: str | None) -> None:
    """Raise a UsageError naming var `name` when `value` is not of its default's kind or its format."""
    kind = _kind(default)
    if kind is not None and _kind(value) != kind and not (kind[0] == (int, float) and _kind(value) == kind):
        raise UsageError(f"var {name}: {value!r} is not {kind[1]} (its default is {default!r})",
                         f"set {name} to {kind[1]}; on the command line: --var {name}=<YAML value>")
    if isinstance(value, list):
        items_default = default[0] if isinstance(default, list) and default else None
        for item in value:
            if isinstance(item, (list, dict)):
                raise UsageError(f"var {name}: the item {item!r} is not a single value")
            check_value(name, item, items_default, fmt)
        return
    if isinstance(value, dict):
        sample = next(iter(default.values()), None) if isinstance(default, dict) and default else None
        for key, item in value.items():
            check_value(f"{name}.{key}", item, sample, fmt)
        return
    if fmt and isinstance(value, str) and not (value == "" and default == ""):
        pattern, looks = FORMATS[fmt]
        if not pattern.fullmatch(value):
            raise UsageError(f"var {name}: {value!r} is not {looks}", f"set {name} to {looks}")


def check_vars(values: dict[str, Any], defaults: dict[str, Any], formats: dict[str, str]) -> None:
    """Check every var the play defines (after merging and expansion) against its default and format."""
    for name, default in defaults.items():
        if name in values:
            check_value(name, values[name], default, formats.get(name))
