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

from gradgym.agents import get_agent
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
    """
    from gradgym.agents.trainer import env_options, train
    from gradgym.envs.core import make
    from gradgym.envs.robots import get_robot

    for a in agents:
        get_agent(a)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}.")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int (env steps), got {budget!r}.")
    env = make(robot, episode_length=episode_length or get_robot(robot).max_episode_steps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"robot": robot, "env": env_options(env), "budget": budget, "seeds": seeds,
                               "agents": {}}
    t_start = time.perf_counter()
    for name in agents:
        runs = []
        for seed in range(seeds):
            cfg = {"total_steps": budget, **(overrides or {}).get(name, {})}
            runs.append(train(name, env, cfg, seed, progress=progress, devices=devices).summary())
        results["agents"][name] = {"runs": runs, **aggregate(runs)}
    results["total_wall_s"] = time.perf_counter() - t_start
    write_results(results, out)
    return results


def aggregate(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean/std over seeds of the final return and the run statistics."""
    m = lambda k: np.asarray([r["metrics"].get(k, np.nan) for r in runs], np.float64)  # noqa: E731
    final = m("final_return")
    agg = {"final_return_mean": float(final.mean()), "final_return_std": float(final.std()),
           "initial_return_mean": float(m("initial_return").mean()), "env_steps": float(m("env_steps").mean()),
           "wall_s": float(m("wall_s").mean()), "steps_per_s": float(m("steps_per_s").mean()),
           "skipped_updates": float(m("skipped_updates").sum())}
    for k in ("grad_norm_mean", "grad_norm_median", "grad_norm_max"):
        v = m(k)
        if np.isfinite(v).any():
            agg[k] = float(np.nanmean(v) if k != "grad_norm_max" else np.nanmax(v))
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


GRADIENT_AGENTS = ("apg", "shac")  # agents whose gradient is the simulator's own (norms reported)


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


def verdict(results: dict[str, Any]) -> str:
    """One sentence: who won per env step and per wall-clock second, and the evidence why."""
    agents = results["agents"]
    per_step = max(agents, key=lambda a: agents[a]["final_return_mean"])
    # Per second: every agent's return at the moment the fastest finished its budget.
    t_common = min(float(np.mean([r["curve"]["wall_s"][-1] for r in a["runs"]])) for a in agents.values())
    at_t = {n: return_at(a["runs"], "wall_s", t_common) for n, a in agents.items()}
    per_sec = max(at_t, key=at_t.get)
    why = []
    for n in agents:
        a = agents[n]
        if n in GRADIENT_AGENTS and "grad_norm_median" in a:
            why.append(f"{n}'s gradient norm (before clipping) median {a['grad_norm_median']:.3g}, "
                       f"max {a['grad_norm_max']:.3g}, {a['skipped_updates']:.0f} skipped updates")
    why_text = f" Evidence: {'; '.join(why)}." if why else ""
    return (
        f"**Verdict:** per env step **{per_step}** won ({agents[per_step]['final_return_mean']:.1f} at "
        f"{results['budget']:,} steps, mean of {results['seeds']} seed(s)); per wall-clock second **{per_sec}** "
        f"won ({at_t[per_sec]:.1f} after {t_common:.0f} s, when the fastest agent had spent its budget).{why_text}"
    )


def render_markdown(results: dict[str, Any]) -> str:
    """The report: one table row per agent, then notes on what the columns mean."""
    env = results["env"]
    lines = [
        f"# gradgym compare: {results['robot']}",
        "",
        f"Budget {results['budget']:,} env steps per run, {results['seeds']} seed(s), backend {env['backend']}, "
        f"episode length {env['episode_length']}. Total wall-clock {results.get('total_wall_s', 0):.0f} s.",
        "",
        "| agent | final return (mean ± std) | initial return | env steps | wall-clock s | steps/s | "
        "grad norm mean / median / max | skipped updates |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines[2:2] = [verdict(results), ""]
    best = max(results["agents"], key=lambda a: results["agents"][a]["final_return_mean"])
    for name, a in results["agents"].items():
        g = "–"
        if "grad_norm_mean" in a and name in GRADIENT_AGENTS:
            g = f"{a['grad_norm_mean']:.3g} / {a['grad_norm_median']:.3g} / {a['grad_norm_max']:.3g}"
        star = " **(best)**" if name == best else ""
        lines.append(
            f"| {name}{star} | {a['final_return_mean']:.2f} ± {a['final_return_std']:.2f} | "
            f"{a['initial_return_mean']:.2f} | {a['env_steps']:,.0f} | {a['wall_s']:.1f} | {a['steps_per_s']:,.0f} | "
            f"{g} | {a['skipped_updates']:.0f} |"
        )
    lines += [
        "",
        "Return: deterministic (mean) policy on the same fixed evaluation episodes for every agent and seed.",
        "Wall-clock: training time including JIT compilation, excluding evaluation. Gradient norms are",
        "global norms before clipping (apg, shac). Skipped updates: non-finite gradients, skipped, never applied.",
        "",
        "![return vs env steps](curves_steps.png)",
        "![return vs wall-clock](curves_wall.png)",
        "",
    ]
    return "\n".join(lines)
