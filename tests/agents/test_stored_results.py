"""Every stored run's command still rebuilds the config the run was trained with.

The results pages print a command beside every stored run (the manifest's ``{seed}`` template where the
manifest plans the run's row, else the run's own ``command``). When a robot's default changes, a command that relied on
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
from gradgym.agents.results_page import group_rows
from gradgym.agents.stored_results import MANIFEST, StoredRun, load_manifest, load_results
from gradgym.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"
FOLDERS = ("results", "shac_variants")


def stored_runs() -> list[tuple[StoredRun, str]]:
    """(run, command) for every stored run of ``gradgym train``, with the command its results page
    prints: the manifest's template where the row is planned, else the run's own. Runs of a ``gradgym compare``
    results.json are left out (their command is the compare's)."""
    runs = []
    for folder in FOLDERS:
        planned = load_manifest(DOCS / folder / MANIFEST)
        for rows in group_rows(load_results(DOCS / folder), planned).values():
            for row in rows:
                for r in row.runs:
                    if "agents" in json.loads(r.source.read_text()):  # a compare result
                        continue
                    command = row.planned.command.format(seed=r.seed) if row.planned else r.command
                    assert command, f"{r.source}: no command and no manifest entry for its row"
                    runs.append((r, command))
    return runs


RUNS = stored_runs()


def test_the_stored_runs_are_found():
    assert len(RUNS) >= 40
    assert {r.source.parent.name for r, _ in RUNS} == set(FOLDERS)


@pytest.mark.parametrize("run,command", RUNS, ids=[f"{r.source.parent.name}/{r.source.stem}" for r, _ in RUNS])
def test_a_stored_command_rebuilds_its_config(run, command):
    argv = shlex.split(command)
    assert argv[:2] == ["gradgym", "train"], f"{run.source}: {command!r} is not a gradgym train command"
    args = build_parser().parse_args(argv[1:])
    assert (args.agent, args.env, args.seed) == (run.agent, run.robot, run.seed)
    rebuilt = get_agent(args.agent).default_config(args.env, train_overrides(args)).to_dict()
    stored = run.config
    moved = {k: (stored.get(k, "<class default>"), rebuilt.get(k, "<class default>"))
             for k in sorted(set(stored) | set(rebuilt)) if stored.get(k) != rebuilt.get(k)}
    assert not moved, f"{run.source}: its command now trains another config, (stored, rebuilt) = {moved}"
