"""Deploy the inference server on Kubernetes, Helm-style: one action per module.

render → diff → apply (server-side apply, prune, revision) → wait (rollout with reasons) →
status / history / rollback / delete. Actions take a `Cluster` handle and options and return data;
`ops/cli/deploy.py` binds the flags. Nothing here imports `kubernetes` at module level.
"""
