"""Do long windows explode because of float32? APG's window gradient vs window length, float32 against float64.

For each robot and window length H, the per-env gradient of APG's loss (the
mean reward of an H-step window of one robot, differentiated through the
physics into the policy parameters) at the same initial policy, with the same
policy noise (drawn in float32), from the same initial states (made in
float64: a reset, then ``--warmup`` steps of the initial policy, cast to each
precision), once wholly in float32 (JAX's 64-bit mode off) and once in
float64. Reported per cell: the median and the
largest per-env gradient norm, the norm of their mean, the variance across envs
(mean squared distance to the mean gradient, relative to the squared norm of
the mean) and the relative difference between the float32 and float64
gradients of the same env (median and largest). If float32 rounding caused the
explosion, the float64 norms would stay small where the float32 ones blow up,
and the two would disagree; if the dynamics cause it, both explode together and
agree. Writes ``<out>/window_precision.json`` and prints a markdown table::

    python scripts/diag_window_precision.py [--robots halfcheetah ant] [--windows 4 8 16 32] [--num-envs 32] \\
        [--warmup 0] [--out runs/diag_precision]
    python scripts/diag_window_precision.py --table docs/window_precision.json   # print a stored table

One compile per (robot, window, dtype); about 15 min on one core with the defaults.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.base import policy_net
from gradgym.agents.losses import apg_loss
from gradgym.envs import make
from gradgym.envs.physics import cast_sys
from gradgym.fileio import atomic_write
from gradgym.jax_utils import float_dtype
from gradgym.nets import gaussian_params


def _numpy(tree):
    return jax.tree.map(np.asarray, tree)


def initial_policy(robot: str, seed: int):
    """APG's initial policy parameters and observation statistics (float32, as numpy)."""
    with jax.enable_x64(False):
        ts = Apg(make(robot, dtype="float32"), ApgConfig(num_envs=1, horizon=1)).init(jax.random.PRNGKey(seed))
        return _numpy(ts.params), _numpy(ts.stats)


def initial_states(robot: str, params, stats, num_envs: int, seed: int, warmup: int):
    """The envs' states in float64 (as numpy): reset, then ``warmup`` steps of the initial policy.

    Both precisions start from these (cast), so a long warm-up's own float32/float64 drift does not enter.
    """
    with jax.enable_x64(True):
        env = make(robot, dtype="float64")
        states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(seed + 1), num_envs))
        if warmup:
            loss = _loss(env, num_envs, warmup)
            _, (states, _) = jax.jit(loss)(cast_sys(params, jnp.float64), cast_sys(stats, jnp.float64), states,
                                           jax.random.PRNGKey(seed + 3))
        return _numpy(states)


def _loss(env, num_envs: int, window: int):
    """APG's window loss (:func:`gradgym.agents.losses.apg_loss`) with its policy noise drawn in float32 and cast,
    so that both precisions see the same noise (``jax.random.normal`` draws other numbers in float64)."""
    module, _ = policy_net(env.action_size, ApgConfig.hidden, ApgConfig.activation)

    def policy_fn(params, obs, key):
        mean, std = gaussian_params(*module.apply(params, obs))
        return jnp.tanh(mean + std * jax.random.normal(key, mean.shape, jnp.float32).astype(mean.dtype))

    return functools.partial(apg_loss, env=env, policy_fn=policy_fn, num_envs=num_envs, horizon=window,
                             truncation=window)


