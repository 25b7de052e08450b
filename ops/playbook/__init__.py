"""The playbook engine: load a play, expand its vars, run its steps (check → diff → apply)."""
