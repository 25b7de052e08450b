"""The CI examples: valid YAML, every `flashhead` command in them parses, reports are kept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli

EXAMPLES = [REPO / "ci" / "github-actions-acceptance.yml", REPO / "ci" / "gitlab-acceptance.yml"]


def flashhead_commands(path: Path) -> list[list[str]]:
    """`flashhead …` command lines, continuation lines joined, CI variables replaced by a word."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    text = re.sub(r"\$\{\{[^}]*\}\}", "x", text)
    commands = []
    for line in text.splitlines():
        line = line.strip().removeprefix("- ").strip()
        if line.startswith("flashhead "):
            words = shlex.split(line.split(" || ")[0])
            commands.append([re.sub(r"\$\{?\w+\}?", "x", word) for word in words])
    return commands


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_flashhead_command_in_the_example_parses(path: Path) -> None:
    commands = flashhead_commands(path)
    verbs = {" ".join(command[1:3]) for command in commands}
    assert {"accept smoke", "accept fps", "deploy apply"} <= verbs
    for command in commands:
        result = run_cli(*command[1:], "--help")
        assert result.returncode == 0, (command, result.stderr)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_keeps_junit_and_json_and_passes_no_token_in_argv(path: Path) -> None:
    text = path.read_text()
    yaml.safe_load(text)
    for command in flashhead_commands(path):
        if command[1] == "accept":
            assert "--junit" in command and "--report" in command
            assert not any("token" in word.lower() for word in command)
    assert "--profile" in text and "port-forward svc/flashhead" in text
    assert "reports/" in text


def test_gitlab_example_publishes_junit_as_a_report() -> None:
    job = yaml.safe_load(EXAMPLES[1].read_text())["flashhead-acceptance"]
    assert job["artifacts"]["reports"]["junit"] == "reports/*.xml"
    assert job["artifacts"]["when"] == "always"


def test_github_example_uploads_reports_even_on_failure() -> None:
    steps = yaml.safe_load(EXAMPLES[0].read_text())["jobs"]["accept"]["steps"]
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "${{ always() }}" and upload["with"]["path"] == "reports/"
