"""Read-only probes of a host. Each fact module has a probe command and a pure parser.

`gather_facts` runs every probe in one round trip and returns a dict with a stable schema
(`FACTS_SCHEMA`), with the verdicts of the play's host requirements (ops/facts/requirements.py).
"""

from ops.facts.gather import FACTS_SCHEMA, gather_facts

__all__ = ["FACTS_SCHEMA", "gather_facts"]
