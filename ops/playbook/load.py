"""Load a playbook YAML, merge its vars with the host's, expand them, validate the steps."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import yaml

from ops.errors import UsageError
from ops.playbook.expand import expand, expand_vars
from ops.playbook.model import Play, StepSpec
from ops.playbook.vartypes import check_vars, parse_formats

DEFAULT_PLAYBOOK = "flashhead.yaml"  # in the shipped playbooks/ folder (see ops/bundled.py)
STEP_KEYS = {"name", "task", "args", "when"}
PLAY_KEYS = {"name", "vars", "formats", "steps"}
STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # exported scripts define bash functions named after steps


def load_play(path: str | Path | None, host_vars: dict[str, Any] | None = None) -> Play:
    """Read a playbook; host vars (inventory, --var) override the play's vars; all are expanded."""
    from ops.tasks import TASKS

    file = Path(path) if path else default_playbook()
    try:
        raw = read_yaml(file)
    except OSError as exc:
        raise UsageError(f"{file}: cannot read the playbook: {exc.strerror}", "check --playbook PATH") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{file}: not valid YAML: {exc}", "fix the YAML syntax at the line shown") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
        raise UsageError(f"{file}: a playbook is a mapping with `vars:` and a list of `steps:`")
    unknown = sorted(set(raw) - PLAY_KEYS)
    if unknown:
        raise UsageError(f"{file}: unknown top-level key(s): {', '.join(map(str, unknown))}",
                         f"a playbook has {', '.join(sorted(PLAY_KEYS))}")
    play_vars = raw.get("vars") or {}
    if not isinstance(play_vars, dict):
        raise UsageError(f"{file}: `vars` must be a mapping")
    formats = parse_formats(raw.get("formats"), str(file), set(play_vars))
    merged = {**play_vars, **coerce_overrides(host_vars or {}, play_vars)}
    variables = expand_vars(merged)
    check_vars(variables, expand_vars(play_vars), formats)
    steps = [_parse_step(item, index, file, TASKS) for index, item in enumerate(raw["steps"])]
    names = [step.name for step in steps]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"{file}: step names must be unique; repeated: {', '.join(duplicates)}")
    for step in steps:
        step.args = expand(step.args, variables)
    return Play(name=str(raw.get("name", file.stem)), path=str(file), vars=variables, steps=steps)


def read_yaml(file: Path) -> Any:
    """A YAML file, parsed once per content (with libyaml when present); a fresh copy each call."""
    stat = file.stat()
    return copy.deepcopy(_parse(str(file), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _parse(path: str, _mtime_ns: int, _size: int) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(), Loader=loader)  # noqa: S506 - a safe loader


def default_playbook() -> Path:
    """The bundled FlashHead playbook (playbooks/flashhead.yaml)."""
    from ops.bundled import bundled

    return bundled("playbooks") / DEFAULT_PLAYBOOK


def play_vars(host_vars: dict[str, Any] | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """The play's vars for a host (its inventory vars and --var over the play's defaults, expanded):
    what the host requirements, doctor and facts judge against."""
    return load_play(path, host_vars).vars


def playbook_var_names(path: str | Path | None) -> set[str]:
    """The names in a playbook's `vars:` block (the shipped playbook's for None); empty if unreadable
    (load_play reports that properly)."""
    try:
        raw = read_yaml(Path(path or default_playbook()))
    except (OSError, yaml.YAMLError):
        return set()
    play_vars = raw.get("vars") if isinstance(raw, dict) else None
    return {str(name) for name in play_vars} if isinstance(play_vars, dict) else set()


def coerce_overrides(overrides: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`--var key=value` arrives as text: parse it as YAML where the play's default is not a string."""
    coerced = {}
    for key, value in overrides.items():
        if isinstance(value, str) and key in defaults and not isinstance(defaults[key], str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise UsageError(f"--var {key}: {value!r} is not a valid value: {exc}") from exc
        coerced[key] = value
    return coerced


def _parse_step(item: Any, index: int, file: Path, tasks: dict[str, str]) -> StepSpec:
    where = f"{file}: steps[{index}]"
    if not isinstance(item, dict) or "name" not in item:
        raise UsageError(f"{where}: a step is a mapping with at least `name:`")
    unknown = set(item) - STEP_KEYS
    if unknown:
        raise UsageError(f"{where} ({item['name']}): unknown key(s) {', '.join(sorted(unknown))}",
                         f"allowed: {', '.join(sorted(STEP_KEYS))}")
    if not STEP_NAME.fullmatch(str(item["name"])):
        raise UsageError(f"{where}: step name {item['name']!r} must be letters, digits and '_'")
    task = str(item.get("task", item["name"]))
    if task not in tasks:
        raise UsageError(f"{where} ({item['name']}): unknown task {task!r}", f"known tasks: {', '.join(tasks)}")
    args = item.get("args") or {}
    if not isinstance(args, dict):
        raise UsageError(f"{where} ({item['name']}): `args` must be a mapping")
    return StepSpec(name=str(item["name"]), task=task, args=args, when=item.get("when"))


def select_steps(play: Play, only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[StepSpec]:
    """The steps to run: `--step` keeps only those named, `--skip` drops those named."""
    names = [step.name for step in play.steps]
    for name in (*only, *skip):
        if name not in names:
            raise UsageError(f"no step named {name!r} in {play.path}", f"steps: {', '.join(names)}")
    return [s for s in play.steps if (not only or s.name in only) and s.name not in skip]
