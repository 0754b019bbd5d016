"""Learning benchmark (not a test): who learns locomotion, per env step and per second.

For each robot: the physical limit of this machine (raw ``jit(vmap(step))``
forward and gradient throughput on the core), then ``gradgym compare`` of the
agents over seeds at the robot's budget, and a table with the final and best
return (mean over seeds), whether the run collapsed (final < 0.8 x best), the
wall-clock each agent needed to reach PPO's final return, and env steps/s.
Writes ``<out>/<robot>/`` (the compare report) and ``<out>/learning.md``/``.json``.

Usage (the issue's targets; hours on a 2-core CPU)::

    python scripts/bench_learning.py --robots halfcheetah:2000000,ant:3000000 --agents ppo,shac,apg --seeds 3

Smaller: ``--robots halfcheetah:300000 --seeds 1``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents.report import compare, mean_curve, time_to_reach
from gradgym.envs import make
from gradgym.fileio import atomic_write


def raw_throughput(robot: str, num_envs: int, horizon: int, reps: int = 3) -> dict[str, float]:
    """Env steps/s of a jitted, vmapped ``horizon``-step rollout and of its gradient w.r.t. the actions."""
    env = make(robot, episode_length=1000)
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), num_envs))
    actions = jnp.zeros((horizon, num_envs, env.action_size))

    def total_reward(acts, s):
        def body(s, a):
            s = jax.vmap(env.step)(s, a)
            return s, s.reward

        return jax.lax.scan(body, s, acts)[1].sum()

    out = {}
    for name, fn in (("forward", jax.jit(total_reward)), ("gradient", jax.jit(jax.grad(total_reward)))):
        jax.block_until_ready(fn(actions, state))
        t0 = time.perf_counter()
        for _ in range(reps):
            jax.block_until_ready(fn(actions, state))
        out[f"{name}_steps_per_s"] = reps * horizon * num_envs / (time.perf_counter() - t0)
    return out


def summarize_robot(results: dict) -> list[dict]:
    """One row per agent: final/best return, collapse flag, wall-clock to PPO's final return, steps/s."""
    agents = results["agents"]
    target = agents["ppo"]["final_return_mean"] if "ppo" in agents else None
    rows = []
    for name, a in agents.items():
        _, ys = mean_curve(a["runs"], "env_steps")
        best = float(ys.max())
        final = float(ys[-1])
        finals = [r["metrics"]["final_return"] for r in a["runs"]]
        rows.append({
            "agent": name, "final_mean": float(np.mean(finals)), "final_std": float(np.std(finals)),
            "best_mean_curve": best, "collapsed": bool(best > 0 and final < 0.8 * best),
            "wall_s_to_ppo_final": None if target is None else time_to_reach(a["runs"], "wall_s", target),
            "steps_to_ppo_final": None if target is None else time_to_reach(a["runs"], "env_steps", target),
            "wall_s": a["wall_s"], "steps_per_s": a["steps_per_s"], "env_steps": a["env_steps"],
            "grad_norm_median": a.get("grad_norm_median"), "skipped_updates": a["skipped_updates"],
        })
    return rows


def markdown(table: dict) -> str:
    lines = [f"Devices: {table['devices']}", ""]
    for robot, t in table["robots"].items():
        raw = t["raw"]
        lines += [
            f"## {robot} ({t['budget']:,} env steps, {t['seeds']} seed(s))",
            "",
            f"Physical limit here: forward {raw['forward_steps_per_s']:,.0f} env steps/s, gradient "
            f"{raw['gradient_steps_per_s']:,.0f} env steps/s (jit(vmap(step)), {raw['num_envs']} envs x "
            f"{raw['horizon']} steps).",
            "",
            "| agent | final return (mean ± std) | best of mean curve | collapsed (final < 0.8 best) | "
            "wall-clock s to PPO's final | env steps to PPO's final | wall-clock s | env steps/s | "
            "grad norm median | skipped |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in t["rows"]:
            fmt = lambda v, f: "never" if v is None else format(v, f)  # noqa: E731
            g = "–" if r["grad_norm_median"] is None else f"{r['grad_norm_median']:.3g}"
            lines.append(
                f"| {r['agent']} | {r['final_mean']:.1f} ± {r['final_std']:.1f} | {r['best_mean_curve']:.1f} | "
                f"{'yes' if r['collapsed'] else 'no'} | {fmt(r['wall_s_to_ppo_final'], '.0f')} | "
                f"{fmt(r['steps_to_ppo_final'], ',.0f')} | {r['wall_s']:.0f} | {r['steps_per_s']:,.0f} | {g} | "
                f"{r['skipped_updates']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", default="halfcheetah:2000000,ant:3000000", help="robot:budget,... (env steps)")
    p.add_argument("--agents", default="ppo,shac,apg")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--config", default=None, help='per-agent overrides as JSON, e.g. \'{"shac": {"horizon": 16}}\'')
    p.add_argument("--out", default="runs/bench_learning")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = json.loads(args.config) if args.config else {}
    agents = [a for a in args.agents.split(",") if a]
    table = {"devices": [str(d) for d in jax.devices()], "robots": {}}
    print(f"devices: {table['devices']}", flush=True)
    for item in args.robots.split(","):
        robot, budget = item.split(":")
        raw = {"num_envs": 64, "horizon": 32, **raw_throughput(robot, 64, 32)}
        print(f"{robot}: raw forward {raw['forward_steps_per_s']:,.0f} steps/s, gradient "
              f"{raw['gradient_steps_per_s']:,.0f} steps/s", flush=True)
        results = compare(robot, agents, args.seeds, int(budget), out / robot,
                          overrides={a: overrides.get(a, {}) for a in agents})
        table["robots"][robot] = {"budget": int(budget), "seeds": args.seeds, "raw": raw,
                                  "rows": summarize_robot(results)}
        atomic_write(out / "learning.json", json.dumps(table, indent=1).encode())
        atomic_write(out / "learning.md", markdown(table).encode())
        print(markdown(table), flush=True)


if __name__ == "__main__":
    main()
