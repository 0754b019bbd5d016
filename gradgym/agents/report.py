"""``compare``: several agents x seeds on one robot under one budget, written to a run folder.

The folder gets ``results.json`` (every run's curve, config and metrics),
``results.csv`` (one row per curve point), ``report.md`` (a table per agent)
and ``curves_steps.png`` / ``curves_wall.png``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from gradgym.agents import get_agent, stats
from gradgym.checks import is_int
from gradgym.fileio import atomic_write


def compare(
    robot: str,
    agents: list[str],
    seeds: int,
    budget: int,
    out: str | os.PathLike,
    *,
    episode_length: int | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    devices: int | None = None,
    jobs: int = 1,
    log_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Trains every agent for every seed in ``range(seeds)``; writes and returns the results.

    Args:
        robot: robot name.
        agents: agent names (e.g. ``["apg", "ppo", "es", "sb3"]``).
        seeds: number of seeds per agent.
        budget: env steps per run (``total_steps``).
        out: run folder (created).
        episode_length: episode limit; ``None`` = the robot's Gymnasium limit.
        overrides: per-agent config overrides, ``{"ppo": {"num_envs": 64}}``.
        progress: print progress lines.
        devices: split each JAX agent's env batch over this many of ``jax.devices()``
            (``None`` = all); see :func:`gradgym.agents.train`.
        jobs: worker processes, each pinned to one CPU core; the agents are dealt out to them (an agent's
            seeds stay in one process, so its programs compile once). ``1``: everything in this process.
        log_dir: TensorBoard/CSV training logs, one subfolder per run (see :class:`gradgym.agents.logs.TrainLog`).
    """
    from gradgym.agents.checkpoint import env_options
    from gradgym.envs.core import make
    from gradgym.envs.robots import get_robot

    for a in agents:
        get_agent(a)
    if not is_int(seeds):
        raise ValueError(f"seeds must be a positive int, got {seeds!r}.")
    if not is_int(budget):
        raise ValueError(f"budget must be a positive int (env steps), got {budget!r}.")
    if not is_int(jobs):
        raise ValueError(f"jobs must be a positive int (worker processes), got {jobs!r}.")
    episode_length = episode_length or get_robot(robot).max_episode_steps
    env = make(robot, episode_length=episode_length)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"robot": robot, "env": env_options(env), "budget": budget, "seeds": seeds,
                               "jobs": jobs, "agents": {}}
    t_start = time.perf_counter()
    tasks = {name: (name, robot, episode_length, seeds, {"total_steps": budget, **(overrides or {}).get(name, {})},
                    progress, devices, None if log_dir is None else str(log_dir)) for name in agents}
    if jobs == 1:
        runs = {name: agent_runs(*task) for name, task in tasks.items()}
    else:
        runs = _run_in_workers(tasks, jobs)
    for name in agents:
        results["agents"][name] = {"runs": runs[name], **aggregate(runs[name])}
    results["total_wall_s"] = time.perf_counter() - t_start
    write_results(results, out)
    return results


def agent_runs(name: str, robot: str, episode_length: int, seeds: int, cfg: dict[str, Any], progress: bool,
               devices: int | None, log_dir: str | None) -> list[dict[str, Any]]:
    """Every seed of one agent, in this process (so its compiled programs are shared); their summaries."""
    from gradgym.agents.trainer import train
    from gradgym.envs.core import make

    env = make(robot, episode_length=episode_length)
    return [train(name, env, cfg, seed, progress=progress, devices=devices, log_dir=log_dir).summary()
            for seed in range(seeds)]


#: Rough cost order for dealing agents out to workers (the costliest first): gradient agents, then sb3.
COST_ORDER = ("shac", "apg", "sb3", "ppo", "es")


