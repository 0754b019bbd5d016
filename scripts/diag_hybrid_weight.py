"""Where does the hybrid trust the simulator's gradient? Its alpha-order weight vs window length, per robot.

For each robot and window length H, the ``hybrid`` agent at the robot's
defaults (APG's window settings, ``horizon`` set to H) runs ``--updates``
training updates from its initial policy; every update measures both window
gradients on the same rollouts (pathwise through the physics, and the
likelihood ratio) and mixes them (``gradgym.diagnostics.estimators.alpha_order``).
Reported per cell, as the median over the updates: the standard error of each
mean (square root of the trace of its covariance over the robots), the distance
between the two means in standard errors of the likelihood-ratio mean (about 1
when the pathwise gradient is unbiased; far above 1 when it is not), the
minimum-variance weight and the weight after the bias check (1 = all analytic,
0 = all likelihood ratio). Writes ``<out>/hybrid_weight.json`` and prints a
markdown table::

    python scripts/diag_hybrid_weight.py [--robots halfcheetah ant] [--windows 4 8 16 32] [--updates 20] \\
        [--seed 0] [--out runs/diag_hybrid_weight]
    python scripts/diag_hybrid_weight.py --table docs/hybrid_weight.json   # print a stored table

One compile per (robot, window); about 10 min on one core with the defaults.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from gradgym.agents import get_agent
from gradgym.agents.hybrid import Hybrid
from gradgym.envs import make
from gradgym.envs.robots import get_robot
from gradgym.fileio import atomic_write


def measure(robot: str, window: int, updates: int, seed: int) -> dict:
    """Medians over ``updates`` training updates of the hybrid's per-update estimator statistics."""
    cfg = get_agent("hybrid").default_config(robot, {"horizon": window, "truncation": None})
    env = make(robot, episode_length=get_robot(robot).max_episode_steps)
    agent = Hybrid(env, cfg)
    ts = agent.init(jax.random.PRNGKey(seed))
    t0 = time.perf_counter()
    rows: dict[str, list[float]] = {}
    for _ in range(updates):
        ts, m = agent.iterate(ts)
        for k, v in jax.device_get(m).items():
            rows.setdefault(k, []).append(float(v))
    wall = time.perf_counter() - t0
    a = {k: np.asarray(v, np.float64) for k, v in rows.items()}
    se_fo, se_zo = np.sqrt(a["var_fo"]), np.sqrt(a["var_zo"])
    return {
        "robot": robot, "window": window, "num_envs": cfg.num_envs, "updates": updates, "seed": seed,
        "se_fo": float(np.median(se_fo)), "se_zo": float(np.median(se_zo)),
        "gap_in_se": float(np.median(a["gap"] / np.maximum(se_zo, 1e-30))),
        "alpha_ivw": float(np.median(a["alpha_ivw"])), "alpha": float(np.median(a["alpha"])),
        "alpha_min": float(a["alpha"].min()), "skipped": int(a["skipped"][-1]), "wall_s": wall,
    }


def table(rows: list[dict]) -> str:
    lines = ["| robot | window | s.e. pathwise | s.e. likelihood ratio | gap (s.e. of LR) | weight, min-variance | "
             "weight, after bias check (min) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['robot']} | {r['window']} | {r['se_fo']:.3g} | {r['se_zo']:.3g} | {r['gap_in_se']:.3g} | "
                     f"{r['alpha_ivw']:.3f} | {r['alpha']:.3f} ({r['alpha_min']:.3f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", nargs="+", default=["halfcheetah", "ant"])
    p.add_argument("--windows", nargs="+", type=int, default=[4, 8, 16, 32])
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/diag_hybrid_weight")
    p.add_argument("--table", default=None, help="print the table of a stored hybrid_weight.json and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["rows"]))
        return 0
    if args.updates < 1 or any(w < 1 for w in args.windows):
        p.error("--updates and every --windows value must be >= 1")
    rows = []
    for robot in args.robots:
        for w in args.windows:
            rows.append(measure(robot, w, args.updates, args.seed))
            print(f"{robot} H={w}: alpha {rows[-1]['alpha']:.3f} (min-variance {rows[-1]['alpha_ivw']:.3f}), gap "
                  f"{rows[-1]['gap_in_se']:.3g} s.e., {rows[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"date": datetime.date.today().isoformat(), "command": "python scripts/diag_hybrid_weight.py "
           + " ".join(argv if argv is not None else sys.argv[1:]), "rows": rows}
    atomic_write(out / "hybrid_weight.json", json.dumps(doc, indent=1).encode())
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
