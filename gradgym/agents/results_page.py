"""The results page: stored training runs as tables and learning curves per robot.

:func:`write_results_page` reads a folder of stored runs and its manifest
(:mod:`gradgym.agents.stored_results`) and writes one Markdown page with, per
robot, a table (every agent and budget: seeds, final and best return as a mean
over seeds with a 95% bootstrap interval, wall-clock, env steps/s, the command
that reproduces the row) and a two-panel figure (return vs env steps and vs
wall-clock, mean over seeds with the interval shaded). Planned runs with no
stored JSON appear as rows that say which command to run.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shlex
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gradgym.agents.stats import bootstrap_ci
from gradgym.agents.stored_results import (
    MANIFEST,
    PlannedRun,
    ResultsError,
    StoredRun,
    check_unique,
    load_manifest,
    load_results,
)
from gradgym.fileio import atomic_write

PAGE_COMMAND = "python scripts/results_page.py"
__all__ = ["ResultsError", "Row", "group_rows", "load_manifest", "load_results", "plot_robot", "render_page",
           "render_table", "write_results_page"]


@dataclasses.dataclass
class Row:
    """One table row: the stored runs of (robot, agent, budget, label) and the matching plan, if any."""

    robot: str
    agent: str
    budget: int
    label: str
    runs: list[StoredRun]
    planned: PlannedRun | None = None

    @property
    def name(self) -> str:
        """The agent, with the variant's label in parentheses."""
        return f"{self.agent} ({self.label})" if self.label else self.agent

    def missing_seeds(self) -> list[int]:
        """Seeds the manifest plans (``range(seeds)``) that are not stored."""
        have = {r.seed for r in self.runs}
        return [s for s in range(self.planned.seeds) if s not in have] if self.planned else []


def group_rows(runs: Sequence[StoredRun], planned: Sequence[PlannedRun] = ()) -> dict[str, list[Row]]:
    """Rows per robot (sorted by robot, then budget and agent): stored runs grouped, plans attached."""
    rows: dict[tuple, Row] = {}
    for r in runs:
        key = (r.robot, r.agent, r.budget, r.label)
        rows.setdefault(key, Row(*key, runs=[])).runs.append(r)
    for p in planned:
        key = (p.robot, p.agent, p.budget, p.label)
        rows.setdefault(key, Row(*key, runs=[])).planned = p
    by_robot: dict[str, list[Row]] = {}
    for key in sorted(rows, key=lambda k: (k[0], k[2], k[1], k[3])):
        row = rows[key]
        row.runs.sort(key=lambda r: r.seed)
        _check_same_config(row)
        by_robot.setdefault(key[0], []).append(row)
    return by_robot


IGNORED_FIELDS = ("total_steps", "num_evals", "eval_episodes")  # do not change what a run learns


def _check_same_config(row: Row) -> None:
    """Seeds of one row must share a config (up to budget and evaluation), or their mean mixes variants."""
    strip = lambda r: {k: v for k, v in r.config.items() if k not in IGNORED_FIELDS}  # noqa: E731
    for r in row.runs[1:]:
        if strip(r) != strip(row.runs[0]):
            diff = sorted(k for k in strip(r).keys() | strip(row.runs[0]).keys()
                          if strip(r).get(k) != strip(row.runs[0]).get(k))
            raise ResultsError(f"{r.source}: {row.agent} on {row.robot} seed {r.seed} has another config than "
                               f"seed {row.runs[0].seed} in {row.runs[0].source} (fields {', '.join(diff)}); "
                               "give the variant a distinct \"label\".")


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _steps(n: int) -> str:
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return f"{n:,}"


def _mean_ci(values: list[float]) -> str:
    if len(values) < 2:
        return f"{_num(values[0])} (1 seed, no interval)"
    low, high = bootstrap_ci(values)
    return f"{_num(float(np.mean(values)))} [{_num(low)}, {_num(high)}]"


def _command(row: Row) -> str:
    if row.planned is not None:
        return f"`{row.planned.loop([r.seed for r in row.runs])}`"
    cmds = sorted({r.command for r in row.runs if r.command})
    if cmds:
        return "<br>".join(f"`{c}`" for c in cmds)
    seeds = " ".join(str(r.seed) for r in row.runs)
    return (f"`for S in {seeds}; do gradgym train --agent {row.agent} --env {row.robot} --budget {row.budget} "
            "--seed $S; done` (defaults at the time; the exact config is in the JSON)")


