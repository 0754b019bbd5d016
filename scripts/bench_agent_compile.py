"""Compile-time benchmark (not a test): the cost of compiling one training interval's program.

``gradgym train`` runs every evaluation interval as one compiled program (the
agent's update scanned inside ``jit``, :func:`gradgym.agents.trainer.fused_iterate`).
This measures, for one agent and robot at its defaults plus each ``--config``
variant, in a fresh process per variant (no compilation cache):

* ``lower_s``: tracing and lowering that program to StableHLO;
* ``compile_s``: XLA's compile of it;
* ``iter_s``: seconds per iteration (one call of the agent's ``iterate``; for
  SHAC's adaptive window several updates) once compiled, the median of three timed
  calls of ``--iters`` iterations, so a slow first evaluation can be split into
  compile and training;
* ``hlo_lines``: the StableHLO's size.

Usage::

    python scripts/bench_agent_compile.py        # SHAC on ant: its default critic against the single critic
    python scripts/bench_agent_compile.py --agent shac --robot halfcheetah \\
        --variants '{}' '{"critic_ensemble": 3, "critic_layernorm": true, "critic_reduce": "mean"}'
    python scripts/bench_agent_compile.py --table docs/agent_compile.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SINGLE = '{"critic_ensemble": 1, "critic_layernorm": false, "critic_reduce": "min"}'


def measure(agent: str, robot: str, config: dict, iters: int) -> dict:
    """One variant in this process."""
    import jax
    import numpy as np

    from gradgym.agents import get_agent
    from gradgym.agents.trainer import build_agent, fused_iterate
    from gradgym.envs import make

    env = make(robot)
    cfg = get_agent(agent).default_config(robot, config).program_config()
    built = build_agent(agent, env, cfg)
    ts = built.init(jax.random.PRNGKey(0))
    run = fused_iterate(built, iters)
    t = time.perf_counter()
    lowered = run.trace(ts, np.int32(iters)).lower()
    lower_s = time.perf_counter() - t
    hlo_lines = lowered.as_text().count("\n")
    t = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(4):  # the first call also warms up; it is dropped
        t = time.perf_counter()
        ts, m = compiled(ts, np.int32(iters))
        jax.block_until_ready((ts, m))
        times.append(time.perf_counter() - t)
    return {"agent": agent, "robot": robot, "config": config, "lower_s": lower_s, "compile_s": compile_s,
            "iter_s": statistics.median(times[1:]) / iters, "steps_per_iter": built.steps_per_iter,
            "hlo_lines": hlo_lines}


def table(rows: list[dict]) -> str:
    out = ["| agent | robot | config | lower (s) | compile (s) | s / iteration | env steps / iteration | StableHLO lines |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['agent']} | {r['robot']} | `{json.dumps(r['config'])}` | {r['lower_s']:.1f} | "
                   f"{r['compile_s']:.1f} | {r['iter_s']:.3f} | {r['steps_per_iter']} | {r['hlo_lines']:,} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agent", default="shac")
    p.add_argument("--robot", default="ant")
    p.add_argument("--variants", nargs="+", default=["{}", SINGLE],
                   help="config overrides (JSON), one fresh process each; '{}' = the robot's defaults")
    p.add_argument("--iters", type=int, default=4, help="iterations per timed call")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    p.add_argument("--table", default=None, help="print the table of a stored JSON and exit")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.table:
        with open(a.table) as f:
            print(table(json.load(f)))
        return
    if a.child is not None:
        print("RESULT " + json.dumps(measure(a.agent, a.robot, json.loads(a.child), a.iters)))
        return
    rows = []
    env = {**os.environ, "GRADGYM_JAX_CACHE": "off"}
    for v in a.variants:
        json.loads(v)  # a bad variant fails here, before any child runs
        proc = subprocess.run([sys.executable, __file__, "--agent", a.agent, "--robot", a.robot, "--iters",
                               str(a.iters), "--child", v], capture_output=True, text=True, env=env, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"variant {v} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        rows.append(json.loads(lines[-1][len("RESULT "):]))
        r = rows[-1]
        print(f"{v}: lower {r['lower_s']:.1f} s, compile {r['compile_s']:.1f} s, {r['iter_s']:.3f} s/iteration",
              flush=True)
    print(table(rows))
    if a.out:
        from gradgym.fileio import atomic_write

        atomic_write(a.out, (json.dumps(rows, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
