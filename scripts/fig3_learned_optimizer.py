"""Fig. 3 of Metz et al. 2021: meta-loss slices and meta-gradient variance of a learned optimizer (float64).

Deviation: the inner task is a 2-layer, 32-hidden MLP on a synthetic 10-class dataset made
in code (gradgym.diagnostics.lopt.synthetic_digits), one fixed batch; no MNIST (no downloads).
As in the paper, the (init, direction) pair is picked out of several candidates as the most
unstable one (largest roughness of the longest-unroll slice). (a) slices for several unroll
lengths; (b) the slice smoothed with Gaussian noise sigma = 0.01 (samples and mean); (c) mean
meta-gradient variance over the Gaussian perturbations vs unroll length at shifts 0, .002,
.005, .008. Directions have N(0, 1) entries. Writes fig3.json, fig3.npz, fig3.png.

    python scripts/fig3_learned_optimizer.py [--quick] [--out runs/fig3]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradgym.diagnostics.horizon import fit_growth_rate
from gradgym.diagnostics.lopt import init_inner, init_lopt, meta_grads, meta_loss_slice, synthetic_digits
from gradgym.diagnostics.plots import plot_three_panels
from gradgym.diagnostics.scripting import Progress, figure_parser, finish

WIDTH, SIGMA, STEP_MULT = 0.01, 0.01, 0.01
LOCATIONS = (0.0, 0.002, 0.005, 0.008)


def roughness(y) -> float:
    y = np.asarray(y)
    return float(np.mean(np.abs(np.diff(y, 2)))) if np.all(np.isfinite(y)) else float("inf")


def plot(res: dict, arr: dict, path) -> None:
    plot_three_panels(
        path,
        arr["shifts"],
        [(f"{t} steps", y) for t, y in zip(res["slice_horizons"], arr["slices"], strict=True)],
        arr["smoothed"],
        [(f"shift {loc:.3f}", st["horizons"], st["mean_variance"]) for loc, st in zip(res["locations"],
                                                                                      res["variance"], strict=True)],
        titles=("(a) single parameter value", f"(b) smoothed (sigma={SIGMA}), T={res['smooth_horizon']}",
                "(c) meta-gradient variance"),
        xlabels=("shift", "shift", "unroll length"),
        ylabel="mean meta-loss",
        mean_label="mean",
        log=(True, True, True),
    )


def main(argv: list[str] | None = None) -> int:
    p = figure_parser(__doc__.splitlines()[0], "fig3")
    p.add_argument("--candidates", type=int, default=10, help="(init, direction) candidates to pick from")
    p.add_argument("--points", type=int, default=101, help="shifts per slice")
    p.add_argument("--samples", type=int, default=16, help="Gaussian perturbations for (b) and (c)")
    args = p.parse_args(argv)
    if args.quick:
        # One slice length: the candidates, the slice and the smoothed slices then share one compiled slice.
        n_cand, pts, slice_h, smooth_h, k, var_h = 2, 9, [16], 16, 4, [1, 4, 8]
    else:
        n_cand, pts, k = args.candidates, args.points, args.samples
        slice_h, smooth_h, var_h = [8, 32, 128, 256, 512, 1024], 256, [1, 8, 16, 32, 48, 64, 96, 128]
    max_h = max(slice_h)
    shifts = jnp.linspace(-WIDTH, WIDTH, pts)
    with jax.enable_x64(True):
        xd, yd = synthetic_digits(args.seed)
        data = (jnp.asarray(xd), jnp.asarray(yd))
        inner0 = init_inner(jax.random.PRNGKey(args.seed))
        cands, prog = [], Progress("fig3 candidates", n_cand)
        for c in range(n_cand):
            theta = init_lopt(jax.random.PRNGKey(1000 * args.seed + 10 + c))
            v, unravel = ravel_pytree(theta)
            d = jax.random.normal(jax.random.PRNGKey(1000 * args.seed + 500 + c), v.shape, v.dtype)
            y = np.asarray(meta_loss_slice(theta, d, shifts, inner0, data, max_h, STEP_MULT, jnp.asarray(max_h)))
            cands.append(roughness(y))
            prog(c + 1, f"roughness at T={max_h}: {cands[-1]:.3g}")
        finite = [r if np.isfinite(r) else -1.0 for r in cands]
        pick = int(np.argmax(finite))
        theta = init_lopt(jax.random.PRNGKey(1000 * args.seed + 10 + pick))
        v, unravel = ravel_pytree(theta)
        d = jax.random.normal(jax.random.PRNGKey(1000 * args.seed + 500 + pick), v.shape, v.dtype)
        # Each unroll length compiles its own (shorter) scan: cheaper than masking a max-length one.
        slices = np.stack(
            [np.asarray(meta_loss_slice(theta, d, shifts, inner0, data, t, STEP_MULT, jnp.asarray(t))) for t in slice_h]
        )
        print(f"[fig3] picked candidate {pick}; smoothing with {k} samples", flush=True)
        noise = SIGMA * jax.random.normal(jax.random.PRNGKey(args.seed + 7), (k, v.size), v.dtype)
        smoothed = np.stack(
            [
                np.asarray(
                    meta_loss_slice(unravel(v + e), d, shifts, inner0, data, smooth_h, STEP_MULT, jnp.asarray(smooth_h))
                )
                for e in noise
            ]
        )
        variance = []
        for loc in LOCATIONS:
            st = {"horizons": var_h, "mean_variance": [], "mean_grad_norm": []}
            for t in var_h:
                g = np.asarray(
                    meta_grads(v + loc * d + noise, theta, inner0, data, max(var_h), STEP_MULT, jnp.asarray(t))
                )
                ok = np.all(np.isfinite(g), 1)
                st["mean_variance"].append(float(np.mean(np.var(g[ok], 0))) if ok.sum() > 1 else float("nan"))
                st["mean_grad_norm"].append(float(np.mean(np.linalg.norm(g[ok], axis=1))) if ok.any() else None)
            st["growth"] = fit_growth_rate(var_h, st["mean_variance"])
            variance.append(st)
            print(f"[fig3] shift {loc}: variance {np.array(st['mean_variance'])}", flush=True)
    res = {
        "step_mult": STEP_MULT,
        "sigma": SIGMA,
        "width": WIDTH,
        "candidates_roughness": cands,
        "picked": pick,
        "slice_horizons": slice_h,
        "smooth_horizon": smooth_h,
        "smooth_samples": k,
        "locations": list(LOCATIONS),
        "variance": variance,
        "quick": args.quick,
        "roughness_by_horizon": {str(t): roughness(s) for t, s in zip(slice_h, slices, strict=True)},
        "roughness_smoothed_mean": roughness(smoothed.mean(0)),
        "roughness_smoothed_samples": float(np.mean([roughness(s) for s in smoothed])),
        "variance_growth_per_step": [st["growth"]["rate"] for st in variance],
    }
    arr = {"shifts": np.asarray(shifts), "slices": slices, "smoothed": smoothed}
    summary = [
        f"fig3: slice roughness by T {res['roughness_by_horizon']}; smoothed mean {res['roughness_smoothed_mean']:.3g}",
        f"fig3: meta-gradient variance growth per step at {list(LOCATIONS)}: "
        f"{np.round(res['variance_growth_per_step'], 4)}",
    ]
    return finish(args.out, "fig3", res, lambda path: plot(res, arr, path), summary, **arr)


if __name__ == "__main__":
    sys.exit(main())