def per_env_gradients(robot: str, window: int, dtype: str, params, stats, states, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(losses[num_envs], gradients[num_envs, P]) of one-robot APG windows, computed wholly in ``dtype``
    (float32 with JAX's 64-bit mode off, float64 with it on)."""
    with jax.enable_x64(dtype == "float64"):
        env = make(robot, dtype=dtype)
        fdt = float_dtype(dtype)
        params, stats, states = cast_sys(params, fdt), cast_sys(stats, fdt), cast_sys(states, fdt)
        keys = jax.random.split(jax.random.PRNGKey(seed + 2), states.obs.shape[0])
        loss = _loss(env, 1, window)

        def one(state, key):
            value, grads = jax.value_and_grad(lambda p: loss(p, stats, jax.tree.map(lambda x: x[None], state),
                                                             key)[0])(params)
            return value, ravel_pytree(grads)[0]

        losses, grads = jax.jit(jax.vmap(one))(states, keys)
        assert grads.dtype == fdt, grads.dtype  # the whole computation ran in this precision
        return np.asarray(losses, np.float64), np.asarray(grads, np.float64)


def summarize(g: np.ndarray) -> dict:
    norms = np.linalg.norm(g, axis=1)
    mean = g.mean(axis=0)
    var = float(np.mean(np.sum((g - mean) ** 2, axis=1)))
    mean_norm = float(np.linalg.norm(mean))
    return {"norm_median": float(np.median(norms)), "norm_max": float(norms.max()), "mean_norm": mean_norm,
            "variance": var, "relative_variance": var / max(mean_norm**2, 1e-300),
            "finite": bool(np.isfinite(g).all())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", nargs="+", default=["halfcheetah", "ant"])
    p.add_argument("--windows", nargs="+", type=int, default=[4, 8, 16, 32])
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--warmup", type=int, default=0, help="steps of the initial policy before measuring")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/diag_precision")
    p.add_argument("--table", metavar="JSON", help="print the table of a stored window_precision.json and exit")
    args = p.parse_args(argv)
    if args.table:
        path = Path(args.table)
        if not path.is_file():
            p.error(f"--table {args.table}: no such file; give a window_precision.json this script wrote")
        print(table(json.loads(path.read_text())["rows"]))
        return 0
    for name, v in (("--num-envs", args.num_envs), *((f"--windows {w}", w) for w in args.windows)):
        if v < 1:
            p.error(f"{name} must be a positive integer, got {v}")
    rows, t_all = [], time.perf_counter()
    for robot in args.robots:
        params, stats = initial_policy(robot, args.seed)
        states64 = initial_states(robot, params, stats, args.num_envs, args.seed, args.warmup)
        for window in args.windows:
            t = time.perf_counter()
            out = {dt: per_env_gradients(robot, window, dt, params, stats, states64, args.seed)
                   for dt in ("float32", "float64")}
            g32, g64 = out["float32"][1], out["float64"][1]
            rel = np.linalg.norm(g32 - g64, axis=1) / np.maximum(np.linalg.norm(g64, axis=1), 1e-300)
            row = {"robot": robot, "window": window, "float32": summarize(g32), "float64": summarize(g64),
                   "f32_vs_f64_rel_median": float(np.nanmedian(rel)), "f32_vs_f64_rel_max": float(np.nanmax(rel)),
                   "cos_mean_gradients": float(g32.mean(0) @ g64.mean(0)
                                               / max(np.linalg.norm(g32.mean(0)) * np.linalg.norm(g64.mean(0)),
                                                     1e-300)),
                   "seconds": round(time.perf_counter() - t, 1)}
            rows.append(row)
            print(f"{robot} H={window}: norm median f32 {row['float32']['norm_median']:.3g} "
                  f"f64 {row['float64']['norm_median']:.3g}; max f32 {row['float32']['norm_max']:.3g} "
                  f"f64 {row['float64']['norm_max']:.3g}; f32 vs f64 rel. diff median {row['f32_vs_f64_rel_median']:.2g} "
                  f"max {row['f32_vs_f64_rel_max']:.2g} ({row['seconds']} s)", flush=True)
    meta = {"command": "python scripts/diag_window_precision.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": datetime.date.today().isoformat(), "jax": jax.__version__, "num_envs": args.num_envs,
            "warmup": args.warmup, "seed": args.seed, "seconds": round(time.perf_counter() - t_all, 1)}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "window_precision.json", json.dumps({"meta": meta, "rows": rows}, indent=1).encode())
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| robot | H | norm median f32 / f64 | norm max f32 / f64 | relative variance f32 / f64 | "
             "f32 vs f64 rel. diff median / max | cos of mean gradients |", "|---|---:|---|---|---|---|---:|"]
    for r in rows:
        a, b = r["float32"], r["float64"]
        lines.append(f"| {r['robot']} | {r['window']} | {a['norm_median']:.3g} / {b['norm_median']:.3g} | "
                     f"{a['norm_max']:.3g} / {b['norm_max']:.3g} | {a['relative_variance']:.3g} / "
                     f"{b['relative_variance']:.3g} | {r['f32_vs_f64_rel_median']:.2g} / {r['f32_vs_f64_rel_max']:.2g} | "
                     f"{r['cos_mean_gradients']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
