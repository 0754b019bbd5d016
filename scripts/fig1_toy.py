"""Fig. 1 of Metz et al. 2021: variance of reparameterised vs ES gradients on a toy loss vs frequency.

l(x) = 0.1 sin(x w / pi) + (x/10)^2 + 0.1, Gaussian smoothing sigma = 0.3. For each
frequency w, the per-sample variance of the pathwise and antithetic-ES estimators
is computed on an x grid over [-10, 10]; the plot shows its maximum over x.
Writes fig1.json, fig1.npz and fig1.png to --out.

    python scripts/fig1_toy.py [--quick] [--out runs/fig1]
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from gradgym.diagnostics.horizon import fit_growth_rate
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.diagnostics.scripting import figure_parser, finish
from gradgym.diagnostics.toy import toy_estimator_variance, toy_loss, toy_smoothed

SIGMA = 0.3


def plot(res: dict, path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    x = np.linspace(-10, 10, 1000)
    for ax, w in zip(axes[:3], (1.0, 4.0, 10.0), strict=True):
        ax.plot(x, np.asarray(toy_loss(x, w)), "r-", lw=0.8, label="loss")
        ax.plot(x, toy_smoothed(x, w, SIGMA), "k-", lw=1.2, label=f"smoothed (sigma={SIGMA})")
        ax.set(title=f"w = {w:g}", xlabel="x")
        ax.legend(fontsize=7)
    ws = np.asarray(res["ws"])
    axes[3].loglog(ws, res["max_var_pathwise"], "o-", ms=3, label="Reparam Gradient")
    axes[3].loglog(ws, res["max_var_es"], "s-", ms=3, label="Black Box / ES Gradient")
    axes[3].set(xlabel="frequency w", ylabel="max over x of gradient variance", title="estimator variance")
    axes[3].legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    args = figure_parser(__doc__.splitlines()[0], "fig1").parse_args(argv)
    n_x, n_w, n_s = (21, 9, 200) if args.quick else (201, 41, 2000)
    xs = np.linspace(-10, 10, n_x)
    ws = np.logspace(-2, 2, n_w)
    with jax.enable_x64(True):
        out = toy_estimator_variance(xs, ws, SIGMA, n_s, jax.random.PRNGKey(args.seed))
    rp, es = out["pathwise_var"].max(1), out["es_var"].max(1)
    hi = ws >= 10
    slope_rp = fit_growth_rate(np.log(ws[hi]), rp[hi])["rate"]  # d ln var / d ln w
    slope_es = fit_growth_rate(np.log(ws[hi]), es[hi])["rate"]
    cross = ws[np.argmax(rp > es)] if np.any(rp > es) else None
    res = {
        "sigma": SIGMA,
        "num_samples": n_s,
        "xs": xs,
        "ws": ws,
        "max_var_pathwise": rp,
        "max_var_es": es,
        "loglog_slope_pathwise_w_ge_10": slope_rp,
        "loglog_slope_es_w_ge_10": slope_es,
        "crossover_w": cross,
        "quick": args.quick,
    }
    summary = [f"fig1: pathwise var slope (log-log, w>=10) {slope_rp:.2f}, ES slope {slope_es:.2f}, crossover w ~ {cross}"]
    return finish(args.out, "fig1", res, lambda path: plot(res, path), summary, xs=xs, ws=ws, **out)


if __name__ == "__main__":
    sys.exit(main())
