"""Compile-time benchmark (not a test): what gradgym's core adds to XLA's compile of a Brax gradient.

For one robot, the first compile of ``jit(grad)`` of the summed reward of a
``--steps``-step open-loop rollout of ``--envs`` robots, three ways, each in a
fresh process (so nothing is cached):

* ``raw``: Brax's own ``reset`` then ``step`` in a ``lax.scan`` (the reference);
* ``step``: gradgym's ``BraxEnv.step`` (noise keys, physics scales, divergence
  checks) from a gradgym state;
* ``autoreset``: ``BraxEnv.autoreset_step``, what APG and SHAC differentiate
  (a fresh reset is computed inside every step and selected where an episode ended).

Prints trace+lower and XLA compile seconds and the StableHLO size, then a table.

Usage::

    python scripts/bench_compile.py                 # reacher, 4 envs, 4 steps, ~2.5 min on one core
    python scripts/bench_compile.py --robot ant
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

VARIANTS = ("raw", "step", "autoreset")


def measure(robot: str, variant: str, envs: int, steps: int) -> dict:
    """One variant in this process: seconds to trace+lower and to compile, StableHLO lines."""
    import jax
    import jax.numpy as jnp

    from gradgym.envs import make

    env = make(robot)
    keys = jax.random.split(jax.random.PRNGKey(0), envs)
    s0 = jax.vmap(env.reset)(keys)
    actions = 0.1 * jnp.ones((steps, envs, env.action_size))

    def body(s, a):
        if variant == "raw":
            s = jax.vmap(env.brax_env.step)(s, a)
            return s, s.reward
        if variant == "step":
            s = jax.vmap(env.step)(s, a)
            return s, s.reward
        nxt, final = jax.vmap(env.autoreset_step)(s, a)
        return nxt, final.reward

    def loss(a):
        start = jax.vmap(env.brax_env.reset)(keys) if variant == "raw" else s0
        return jnp.sum(jax.lax.scan(body, start, a)[1])

    t = time.perf_counter()
    lowered = jax.jit(jax.grad(loss)).trace(actions).lower()
    t_lower = time.perf_counter() - t
    t = time.perf_counter()
    lowered.compile()
    t_compile = time.perf_counter() - t
    return {"robot": robot, "variant": variant, "trace_lower_s": round(t_lower, 1), "compile_s": round(t_compile, 1),
            "stablehlo_lines": lowered.as_text().count("\n")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robot", default="reacher")
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # the child's job
    args = p.parse_args(argv)
    if args.envs < 1 or args.steps < 1:
        p.error(f"--envs and --steps must be positive, got {args.envs} and {args.steps}.")
    if args.variant:
        print("RESULT " + json.dumps(measure(args.robot, args.variant, args.envs, args.steps)), flush=True)
        return 0
    rows = []
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--robot", args.robot, "--envs", str(args.envs), "--steps", str(args.steps),
               "--variant", variant]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(lines[-1][len("RESULT "):]))
        print(rows[-1], flush=True)
    print(f"\n{args.robot}, jit(grad) of a {args.steps}-step rollout of {args.envs} robots (fresh process each)\n")
    print("| variant | trace + lower (s) | XLA compile (s) | StableHLO lines |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['trace_lower_s']} | {r['compile_s']} | {r['stablehlo_lines']:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
