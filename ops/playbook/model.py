"""The data a play is made of and what a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Step outcomes, as printed and logged.
OK = "ok"  # already in the desired state: nothing done
CHANGED = "changed"  # applied, and the check now passes
PENDING = "pending"  # --check: would change
FAILED = "failed"
BLOCKED = "blocked"  # --check: the check found the host cannot get there (preflight's blockers)
SKIPPED = "skipped"  # left out by --step/--skip or its `when`
PROTOCOL_PREFIX = "@@"  # lines a step's scripts print for the tool (parsed, never shown)


def human_output(text: str) -> str:
    """A command's output without the `@@` protocol lines the tool parses."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(PROTOCOL_PREFIX))


@dataclass
class StepSpec:
    """One step of a play: a name, the task that implements it, its args and an optional `when`."""

    name: str
    task: str
    args: dict[str, Any] = field(default_factory=dict)
    when: str | None = None


@dataclass
class Play:
    """A loaded playbook: its vars (already merged and expanded) and its steps in order."""

    name: str
    path: str
    vars: dict[str, Any]
    steps: list[StepSpec]


@dataclass
class State:
    """What a check found. `done` means nothing to do; `changes` lists what apply would do (the diff)."""

    done: bool
    summary: str = ""
    changes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class StepResult:
    """One step's outcome in a run."""

    name: str
    status: str
    seconds: float = 0.0
    summary: str = ""
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """What a run did, step by step. `error` is set when a step failed."""

    host: str
    mode: str  # "apply" or "check"
    run_id: str
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: str | None = None
    error: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        return [s.name for s in self.steps if s.status == CHANGED]

    @property
    def pending(self) -> list[str]:
        return [s.name for s in self.steps if s.status == PENDING]

    @property
    def blocked(self) -> list[str]:
        return [s.name for s in self.steps if s.status == BLOCKED]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"host": self.host, "mode": self.mode, "run_id": self.run_id, "seconds": round(self.seconds, 3),
                "resumed_from": self.resumed_from, "notes": self.notes,
                "changed": self.changed, "pending": self.pending, "blocked": self.blocked,
                "steps": [asdict(s) for s in self.steps], "error": self.error, "ok": self.error is None}
