"""apply: server-side apply of the rendered objects, prune of what we created before, a revision.

The order of one apply: check the namespace → wait for objects of the same name still being
deleted (writing into one is lost when it goes) → plan (the server's dry-run answer against the live
objects, diff.py) → send only the objects that change → prune owned objects no longer rendered →
record the revision → wait (optional) → on failure with `atomic`, roll back to the previous revision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops.deploy import history, terminating
from ops.deploy.cluster import Cluster
from ops.deploy.diagnose import Progress
from ops.deploy.diff import Change, plan
from ops.deploy.kinds import HISTORY_NAME, object_key
from ops.deploy.render import Rendered, to_yaml
from ops.deploy.wait import wait_for_rollout
from ops.errors import FlashheadError, RolloutFailed, UsageError

DRY_RUN_MODES = ("none", "client", "server")


@dataclass
class ApplyOptions:
    """How to apply: dry run, prune, wait, atomic, conflicts."""

    dry_run: str = "none"
    prune: bool = True
    wait: bool = True
    timeout: float = 1800.0
    poll: float = 2.0
    atomic: bool = False
    force_conflicts: bool = False
    create_namespace: bool = False
    on_progress: Callable[[Progress], None] | None = None
    on_waiting: Callable[[str], None] | None = None  # what apply waits for before it writes


@dataclass
class ApplyResult:
    """What apply did (or, in a dry run, would do)."""

    namespace: str
    overlay: str
    dry_run: str
    changes: list[Change] = field(default_factory=list)
    revision: int | None = None
    noop: bool = False
    rollout: dict[str, Any] | None = None
    namespace_created: bool = False
    sent: list[str] = field(default_factory=list)  # applied or pruned, in order

    @property
    def changed(self) -> list[str]:
        return [c.key for c in self.changes if c.action != "unchanged"]


def apply(cluster: Cluster, rendered: Rendered, options: ApplyOptions | None = None) -> ApplyResult:
    """Apply a rendered overlay (a new revision unless nothing changed)."""
    options = options or ApplyOptions()
    description = "upgrade" if cluster.namespace_exists() is not False and history.load(cluster) else "install"
    return apply_objects(cluster, rendered.objects, rendered.overlay, rendered.values, description, options)


def apply_objects(cluster: Cluster, objects: list[dict[str, Any]], overlay: str, values: dict[str, Any],
                  description: str, options: ApplyOptions) -> ApplyResult:
    """The shared core of apply and rollback."""
    if options.dry_run not in DRY_RUN_MODES:
        raise UsageError(f"--dry-run={options.dry_run}: expected one of {', '.join(DRY_RUN_MODES)}")
    result = ApplyResult(cluster.namespace, overlay, options.dry_run)
    if options.dry_run == "client" and cluster.namespace_exists() is False:
        result.changes = [Change(object_key(o), "create") for o in objects]
        return result
    result.namespace_created = cluster.require_namespace(
        create=options.create_namespace and options.dry_run == "none")
    if options.dry_run == "none":
        _await_deletions(cluster, objects, options)
    result.changes = plan(cluster, objects, prune=options.prune, force=options.force_conflicts,
                          validate_creates=options.dry_run == "server")
    if options.dry_run != "none":
        return result
    try:
        _send(cluster, objects, result, options)
        revisions = history.load(cluster)
        if not result.changed and revisions:
            result.noop, result.revision = True, revisions[-1].revision
        else:
            result.revision = history.record(cluster, overlay, values, to_yaml(objects), description).revision
        if options.wait:
            result.rollout = _wait(cluster, result, revisions, options)
    except FlashheadError as error:
        # What was done before the failure: the plan, what was sent, the revision (text mode prints them).
        error.details.update(revision=result.revision, changes=result.changes, sent=result.sent)
        raise
    return result


def _await_deletions(cluster: Cluster, objects: list[dict[str, Any]], options: ApplyOptions) -> None:
    """Objects of these names (and the history) still being deleted must be gone before apply writes."""
    going = []
    for kind, name in [(o["kind"], o["metadata"]["name"]) for o in objects] + [("ConfigMap", HISTORY_NAME)]:
        live = cluster.get(kind, name)
        if live is not None and terminating.since(live):
            going.append(live)
    if going:
        terminating.wait_gone(cluster, going, options.timeout, min(options.poll, 1.0), options.on_waiting)


def _send(cluster: Cluster, objects: list[dict[str, Any]], result: ApplyResult, options: ApplyOptions) -> None:
    actions = {change.key: change.action for change in result.changes}
    for obj in objects:
        if actions.get(object_key(obj)) in ("create", "update"):
            cluster.apply(obj, force=options.force_conflicts)
            result.sent.append(object_key(obj))
    for change in result.changes:
        if change.action == "prune":
            kind, name = change.key.split("/", 1)
            cluster.delete(kind, name)
            result.sent.append(change.key)


def _wait(cluster: Cluster, result: ApplyResult, earlier: list[history.Revision],
          options: ApplyOptions) -> dict[str, Any]:
    """Follow the rollout (wait_for_rollout records its outcome on the revision); --atomic undoes a failure."""
    try:
        progress = wait_for_rollout(cluster, options.timeout, options.poll, on_progress=options.on_progress)
    except RolloutFailed as failure:
        if options.atomic and not result.noop:
            failure.details["atomic"] = _undo(cluster, earlier, result, options)
        raise
    return {"complete": True, "progress": progress.summary(), "history": progress.history_note}


def _undo(cluster: Cluster, earlier: list[history.Revision], result: ApplyResult,
          options: ApplyOptions) -> str:
    """--atomic: back to the last good revision (its rollout followed too), or remove what this apply created."""
    from ops.deploy.render import from_yaml

    good = [r for r in earlier if r.status in history.GOOD]
    if good:
        target = good[-1]
        undo_options = ApplyOptions(prune=True, wait=True, timeout=options.timeout, poll=options.poll,
                                    force_conflicts=options.force_conflicts, on_progress=options.on_progress)
        try:
            undone = apply_objects(cluster, from_yaml(target.manifest), target.overlay, target.values,
                                   f"rollback to {target.revision} (atomic)", undo_options)
        except RolloutFailed as failure:
            return f"rolled back to revision {target.revision}, but that rollout failed too: {failure.message}"
        return f"rolled back to revision {target.revision} (as revision {undone.revision})"
    created = [c.key for c in result.changes if c.action == "create"]
    for key in reversed(created):
        kind, name = key.split("/", 1)
        cluster.delete(kind, name)
    return f"deleted the objects this apply created: {', '.join(created) or 'none'}"
