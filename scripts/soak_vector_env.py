"""Soak benchmark of the vector env: many autoreset steps on Ant, watching memory, NaNs and recompiles.

Not a CI test. Runs ``--steps`` env steps (``--num-envs`` sub-envs per call) of
``gym.make_vec("gradgym/Ant-v0", vectorization_mode="vector_entry_point")``
with uniform random actions and NEXT_STEP autoreset, and reports:

* throughput (env steps/s, after the first compiled call),
* resident memory (RSS) sampled over time and its least-squares slope in MB
  per million env steps (samples after the warm-up only),
* non-finite values in observations or rewards (must be 0),
* XLA compilations after the warm-up (must be 0), counted with
  ``jax.monitoring`` backend-compile events, plus the jitted step's cache size.

Example (see docs/reliability.md for measured numbers)::

    python scripts/soak_vector_env.py --steps 2000000 --num-envs 256 --out soak.json

Exits 1 if it saw a non-finite value or a recompilation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np

import gradgym  # noqa: F401  (registers the ids)

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def rss_mb() -> float:
    """Resident set size of this process in MiB (psutil if installed, else /proc/self/status)."""
    try:
        import psutil
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("cannot read RSS: install psutil or run on Linux") from None
    return psutil.Process().memory_info().rss / 2**20


class CompileCounter:
    """Counts XLA backend compilations through ``jax.monitoring`` duration events."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            self.count += 1


def slope_mb_per_million(steps: np.ndarray, rss: np.ndarray) -> float:
    """Least-squares slope of RSS (MiB) against env steps, in MiB per million steps."""
    if len(steps) < 2 or np.ptp(steps) == 0:
        return float("nan")
    return float(np.polyfit(steps / 1e6, rss, 1)[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10_000_000, help="total env steps (default 10M)")
    p.add_argument("--num-envs", type=int, default=256, help="sub-envs per vector step (default 256)")
    p.add_argument("--env", default="gradgym/Ant-v0", help="Gymnasium id (default gradgym/Ant-v0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=float, default=2.0, help="seconds between RSS samples (default 2)")
    p.add_argument("--progress-every", type=float, default=15.0, help="seconds between progress lines (default 15)")
    p.add_argument("--out", type=Path, default=None, help="write the results (and RSS samples) as JSON here")
    args = p.parse_args(argv)
    if args.steps < 1 or args.num_envs < 1:
        p.error("--steps and --num-envs must be positive")

    compiles = CompileCounter()
    rss0 = rss_mb()
    envs = gym.make_vec(args.env, num_envs=args.num_envs, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(args.seed)
    shape = envs.action_space.shape

    # Warm-up: the first reset and step compile; everything after must reuse them.
    t0 = time.perf_counter()
    obs, _ = envs.reset(seed=args.seed)
    envs.step(rng.uniform(-1, 1, shape).astype(np.float32))
    warmup_s = time.perf_counter() - t0
    compiles_warmup = compiles.count
    step_fn = envs.unwrapped._fns.step
    cache_warmup = step_fn._cache_size()

    iters = max(1, -(-args.steps // args.num_envs))  # ceil
    bad_obs = bad_rew = episodes = diverged = 0
    samples: list[tuple[int, float, float]] = []  # (env steps, seconds, RSS MiB)
    print(
        f"soak {args.env}: {iters * args.num_envs:,} env steps as {iters:,} calls x {args.num_envs} envs; "
        f"warm-up {warmup_s:.1f}s, {compiles_warmup} compilations, RSS {rss_mb():.0f} MiB",
        flush=True,
    )
    start = last_sample = last_print = time.perf_counter()
    samples.append((0, 0.0, rss_mb()))
    for i in range(1, iters + 1):
        actions = rng.uniform(-1, 1, shape).astype(np.float32)
        obs, rewards, terminated, truncated, info = envs.step(actions)
        bad_obs += int(obs.size - np.count_nonzero(np.isfinite(obs)))
        bad_rew += int(rewards.size - np.count_nonzero(np.isfinite(rewards)))
        episodes += int(np.count_nonzero(terminated | truncated))
        diverged += int(np.count_nonzero(info["diverged"]))
        now = time.perf_counter()
        if now - last_sample >= args.sample_every or i == iters:
            samples.append((i * args.num_envs, now - start, rss_mb()))
            last_sample = now
        if now - last_print >= args.progress_every or i == iters:
            done = i * args.num_envs
            print(
                f"  {done:>12,} steps  {done / (now - start):>9,.0f} steps/s  RSS {samples[-1][2]:7.1f} MiB  "
                f"episodes {episodes:,}  non-finite {bad_obs + bad_rew}  compiles {compiles.count - compiles_warmup}",
                flush=True,
            )
            last_print = now
    wall = time.perf_counter() - start
    envs.close()

    s = np.array(samples)
    total = iters * args.num_envs
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "env": args.env,
        "num_envs": args.num_envs,
        "env_steps": total,
        "wall_s": wall,
        "warmup_s": warmup_s,
        "env_steps_per_s": total / wall,
        "rss_mb": {
            "before_env": rss0,
            "after_warmup": float(s[0, 2]),
            "end": float(s[-1, 2]),
            "max": float(s[:, 2].max()),
        },
        "rss_slope_mb_per_million_steps": slope_mb_per_million(s[:, 0], s[:, 2]),
        "rss_slope_second_half_mb_per_million_steps": slope_mb_per_million(*s[len(s) // 2 :, [0, 2]].T),
        "non_finite_obs": bad_obs,
        "non_finite_rewards": bad_rew,
        "episodes_finished": episodes,
        "diverged": diverged,
        "compilations_warmup": compiles_warmup,
        "compilations_after_warmup": compiles.count - compiles_warmup,
        "step_cache_size": {"after_warmup": cache_warmup, "end": step_fn._cache_size()},
        "jax": jax.__version__,
        "cpu_count": os.cpu_count(),
        "samples": [{"env_steps": int(a), "t_s": round(b, 3), "rss_mb": round(c, 2)} for a, b, c in samples],
    }
    print(
        f"done: {total:,} env steps in {wall:.1f}s = {result['env_steps_per_s']:,.0f} steps/s; "
        f"RSS {result['rss_mb']['after_warmup']:.0f} -> {result['rss_mb']['end']:.0f} MiB, slope "
        f"{result['rss_slope_mb_per_million_steps']:+.3f} MiB/M steps "
        f"(second half {result['rss_slope_second_half_mb_per_million_steps']:+.3f}); "
        f"non-finite obs/rewards {bad_obs}/{bad_rew}; compilations after warm-up "
        f"{result['compilations_after_warmup']} (step cache {cache_warmup} -> {step_fn._cache_size()}); "
        f"{episodes:,} episodes, {diverged} diverged",
        flush=True,
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    ok = bad_obs == 0 and bad_rew == 0 and result["compilations_after_warmup"] == 0
    ok = ok and step_fn._cache_size() == cache_warmup
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
