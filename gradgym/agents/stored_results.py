"""Stored training runs and the manifest of planned ones, read and validated for the results page.

A stored run is a JSON file holding one ``TrainResult.summary()`` (as
``gradgym train --out`` writes it; optional keys ``"command"``, ``"budget"``,
``"label"``) or a ``gradgym compare`` ``results.json`` (optional top-level
``"command"``). The manifest, ``manifest.json`` in the same folder, lists the
planned runs: ``{"planned": [{"robot", "agent", "budget", "seeds", "command",
"label"?, "note"?}]}``, each command a template with ``{seed}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
RUN_KEYS = ("agent", "robot", "seed", "config", "curve", "metrics")
CURVE_KEYS = ("env_steps", "wall_s", "returns")


class ResultsError(ValueError):
    """A stored result or the manifest cannot be read; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """One stored training run.

    Attributes:
        robot, agent, seed: what ran.
        budget: the run's env-step budget (``total_steps``).
        label: names a variant (e.g. ``"gamma 0.95"``); runs differing only in seed share it.
        curve: ``{"env_steps", "wall_s", "returns"}`` lists, one entry per evaluation.
        metrics: the run's summary metrics.
        config: the agent's config as stored.
        command: the command that produced it, if stored.
        source: the JSON file it was read from.
    """

    robot: str
    agent: str
    seed: int
    budget: int
    label: str
    curve: dict[str, list[float]]
    metrics: dict[str, float]
    config: dict[str, Any]
    command: str | None
    source: Path

    def metric(self, key: str) -> float:
        """``final_return``, ``best_return``, ``wall_s`` or ``steps_per_s``, from the curve if not stored."""
        if key in self.metrics:
            return float(self.metrics[key])
        c = self.curve
        derived = {"final_return": c["returns"][-1], "best_return": max(c["returns"]), "wall_s": c["wall_s"][-1],
                   "steps_per_s": c["env_steps"][-1] / c["wall_s"][-1] if c["wall_s"][-1] > 0 else 0.0}
        return float(derived[key])


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """A manifest entry: runs the page expects, and the command (a ``{seed}`` template) that makes them."""

    robot: str
    agent: str
    budget: int
    seeds: int
    command: str
    label: str = ""
    note: str = ""

    def loop(self, seeds: list[int]) -> str:
        """The shell command that runs ``seeds``: the template, in a loop when there are several."""
        if len(seeds) == 1:
            return self.command.format(seed=seeds[0])
        return f"for S in {' '.join(map(str, seeds))}; do {self.command.format(seed='$S')}; done"


def _require(obj: Any, keys: tuple[str, ...], path: Path, what: str) -> None:
    if not isinstance(obj, dict):
        raise ResultsError(f"{path}: {what} must be a JSON object, got {type(obj).__name__}.")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ResultsError(f"{path}: {what} lacks {', '.join(map(repr, missing))}; store a TrainResult.summary() "
                           "(gradgym train --out) or a gradgym compare results.json.")


def _run(d: dict[str, Any], path: Path, budget: Any = None, command: str | None = None) -> StoredRun:
    _require(d, RUN_KEYS, path, "a run summary")
    curve = d["curve"]
    _require(curve, CURVE_KEYS, path, "the run's 'curve'")
    lengths = {len(curve[k]) if isinstance(curve[k], list) else -1 for k in CURVE_KEYS}
    if len(lengths) != 1 or lengths.pop() < 1:
        raise ResultsError(f"{path}: the curve of {d['agent']} seed {d['seed']} needs lists "
                           f"{', '.join(CURVE_KEYS)} of one common, non-zero length.")
    budget = d.get("budget", budget if budget is not None else (d["config"] or {}).get("total_steps"))
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ResultsError(f"{path}: no integer budget for {d['agent']} seed {d['seed']}; add \"budget\" "
                           "or a config with \"total_steps\".")
    return StoredRun(str(d["robot"]), str(d["agent"]), int(d["seed"]), budget, str(d.get("label", "")),
                     {k: [float(x) for x in curve[k]] for k in CURVE_KEYS}, dict(d["metrics"] or {}),
                     dict(d["config"] or {}), d.get("command", command), path)


def load_results(folder: str | os.PathLike) -> list[StoredRun]:
    """Every stored run in ``folder/*.json`` (the manifest excepted), sorted by file name.

    Raises:
        ResultsError: a file is not valid JSON or not a run summary / compare result
            (the message names the file), or one run (robot, agent, budget, label,
            seed) is stored twice.
    """
    runs: list[StoredRun] = []
    for path in sorted(Path(folder).glob("*.json")):
        if path.name == MANIFEST:
            continue
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ResultsError(f"{path}: not valid JSON ({e}); fix or remove the file.") from e
        if isinstance(data, dict) and "agents" in data:  # a gradgym compare results.json
            _require(data, ("robot", "budget", "agents"), path, "a compare result")
            for name, agent in data["agents"].items():
                _require(agent, ("runs",), path, f"agent {name!r}")
                runs += [_run(r, path, data["budget"], data.get("command")) for r in agent["runs"]]
        else:
            runs.append(_run(data, path))
    check_unique(runs)
    return runs


def check_unique(runs: list[StoredRun]) -> None:
    """Raises :class:`ResultsError` naming both files when one run (robot, agent, budget, label, seed) is stored
    twice."""
    seen: dict[tuple, Path] = {}
    for r in runs:
        key = (r.robot, r.agent, r.budget, r.label, r.seed)
        if key in seen:
            raise ResultsError(f"{r.source}: {r.agent} on {r.robot} at {r.budget:,} steps, seed {r.seed}, is also "
                               f"stored in {seen[key]}; remove one (or give a variant a distinct \"label\").")
        seen[key] = r.source


def load_manifest(path: str | os.PathLike) -> list[PlannedRun]:
    """The planned runs of ``manifest.json`` (``[]`` if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: not valid JSON ({e}); fix the file.") from e
    _require(data, ("planned",), path, "the manifest")
    planned = []
    for i, p in enumerate(data["planned"]):
        _require(p, ("robot", "agent", "budget", "seeds", "command"), path, f"planned entry {i}")
        if "{seed}" not in p["command"]:
            raise ResultsError(f"{path}: planned entry {i}'s command must contain {{seed}} (the seed to run).")
        planned.append(PlannedRun(p["robot"], p["agent"], int(p["budget"]), int(p["seeds"]), p["command"],
                                  p.get("label", ""), p.get("note", "")))
    return planned
