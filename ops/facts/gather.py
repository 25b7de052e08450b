"""Run every probe in one round trip and parse the sections."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ops.facts import cuda, disk, gpu, memory, osinfo, python

if TYPE_CHECKING:
    from ops.connectors.base import Connector

FACTS_SCHEMA = "flashhead.facts/v2"
PROBES = {"os": osinfo, "memory": memory, "disk": disk, "python": python, "gpu": gpu, "cuda": cuda}
MARKER = "@@@fact:"


def probe_script(vars: dict) -> str:
    """One shell script that prints each probe's output after a marker line."""
    parts = [f"echo '{MARKER}{name}'; ( {module.command(vars)} ) 2>&1" for name, module in PROBES.items()]
    return "\n".join(parts)


def split_sections(output: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    for chunk in output.split(MARKER)[1:]:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body
    return sections


def parse_facts(output: str, host_name: str) -> dict:
    """Pure: the probe script's output → the facts document (schema FACTS_SCHEMA), without verdicts."""
    sections = split_sections(output)
    facts: dict = {"schema": FACTS_SCHEMA, "host": host_name}
    for name, module in PROBES.items():
        facts[name] = module.parse(sections.get(name, ""))
    return facts


def gather_facts(connector: Connector, vars: dict[str, Any]) -> dict:
    """Probe the host read-only and return its facts, with the verdicts of the play's requirements
    (`vars`: the play's vars for this host, see ops.playbook.load.play_vars)."""
    from ops.facts.requirements import check_host, summary

    started = time.monotonic()
    result = connector.run(probe_script(vars), check=False, timeout=120)
    facts = parse_facts(result.stdout, connector.host.name)
    facts["verdicts"] = summary(check_host(facts, vars))
    facts["probe_seconds"] = round(time.monotonic() - started, 3)
    return facts
