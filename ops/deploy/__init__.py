"""Deploy the inference server on Kubernetes, Helm-style: one action per module.

render → diff → apply (server-side apply, prune, revision) → wait (rollout with reasons) →
status / history / rollback / delete. Actions take a `Cluster` handle and options and return data;
`ops/cli/deploy/` binds the flags, one module per verb. What changes is decided by the server
(dry-run applies); objects being deleted are waited for; every pod the Deployment owns is looked at.
Nothing here imports `kubernetes` at module level.
"""