def render_table(rows: list[Row]) -> str:
    """A Markdown table: one line per row; rows without stored runs say what to run."""
    lines = ["| agent | seeds | budget (env steps) | final return, mean [95% CI] | best return, mean [95% CI] | "
             "wall-clock s | env steps/s | reproduce |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        want = row.planned.seeds if row.planned else len(row.runs)
        missing = row.missing_seeds()
        if not row.runs:
            note = f" ({row.planned.note})" if row.planned.note else ""
            lines.append(f"| {row.name} | 0 of {want} | {_steps(row.budget)} | – | – | – | – | not stored yet{note}: "
                         f"run `{row.planned.loop(missing)}` then `{PAGE_COMMAND}` |")
            continue
        m = {k: [r.metric(k) for r in row.runs] for k in ("final_return", "best_return", "wall_s", "steps_per_s")}
        seeds = f"{len(row.runs)}" + (f" of {want}" if missing else "")
        todo = f"; missing seeds {', '.join(map(str, missing))}: run `{row.planned.loop(missing)}`" if missing else ""
        lines.append(f"| {row.name} | {seeds} | {_steps(row.budget)} | {_mean_ci(m['final_return'])} | "
                     f"{_mean_ci(m['best_return'])} | {np.mean(m['wall_s']):,.0f} | "
                     f"{np.mean(m['steps_per_s']):,.0f} | {_command(row)}{todo} |")
    return "\n".join(lines)


def _common_grid(runs: list[StoredRun], x_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Every seed's returns on the union of the seeds' evaluation points.

    Returns (x, returns[seed, x]); between evaluation points the curves are interpolated linearly, and after
    its last one a run keeps its final return (it has finished: its policy is the final one). This matters on
    the wall-clock axis, where the seeds of one process differ by the compile that only the first one pays.
    """
    xs = [np.asarray(r.curve[x_key], np.float64) for r in runs]
    grid = np.unique(np.concatenate(xs))
    return grid, np.stack([np.interp(grid, x, r.curve["returns"]) for x, r in zip(xs, runs, strict=True)])


def plot_robot(robot: str, rows: list[Row], path: str | os.PathLike) -> Path:
    """Writes the robot's learning-curve PNG: return vs env steps and vs wall-clock, one line per row.

    Each line is the mean over seeds (curves interpolated onto a common grid, a
    finished run holding its final return); the band is the 95% bootstrap interval
    of that mean.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (x_key, label) in zip(axes, (("env_steps", "environment steps"),
                                         ("wall_s", "wall-clock seconds (training)")), strict=True):
        for row in (r for r in rows if r.runs):
            x, ys = _common_grid(row.runs, x_key)
            ci = np.array([bootstrap_ci(col) for col in ys.T])
            line, = ax.plot(x, ys.mean(0), label=f"{row.name}, {_steps(row.budget)} (n={len(row.runs)})")
            ax.fill_between(x, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.2)
        ax.set_xlabel(label)
        ax.set_title(f"{robot}: return vs {label.split(' (')[0]}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("evaluation return")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write(path, buf.getvalue())


def render_page(by_robot: dict[str, list[Row]], figures: dict[str, str], command: str,
                manifest: str = MANIFEST, title: str = "Results") -> str:
    """The whole page; ``figures`` maps a robot to its PNG's path and ``manifest`` is the manifest's,
    both relative to the page."""
    lines = [f"# {title}", "",
             f"Generated by `{command}` from the JSON files of stored runs; do not edit by hand. Each row is one "
             "agent at one budget (a label names a variant of its config); the run's config is in its JSON. Return: the deterministic "
             "policy on fixed evaluation episodes; final = the last evaluation, best = the best one of the run. "
             "Brackets: 95% percentile bootstrap interval of the mean over seeds (10,000 resamples; with 3 seeds "
             "it is close to the seeds' range). Wall-clock: training including compilation, excluding evaluation; "
             "it and env steps/s depend on the machine. To add a run, save its JSON in that folder (`gradgym train "
             "... --out <folder>/<name>.json`, or a `gradgym compare` `results.json`) and rerun the command.", ""]
    missing = []
    for robot, rows in by_robot.items():
        lines += [f"## {robot}", "", render_table(rows), ""]
        if robot in figures:
            lines += [f"![{robot}: return vs env steps and vs wall-clock]({figures[robot]})", ""]
        else:
            lines += ["No stored curves yet.", ""]
        missing += [f"- {robot}, {row.name}, {_steps(row.budget)}: seeds {', '.join(map(str, row.missing_seeds()))}"
                    for row in rows if row.missing_seeds()]
    lines += ["## Missing runs", ""]
    lines += ([f"Planned in [{MANIFEST}]({manifest}) but not stored yet:", "", *missing] if missing
              else ["Every planned run is stored."])
    return "\n".join(lines) + "\n"


def write_results_page(results: str | os.PathLike, out: str | os.PathLike,
                       figures: str | os.PathLike | None = None, also: Sequence[str | os.PathLike] = (),
                       title: str = "Results") -> list[Path]:
    """Reads ``results`` (run JSONs + ``manifest.json``), writes the page ``out`` and one PNG per robot.

    Args:
        results: folder of stored result JSONs and the manifest.
        out: the Markdown page to write.
        figures: folder for the PNGs (``<robot>.png``); ``None`` = ``results``.
        also: more folders of stored runs (their manifests are not read), e.g. variants beside the
            main runs; a run stored in two folders is an error.
        title: the page's heading.

    Returns:
        The written paths, the page last.
    """
    results, out = Path(results), Path(out)
    fig_dir = Path(figures) if figures is not None else results
    runs = load_results(results) + [run for folder in also for run in load_results(folder)]
    check_unique(runs)
    by_robot = group_rows(runs, load_manifest(results / MANIFEST))
    written, rel = [], {}
    for robot, rows in by_robot.items():
        if any(r.runs for r in rows):
            written.append(plot_robot(robot, rows, fig_dir / f"{robot}.png"))
            rel[robot] = Path(os.path.relpath(written[-1], out.parent)).as_posix()
    command = f"{PAGE_COMMAND} --results {results.as_posix()} --out {out.as_posix()}"
    command += "".join(f" --also {Path(folder).as_posix()}" for folder in also)
    if figures is not None:
        command += f" --figures {fig_dir.as_posix()}"
    if title != "Results":
        command += f" --title {shlex.quote(title)}"
    manifest = Path(os.path.relpath(results / MANIFEST, out.parent)).as_posix()
    written.append(atomic_write(out, render_page(by_robot, rel, command, manifest, title).encode()))
    return written
