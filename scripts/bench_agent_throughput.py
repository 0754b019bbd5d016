"""Benchmark (not a test): each JAX agent's training speed against the raw program it is built on.

For every agent (apg, shac, ppo, es at their defaults for the robot) it times
the fused training program (``gradgym.agents.trainer.fused_iterate``: many
updates in one compiled call, exactly what ``train`` runs between two
evaluations) and, in the same process, the raw programs at the agent's own
batch and window:

* apg, shac: ``jit(grad(window loss))``, the loss of ``num_envs`` robots that
  each run a tanh-linear policy for ``horizon`` steps (``scripts/profile_spring_grad.py``'s
  ``window_loss``), on Brax's own step (``raw brax``) and on gradgym's core
  with its default spring path (``raw gradgym``);
* ppo, es: the forward of the same loss (``jit(loss)``: a rollout of the
  agent's batch for its window, ``rollout_steps`` / ES's unroll length).

The ratio agent / raw says what the agent's own work costs on top of the
physics (policy and critic networks, optimiser, GAE, minibatch epochs,
normalisation, metrics). Every timing is the best of ``--rounds``
interleaved windows, so all programs see the same machine load.

Usage::

    python scripts/bench_agent_throughput.py --robots halfcheetah ant --out docs/agent_throughput.json
    python scripts/bench_agent_throughput.py --robots reacher --agents apg ppo --seconds 0.5   # smoke run
    python scripts/bench_agent_throughput.py --table docs/agent_throughput.json   # print a stored table
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_spring_grad import seconds_per_call, window_loss  # noqa: E402

AGENTS = ("apg", "shac", "ppo", "es")
GRADIENT_AGENTS = ("apg", "shac")
TARGETS = {"apg": 0.9, "shac": 0.9, "es": 0.8, "ppo": 0.5}
"""Minimum agent / raw ratio asked of each agent (gradient agents against the raw gradient, others the forward)."""


def agent_program(name: str, robot: str, episode_length: int | None):
    """``(run, args, batch, window, steps_per_call)`` for the agent's fused program at its defaults."""
    from gradgym.agents import get_agent
    from gradgym.agents.trainer import build_agent, fused_iterate
    from gradgym.envs import make

    env = make(robot, episode_length=episode_length)
    cfg = get_agent(name).default_config(robot)
    agent = build_agent(name, env, cfg.program_config())
    ts = agent.init(jax.random.PRNGKey(0))
    run = fused_iterate(agent, 64)
    t = time.perf_counter()
    ts, _ = jax.block_until_ready(run(ts, 1))  # compile
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(run(ts, 1))
    one = time.perf_counter() - t
    n = int(min(64, max(1, math.ceil(1.0 / max(one, 1e-6)))))  # about a second per call
    batch = getattr(cfg, "num_envs", None) or cfg.population_size
    window = agent.steps_per_iter // batch
    return run, (ts, n), batch, window, n * agent.steps_per_iter, round(compile_s, 1)


def markdown(results: dict) -> str:
    lines = ["| robot | agent | batch x window | reference | agent steps/s | raw Brax steps/s | raw gradgym steps/s "
             "| agent / raw Brax | agent / raw gradgym | target |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        sps = r["steps_per_s"]
        lines.append(f"| {r['robot']} | {r['agent']} | {r['batch']} x {r['window']} | {r['reference']} | "
                     f"{sps['agent']:,} | {sps['raw brax']:,} | {sps['raw gradgym']:,} | {r['ratio_raw_brax']:.2f}x | "
                     f"{r['ratio_raw_gradgym']:.2f}x | {r['target']}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", nargs="+", default=["halfcheetah", "ant"])
    p.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    p.add_argument("--episode-length", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=2.0, help="length of one timing window")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing windows per program (best is kept)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--table", metavar="JSON", help="only print the markdown table of a stored result and exit")
    args = p.parse_args(argv)
    if args.table:
        with open(args.table) as fh:
            print(markdown(json.load(fh)))
        return 0
    if args.seconds <= 0 or args.rounds < 1 or args.episode_length < 1:
        p.error("--seconds must be > 0, --rounds and --episode-length >= 1.")
    results = {"meta": {"command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
                        "date": datetime.date.today().isoformat(), "jax": jax.__version__,
                        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                        "loadavg_start": [round(x, 2) for x in os.getloadavg()]}, "rows": []}
    for robot in args.robots:
        for name in args.agents:
            run, run_args, batch, window, steps, compile_s = agent_program(name, robot, args.episode_length)
            programs = {"agent": (run, run_args, steps)}
            grad = name in GRADIENT_AGENTS
            for variant, path in (("raw brax", "raw"), ("raw gradgym", "fast")):
                loss, params, states = window_loss(robot, path, window, batch)
                f = jax.jit(jax.grad(loss)) if grad else jax.jit(loss)
                programs[variant] = (f, (params, states), batch * window)
            best = {k: math.inf for k in programs}
            for _ in range(args.rounds):
                for k, (f, fargs, _) in programs.items():
                    best[k] = min(best[k], seconds_per_call(f, fargs, args.seconds))
            sps = {k: round(programs[k][2] / best[k]) for k in programs}
            row = {"robot": robot, "agent": name, "batch": batch, "window": window,
                   "reference": "gradient" if grad else "forward", "agent_compile_s": compile_s,
                   "steps_per_s": sps, "target": TARGETS[name],
                   "ratio_raw_brax": round(sps["agent"] / sps["raw brax"], 2),
                   "ratio_raw_gradgym": round(sps["agent"] / sps["raw gradgym"], 2)}
            results["rows"].append(row)
            print(f"{robot:12s} {name:5s} batch {batch:4d} window {window:4d}: agent {sps['agent']:,} steps/s, "
                  f"raw {row['reference']} brax {sps['raw brax']:,} ({row['ratio_raw_brax']}x), "
                  f"gradgym {sps['raw gradgym']:,} ({row['ratio_raw_gradgym']}x); target {TARGETS[name]}x",
                  flush=True)
            if args.out:  # keep what is done if a later row fails
                results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
                with open(args.out, "w") as fh:
                    json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
