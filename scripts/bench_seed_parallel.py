"""Seeds of one agent on 2 cores: one after another, batched with ``vmap``, or split over processes.

Each variant runs in a fresh Python process (first compile included, as a user's first run pays it):

- ``sequential``: ``gradgym.agents.train`` for each seed in one process (programs compiled once, shared);
- ``vmap``: the trainer's fused program ``vmap``-ed over the seeds' training states (PureJaxRL's way), one
  compile, evaluations vmapped over the seeds too;
- ``processes``: ``--jobs`` processes, each pinned to one core, each training its share of the seeds.

Prints wall-clock per variant and writes JSON; ``--check`` also verifies that the vmapped curves equal the
sequential ones (float tolerance: batching changes XLA's reduction order).

    python scripts/bench_seed_parallel.py --agent ppo --env reacher --seeds 4 --budget 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
variant, agent, robot, seeds, budget, evals, core = sys.argv[1:8]
seeds, budget, evals = [int(s) for s in seeds.split(",")], int(budget), int(evals)
if core != "-":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[int(core)]})
import jax, jax.numpy as jnp, numpy as np
from gradgym.agents import get_agent, train
from gradgym.agents.base import eval_horizon, eval_keys, make_evaluator, num_iterations
from gradgym.agents.trainer import build_agent, eval_schedule, fused_iterate, metrics_capacity
from gradgym.envs.core import make
from gradgym.envs.robots import get_robot
env = make(robot, episode_length=get_robot(robot).max_episode_steps)
overrides = {"total_steps": budget, "num_evals": evals}
curves = {}
if variant == "vmap":
    cfg = get_agent(agent).default_config(robot, overrides)
    ag = build_agent(agent, env, cfg.program_config())
    n_iters = num_iterations(cfg.total_steps, ag.steps_per_iter)
    at = eval_schedule(n_iters, cfg.num_evals)
    cap = metrics_capacity(max(b - a for a, b in zip([0, *at], at)))
    run = jax.jit(jax.vmap(fused_iterate(ag, cap), in_axes=(0, None)))
    evaluate = make_evaluator(env, cfg.hidden, cfg.activation, eval_horizon(env, cfg.eval_horizon))
    keys = jnp.stack([eval_keys(s, cfg.eval_episodes) for s in seeds])
    score = jax.jit(jax.vmap(lambda ts, k: jnp.mean(evaluate(*ag.policy_params(ts), k))))
    ts = jax.vmap(ag.init)(jnp.stack([jax.random.PRNGKey(s) for s in seeds]))
    rets, start = [np.asarray(score(ts, keys))], 0
    for done in at:
        ts, _ = run(ts, np.int32(done - start))
        rets.append(np.asarray(score(ts, keys)))
        start = done
    rets = np.stack(rets, 1)
    curves = {s: [float(x) for x in rets[i]] for i, s in enumerate(seeds)}
else:
    for s in seeds:
        curves[s] = train(agent, env, overrides, s, progress=False).curve.returns
print(json.dumps({"wall_s": time.perf_counter() - t0, "curves": curves}))
"""


def _child(variant: str, agent: str, robot: str, seeds: list[int], budget: int, evals: int, core: str):
    cmd = [sys.executable, "-c", CHILD, variant, agent, robot, ",".join(map(str, seeds)), str(budget), str(evals), core]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _collect(procs) -> dict:
    outs = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"a benchmark child failed (exit {p.returncode})")
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", default="ppo")
    p.add_argument("--env", default="reacher")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--budget", type=int, default=100_000)
    p.add_argument("--evals", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--variants", default="sequential,vmap,processes")
    p.add_argument("--out", default=None, help="write the measurements as JSON here")
    args = p.parse_args()
    seeds = list(range(args.seeds))
    table = {"agent": args.agent, "robot": args.env, "seeds": args.seeds, "budget": args.budget,
             "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "variants": {}}
    for variant in args.variants.split(","):
        t0 = time.perf_counter()
        if variant == "processes":
            shares = [seeds[i::args.jobs] for i in range(args.jobs)]
            outs = _collect([_child("sequential", args.agent, args.env, s, args.budget, args.evals, str(i))
                             for i, s in enumerate(shares) if s])
            curves = {k: v for o in outs for k, v in o["curves"].items()}
        else:
            curves = _collect([_child(variant, args.agent, args.env, seeds, args.budget, args.evals, "-")])[0]["curves"]
        wall = time.perf_counter() - t0
        table["variants"][variant] = {"wall_s": wall, "curves": curves}
        print(f"{variant:>10}: {wall:7.1f} s for {args.seeds} seeds of {args.agent} on {args.env}, "
              f"{args.budget:,} env steps each; final returns "
              + ", ".join(f"{c[-1]:.1f}" for c in curves.values()), flush=True)
    v = table["variants"]
    if "sequential" in v and "vmap" in v:
        diff = max(abs(a - b) for s in v["sequential"]["curves"]
                   for a, b in zip(v["sequential"]["curves"][s], v["vmap"]["curves"][s], strict=True))
        table["vmap_max_abs_return_diff"] = diff
        print(f"vmap vs sequential: largest difference of an evaluation return {diff:.3g}")
    table["loadavg_end"] = os.getloadavg()
    if args.out:
        from gradgym.fileio import atomic_write

        atomic_write(args.out, json.dumps(table, indent=1).encode())


if __name__ == "__main__":
    main()
