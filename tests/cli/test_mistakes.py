"""A careless operator's mistakes end in a clear usage error (exit 2), never in a silent default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.cli.main import VERBS
from tests.conftest import run_cli

# The least each verb needs to get past its own argument parsing.
VERB_ARGS = {"doctor": ["gpu-1"], "facts": ["gpu-1"], "provision": ["gpu-1", "--check"],
             "export-script": ["gpu-1"], "deploy": ["render", "--host", "gpu-1"], "serve": ["--check"],
             "accept": ["smoke", "--url", "http://127.0.0.1:9"], "demo": ["--out", "demo"]}


def test_every_verb_is_covered() -> None:
    assert set(VERB_ARGS) == set(VERBS)


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_named_inventory_that_does_not_exist_stops_every_verb(verb: str, how: str, tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.yaml"
    args, env = (["-i", str(missing)], None) if how == "flag" else ([], {"FLASHHEAD_INVENTORY": str(missing)})
    done = run_cli(*args, verb, *VERB_ARGS[verb], "-o", "json", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)
    assert error["error"] == "InventoryError" and f"{missing} does not exist" in error["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, nothing started


def test_the_implicit_default_inventory_may_be_absent(tmp_path: Path) -> None:
    done = run_cli("export-script", "@local", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("#!/usr/bin/env bash"), done.stderr


def test_a_misspelt_var_stops_provision_and_names_the_closest(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  gpu-1: {connector: local}\nvars: {modle_type: pro}\n")
    done = run_cli("-i", str(inventory), "doctor", "gpu-1")
    assert done.returncode == 2 and "modle_type: unknown var (did you mean model_type?)" in done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_cli("provision", "@local", "--check", "--var", "flashhead_comit=abc", cwd=elsewhere)
    assert done.returncode == 2 and "did you mean flashhead_commit?" in done.stderr, done.stderr
