"""`flashhead deploy rollback [REVISION]`: re-apply a recorded revision as a new one."""

from __future__ import annotations

import click

from ops.cli.common import App, pass_app
from ops.cli.deploy.apply import draw_apply, showing_what_was_done
from ops.cli.deploy.flags import apply_options, cluster_options, connect


@click.command()
@click.argument("revision", type=int, required=False)
@cluster_options
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the rollout until ready.")
@click.option("--timeout", default="30m", show_default=True, help="How long --wait waits.")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@pass_app
def rollback(app: App, revision: int | None, kubeconfig: str | None, context: str | None,
             namespace: str | None, wait: bool, timeout: str, force_conflicts: bool) -> None:
    """Re-apply REVISION (default: the previous good one) as a new revision."""
    from ops.deploy.rollback import rollback as roll_back

    cluster = connect(kubeconfig, context, namespace)
    with showing_what_was_done(app, cluster.namespace):
        result = roll_back(cluster, revision, apply_options(app, wait, timeout, force_conflicts=force_conflicts))
    app.output.result(result, draw_apply)
