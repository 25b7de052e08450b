"""Host patterns: which inventory hosts a HOSTS argument names, as Ansible's patterns do.

    all               every host of the inventory
    gpu               the members of group `gpu`
    gpu-1             one host
    gpu-*             hosts (and groups' members) whose name matches, fnmatch-style (* ? [seq])
    gpu,edge-1        a comma list: the union of its terms
    gpu,!gpu-3        a term starting with `!` takes hosts out

The result keeps the inventory's host order. A term that matches nothing is an error (with the nearest
name), so a typo never silently shrinks a run.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from ops.errors import UsageError

if TYPE_CHECKING:
    from ops.inventory import Host, Inventory

GLOB_CHARACTERS = "*?["


def is_host_pattern(spec: str, inventory: Inventory) -> bool:
    """Whether a HOST argument names several hosts (a group, `all`, a glob or a list) rather than one
    host (an inventory name, `user@address[:port]` or `@local`). The form decides, not the count: a
    group of one host still gets the fleet output."""
    from ops.inventory import ADHOC_HOST, ALL

    if spec in inventory.hosts or spec == "@local":
        return False
    if spec == ALL or spec in inventory.groups:
        return True
    if ADHOC_HOST.match(spec):
        return False
    return "," in spec or spec.startswith("!") or any(char in spec for char in GLOB_CHARACTERS)


def select_hosts(pattern: str, inventory: Inventory) -> list[Host]:
    """The hosts a pattern names, in inventory order; a usage error for a term that matches nothing."""
    terms = [term.strip() for term in pattern.split(",")]
    if any(not term or term == "!" for term in terms):
        raise UsageError(f"host pattern {pattern!r} has an empty term", "separate host names, groups and "
                         "globs by single commas, e.g. gpu,edge-1 or gpu-*,!gpu-3")
    chosen: set[str] = set()
    for term in terms:
        if not term.startswith("!"):
            chosen |= _matches(term, inventory)
    if all(term.startswith("!") for term in terms):
        chosen = set(inventory.hosts)
    for term in terms:
        if term.startswith("!"):
            chosen -= _matches(term[1:], inventory)
    if not chosen:
        raise UsageError(f"host pattern {pattern!r} leaves no host", "check the pattern against the inventory's "
                         f"hosts ({', '.join(inventory.hosts) or 'none'}) and groups "
                         f"({', '.join(inventory.groups) or 'none'})")
    return [host for name, host in inventory.hosts.items() if name in chosen]


def _matches(term: str, inventory: Inventory) -> set[str]:
    from ops.inventory import ALL, closest

    if term == ALL:
        names = set(inventory.hosts)
    elif term in inventory.hosts:
        names = {term}
    elif term in inventory.groups:
        names = set(inventory.groups[term].hosts)
    else:
        names = {name for name in inventory.hosts if fnmatch.fnmatchcase(name, term)}
        for group in inventory.groups.values():
            if fnmatch.fnmatchcase(group.name, term):
                names |= set(group.hosts)
    if not names:
        where = inventory.path or "the inventory (none found)"
        choices = [*inventory.hosts, *inventory.groups, ALL]
        raise UsageError(f"no host or group of {where} matches {term!r}{closest(term, choices)}",
                         f"hosts: {', '.join(inventory.hosts) or 'none'}; groups: "
                         f"{', '.join([*inventory.groups, ALL])}; a pattern is a name, a group, a glob "
                         "(gpu-*) or a comma list of these")
    return names