def _run_in_workers(tasks: dict[str, tuple], jobs: int) -> dict[str, list[dict[str, Any]]]:
    """Deals the agents out round-robin, costliest first, to ``jobs`` worker processes, one per CPU core.

    Each worker is a fresh interpreter (``python -m gradgym.agents.worker``: no JAX runtime is forked, and
    callers need no ``if __name__ == "__main__"`` guard) pinned to its core, so XLA sizes its thread pool
    to it; it reads its tasks as JSON on stdin and writes the run summaries as JSON on stdout.
    """
    import subprocess
    import sys

    order = sorted(tasks, key=lambda n: COST_ORDER.index(n) if n in COST_ORDER else len(COST_ORDER))
    shares = [order[i::jobs] for i in range(jobs)]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    procs = []
    for i, share in enumerate(s for s in shares if s):
        job = {"core": cores[i % len(cores)] if cores else None, "tasks": [tasks[n] for n in share]}
        proc = subprocess.Popen([sys.executable, "-m", "gradgym.agents.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        procs.append((share, proc))
    runs: dict[str, list[dict[str, Any]]] = {}
    failed = []
    for share, proc in procs:
        out = proc.stdout.read()
        if proc.wait() != 0:
            failed.append(f"{', '.join(share)} (exit {proc.returncode})")
            continue
        runs.update(zip(share, json.loads(out), strict=True))
    if failed:
        raise RuntimeError(f"compare worker(s) failed: {'; '.join(failed)}; their errors are printed above. "
                           "Rerun with jobs=1 (--jobs 1) to train in this process.")
    return runs


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Statistics over seeds: mean/std and an interval for the final return, the area under the curve
    and the gain over the initial policy (see :mod:`gradgym.agents.stats`), plus the run statistics."""
    m = lambda k: np.asarray([r["metrics"].get(k, np.nan) for r in runs], np.float64)  # noqa: E731
    final = m("final_return")
    areas = [stats.auc(r["curve"]["env_steps"], r["curve"]["returns"]) for r in runs]
    agg = {"final_return_mean": float(final.mean()), "final_return_std": float(final.std()),
           "initial_return_mean": float(m("initial_return").mean()), "env_steps": float(m("env_steps").mean()),
           "wall_s": float(m("wall_s").mean()), "steps_per_s": float(m("steps_per_s").mean()),
           "skipped_updates": float(m("skipped_updates").sum()),
           "final": stats.estimate(final), "auc": stats.estimate(areas),
           "gain": stats.learned(m("initial_return"), final)}
    for k in ("grad_norm_mean", "grad_norm_median", "grad_norm_max", "alpha_mean", "alpha_median", "gi_alpha_median",
              "gi_alpha_max"):
        v = m(k)
        if np.isfinite(v).any():
            agg[k] = float(np.nanmax(v) if k.endswith("_max") else np.nanmean(v))
    return agg


def write_results(results: dict[str, Any], out: Path) -> None:
    """Writes results.json, results.csv, report.md and the PNG curves (each atomically)."""
    from gradgym.agents.plots import plot_curves

    atomic_write(out / "results.json", json.dumps(results, indent=1).encode())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["agent", "seed", "env_steps", "wall_s", "return"])
    for name, agent in results["agents"].items():
        for r in agent["runs"]:
            c = r["curve"]
            for s, t, ret in zip(c["env_steps"], c["wall_s"], c["returns"], strict=True):
                w.writerow([name, r["seed"], s, f"{t:.3f}", f"{ret:.6g}"])
    atomic_write(out / "results.csv", buf.getvalue().encode())
    plot_curves(results, out)
    atomic_write(out / "report.md", render_markdown(results).encode())


GRADIENT_AGENTS = ("apg", "hybrid", "shac")  # agents whose gradient is (in part) the simulator's own (norms reported)


def mean_curve(runs: list[dict[str, Any]], x: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean-over-seeds learning curve against ``x`` (``env_steps`` or ``wall_s``), on the first run's grid."""
    xs = np.asarray([r["curve"][x] for r in runs], np.float64).mean(0)
    ys = np.asarray([r["curve"]["returns"] for r in runs], np.float64).mean(0)
    return xs, ys


def return_at(runs: list[dict[str, Any]], x: str, at: float) -> float:
    """Mean return of the last evaluation at or before ``at`` (a step function of the curve)."""
    xs, ys = mean_curve(runs, x)
    idx = np.nonzero(xs <= at + 1e-9)[0]
    return float(ys[idx[-1]]) if idx.size else float(ys[0])


def time_to_reach(runs: list[dict[str, Any]], x: str, target: float) -> float | None:
    """First ``x`` at which the mean curve reaches ``target`` (``None`` if it never does)."""
    xs, ys = mean_curve(runs, x)
    hit = np.nonzero(ys >= target)[0]
    return float(xs[hit[0]]) if hit.size else None


def _fmt(e: dict[str, float]) -> str:
    """``184.3 [150.2, 210.9]``: a point estimate over seeds with its 95% bootstrap interval."""
    return f"{e['value']:.1f} [{e['low']:.1f}, {e['high']:.1f}]"


def _ranking_text(what: str, estimates: dict[str, dict[str, float]]) -> str:
    winner, tied = stats.rank(estimates)
    if winner is not None:
        return f"{what} **{winner}** won ({_fmt(estimates[winner])}, its interval clear of every other agent's)"
    return (f"{what} **{' and '.join(tied)}** tie (intervals overlap: "
            + "; ".join(f"{a} {_fmt(estimates[a])}" for a in tied) + ")")


def wall_clock_estimates(agents: dict[str, Any]) -> tuple[float, dict[str, dict[str, float]]]:
    """Every agent's return (per seed, then over seeds) at the moment the fastest agent had spent its budget."""
    t_common = min(float(np.mean([r["curve"]["wall_s"][-1] for r in a["runs"]])) for a in agents.values())
    return t_common, {n: stats.estimate([return_at([r], "wall_s", t_common) for r in a["runs"]])
                      for n, a in agents.items()}


def verdict(results: dict[str, Any]) -> str:
    """Who won per env step and per wall-clock second, with intervals; who did not learn; the gradient evidence.

    A winner is named only where its 95% bootstrap interval over seeds lies above every other agent's;
    otherwise the agents whose intervals overlap the best one's tie. An agent whose gain over its initial
    policy (final - initial, per seed) has an interval reaching 0 "did not learn at this budget".
    """
    agents = results["agents"]
    stat = next(iter(agents.values()))["final"]["stat"]
    per_step = _ranking_text("per env step", {n: a["final"] for n, a in agents.items()})
    t_common, at_t = wall_clock_estimates(agents)
    per_sec = _ranking_text(f"per wall-clock second (return after {t_common:.3g} s, when the fastest agent had "
                            "spent its budget)", at_t)
    text = (f"**Verdict** ({stat} of {results['seeds']} seed(s), 95% bootstrap intervals, "
            f"{results['budget']:,} env steps): {per_step}; {per_sec}.")
    flat = [n for n, a in agents.items() if not a["gain"]["learned"]]
    if flat:
        text += (f" Did not learn at this budget (final - initial not clearly above 0): {', '.join(flat)}.")
    why = []
    for n in agents:
        a = agents[n]
        if n in GRADIENT_AGENTS and "grad_norm_median" in a:
            why.append(f"{n}'s gradient norm (before clipping) median {a['grad_norm_median']:.3g}, "
                       f"max {a['grad_norm_max']:.3g}, {a['skipped_updates']:.0f} skipped updates")
        if "alpha_mean" in a:
            why.append(f"{n} weighted the analytic gradient by {a['alpha_mean']:.2f} on average (median "
                       f"{a['alpha_median']:.2f}; 1 = all analytic, 0 = all likelihood-ratio)")
        if "gi_alpha_median" in a:
            why.append(f"{n} stepped toward its alpha-policy with alpha median {a['gi_alpha_median']:.3g}, max "
                       f"{a['gi_alpha_max']:.3g} (pre-tanh action units per unit of advantage gradient)")
    if why:
        text += f" Evidence: {'; '.join(why)}."
    return text


def render_markdown(results: dict[str, Any]) -> str:
    """The report: the verdict, one table row per agent, then notes on what the columns mean."""
    env = results["env"]
    agents = results["agents"]
    stat = next(iter(agents.values()))["final"]["stat"]
    lines = [
        f"# gradgym compare: {results['robot']}",
        "",
        verdict(results),
        "",
        f"Budget {results['budget']:,} env steps per run, {results['seeds']} seed(s), backend {env['backend']}, "
        f"episode length {env['episode_length']}. Total wall-clock {results.get('total_wall_s', 0):.0f} s.",
        "",
        f"| agent | final return, {stat} [95% CI] | area under curve [95% CI] | gain over initial [95% CI] | "
        "learned | env steps | wall-clock s | steps/s | grad norm mean / median / max | skipped updates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    winner, _ = stats.rank({n: a["final"] for n, a in agents.items()})
    for name, a in agents.items():
        g = "–"
        if "grad_norm_mean" in a and name in GRADIENT_AGENTS:
            g = f"{a['grad_norm_mean']:.3g} / {a['grad_norm_median']:.3g} / {a['grad_norm_max']:.3g}"
        star = " **(winner)**" if name == winner else ""
        gain = a["gain"]
        lines.append(
            f"| {name}{star} | {_fmt(a['final'])} | {_fmt(a['auc'])} | "
            f"{gain['gain']:.1f} [{gain['low']:.1f}, {gain['high']:.1f}] | {'yes' if gain['learned'] else 'no'} | "
            f"{a['env_steps']:,.0f} | {a['wall_s']:.1f} | {a['steps_per_s']:,.0f} | {g} | {a['skipped_updates']:.0f} |"
        )
    lines += [
        "",
        "Return: deterministic (mean) policy on the same fixed evaluation episodes for every agent and seed.",
        f"Intervals: 95% percentile bootstrap over seeds of the {stat} (IQM from {stats.IQM_MIN_SEEDS} seeds on).",
        "Area under curve: the average evaluation return over training (trapezoids over env steps).",
        "Learned: the interval of the per-seed gain (final - initial return) lies above 0.",
        "Wall-clock: training time including JIT compilation, excluding evaluation. Gradient norms are",
        "global norms before clipping (apg, hybrid, shac). Skipped updates: non-finite gradients, skipped, never",
        "applied. The hybrid's weight of the analytic gradient (alpha, per update) is in the verdict's evidence.",
        "",
        "![return vs env steps](curves_steps.png)",
        "![return vs wall-clock](curves_wall.png)",
        "",
    ]
    return "\n".join(lines)
