"""The result model of an acceptance run: named checks with measured values, grouped in a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

Measured = dict[str, Any]


@dataclass
class CheckResult:
    """One named check. `ok` is None when the check was skipped because an earlier one failed."""

    name: str
    ok: bool | None
    detail: str = ""
    measured: Measured = field(default_factory=dict)
    threshold: str | None = None  # e.g. "fps_per_stream >= 25"
    source: str | None = None  # where the threshold comes from
    remedy: str | None = None
    seconds: float = 0.0
    error: bool = False  # the check could not run to a verdict (server unreachable, refused us)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return {True: "pass", False: "fail", None: "skipped"}[self.ok]


@dataclass
class AcceptanceReport:
    """The outcome of `accept smoke` or `accept fps`: every check, plus run-wide measurements."""

    suite: str  # smoke | fps
    url: str
    profile: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    seconds: float = 0.0
    server: dict[str, Any] = field(default_factory=dict)  # /v1/info
    measurements: dict[str, Any] = field(default_factory=dict)  # warm-up, per-stream numbers
    checks: list[CheckResult] = field(default_factory=list)
    error: dict[str, Any] | None = None  # the error that stopped the run early (FlashheadError.to_dict)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok is not False for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.ok is False]

    def add(self, name: str, ok: bool | None, detail: str = "", **extra: Any) -> CheckResult:
        check = CheckResult(name, ok, detail, **extra)
        self.checks.append(check)
        return check

    def skip_rest(self, names: list[str], reason: str) -> None:
        """Record checks that could not run, so reports always list the whole suite."""
        done = {c.name for c in self.checks}
        for name in names:
            if name not in done:
                self.checks.append(CheckResult(name, None, reason))

    def to_dict(self) -> dict[str, Any]:
        from ops.output import to_jsonable

        data = to_jsonable(self)
        data["ok"] = self.ok
        for check, raw in zip(data["checks"], self.checks, strict=True):
            check["status"] = raw.status
        return dict(data)
