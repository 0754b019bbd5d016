"""Every stored run's command still rebuilds the config the run was trained with.

The results pages print a command beside every stored run (its own ``command``, or the manifest's
``{seed}`` template under ``docs/results``). When a robot's default changes, a command that relied on
the old default silently trains something else; this test names the file and the fields that moved.
It parses each command with the real ``gradgym`` parser and builds the config as ``gradgym train`` does.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from gradgym.agents import get_agent
from gradgym.agents.cli import train_overrides
from gradgym.agents.stored_results import MANIFEST, load_manifest
from gradgym.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"
FOLDERS = ("results", "shac_variants")


def stored_runs() -> list[tuple[Path, dict, str]]:
    """(file, run summary, command) for every single-run JSON in the stored-results folders."""
    runs = []
    for folder in FOLDERS:
        planned = {(p.robot, p.agent, p.budget, p.label): p.command for p in load_manifest(DOCS / folder / MANIFEST)}
        for path in sorted((DOCS / folder).glob("*.json")):
            data = json.loads(path.read_text())
            if path.name == MANIFEST or "agents" in data:  # the manifest, a compare result
                continue
            command = data.get("command")
            if command is None:
                key = (data["robot"], data["agent"], data["config"]["total_steps"], data.get("label", ""))
                assert key in planned, f"{path}: no command and no manifest entry for {key}"
                command = planned[key].format(seed=data["seed"])
            runs.append((path, data, command))
    return runs


RUNS = stored_runs()


def test_the_stored_runs_are_found():
    assert len(RUNS) >= 40
    assert {p.parent.name for p, _, _ in RUNS} == set(FOLDERS)


@pytest.mark.parametrize("path,data,command", RUNS, ids=[f"{p.parent.name}/{p.stem}" for p, _, _ in RUNS])
def test_a_stored_command_rebuilds_its_config(path, data, command):
    argv = shlex.split(command)
    assert argv[:2] == ["gradgym", "train"], f"{path}: {command!r} is not a gradgym train command"
    args = build_parser().parse_args(argv[1:])
    assert (args.agent, args.env, args.seed) == (data["agent"], data["robot"], data["seed"])
    rebuilt = get_agent(args.agent).default_config(args.env, train_overrides(args)).to_dict()
    stored = data["config"]
    moved = {k: (stored.get(k, "<class default>"), rebuilt.get(k, "<class default>"))
             for k in sorted(set(stored) | set(rebuilt)) if stored.get(k) != rebuilt.get(k)}
    assert not moved, f"{path}: its command now trains another config, (stored, rebuilt) = {moved}"
