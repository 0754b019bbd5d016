"""Fig. 2 of Metz et al. 2021: Brax Ant loss slices and gradient variance vs unroll length (float64).

(a) loss (-mean reward) along one random direction with all randomness fixed, unrolls 1-16;
(b) the T=8 slice for many seeds and their average; (c) variance across seeds of the
pathwise policy gradient vs unroll length at four shift locations. The direction has
N(0, 1) entries (not normalised; the paper does not say). Writes fig2.json, fig2.npz, fig2.png.

    python scripts/fig2_ant_landscape.py [--quick] [--out runs/fig2]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import gradgym
from gradgym.diagnostics import default_policy, fit_growth_rate, gradient_stats_vs_horizon, init_policy
from gradgym.diagnostics.objectives import policy_loss_slice
from gradgym.diagnostics.plots import plot_three_panels
from gradgym.diagnostics.scripting import figure_parser, finish

WIDTH = 0.004
LOCATIONS = (-0.003, -0.001, 0.0, 0.002)


def roughness(y: np.ndarray) -> float:
    """Mean |second difference| of a slice: ~0 for a smooth curve on a fine grid, large for a rugged one."""
    return float(np.mean(np.abs(np.diff(np.asarray(y), 2))))


def plot(res: dict, arrays: dict, path) -> None:
    plot_three_panels(
        path,
        arrays["shifts"],
        [(f"{t} steps", y) for t, y in zip(res["slice_horizons"], arrays["fixed"], strict=True)],
        arrays["seeds_T8"].T,
        [(f"shift {loc:+.3f}", st["horizons"], st["variance"]) for loc, st in zip(res["locations"], res["variance"],
                                                                                  strict=True)],
        titles=("(a) fixed randomness", f"(b) average over randomness (T={res['avg_horizon']})",
                "(c) gradient variance across seeds"),
        xlabels=("shift along direction", "shift along direction", "unroll length"),
        ylabel="loss (-mean reward)",
        marks=res["locations"],
    )


def main(argv: list[str] | None = None) -> int:
    args = figure_parser(__doc__.splitlines()[0], "fig2").parse_args(argv)
    if args.quick:  # shapes shared with fig2x, fig5 and `gradgym diagnose --quick` (one compile each in a process)
        n_pts, slice_h, seeds_b, var_h, var_seeds = 21, [1, 2, 4, 8], 1, [1, 2, 4, 8], 8
    else:
        n_pts, slice_h, seeds_b, var_h, var_seeds = 201, [1, 2, 4, 8, 16], 32, [1, 2, 4, 8, 12, 16, 24, 32, 48, 64], 16
    avg_h = 8
    shifts = np.linspace(-WIDTH, WIDTH, n_pts)
    with jax.enable_x64(True):
        env = gradgym.make("ant", dtype="float64")
        _, policy_fn = default_policy(env.action_size)
        k_init, k_dir, k_fix, k_seeds, k_grad = jax.random.split(jax.random.PRNGKey(args.seed), 5)
        params = init_policy(env, k_init)
        x, unravel = ravel_pytree(params)
        direction = jax.random.normal(k_dir, x.shape, x.dtype)
        max_h = max(slice_h)
        print(f"[fig2] (a) {n_pts}-point slices at T={slice_h}", flush=True)
        fixed = np.stack(
            [
                np.asarray(
                    policy_loss_slice(env, policy_fn, params, direction, jnp.asarray(shifts), k_fix[None], t, max_h)
                )[:, 0]
                for t in slice_h
            ]
        )
        print(f"[fig2] (b) T={avg_h} slice over {seeds_b} seeds", flush=True)
        seeds_t8 = np.asarray(
            policy_loss_slice(
                env, policy_fn, params, direction, jnp.asarray(shifts), jax.random.split(k_seeds, seeds_b), avg_h, max_h
            )
        )
        variance = []
        for loc in LOCATIONS:
            print(f"[fig2] (c) gradient variance at shift {loc:+.3f}", flush=True)
            p = unravel(x + loc * direction)
            st = gradient_stats_vs_horizon(env, policy_fn, p, var_h, k_grad, var_seeds, verbose=True)
            st["growth"] = fit_growth_rate(st["horizons"], st["variance"])
            variance.append(st)
    res = {
        "width": WIDTH,
        "slice_horizons": slice_h,
        "avg_horizon": avg_h,
        "seeds_b": seeds_b,
        "var_seeds": var_seeds,
        "locations": list(LOCATIONS),
        "variance": variance,
        "quick": args.quick,
        "roughness_fixed": {str(t): roughness(f) for t, f in zip(slice_h, fixed, strict=True)},
        "roughness_T8_single_seed_mean": float(np.mean([roughness(seeds_t8[:, j]) for j in range(seeds_b)])),
        "roughness_T8_seed_average": roughness(seeds_t8.mean(1)),
        "variance_growth_per_step": [v["growth"]["rate"] for v in variance],
    }
    arrays = {"shifts": shifts, "fixed": fixed, "seeds_T8": seeds_t8}
    summary = [
        f"fig2: roughness of fixed-noise slices by T: {res['roughness_fixed']}",
        f"fig2: T=8 roughness, single seeds {res['roughness_T8_single_seed_mean']:.3g} vs seed average "
        f"{res['roughness_T8_seed_average']:.3g}",
        f"fig2: variance growth per step at {list(LOCATIONS)}: {np.round(res['variance_growth_per_step'], 4)}",
    ]
    return finish(args.out, "fig2", res, lambda path: plot(res, arrays, path), summary, **arrays)


if __name__ == "__main__":
    sys.exit(main())
