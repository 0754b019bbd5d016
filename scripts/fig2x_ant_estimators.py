"""Extension of Fig. 2c (spec item 9): variance of pathwise vs antithetic-ES gradients of the smoothed Ant loss
vs unroll length, and their inverse-variance combination (Metz et al. 2021 Sec. 4.6). float64.

Both estimators target grad E[loss(theta + eps, k)] with eps ~ N(0, sigma^2 I) and the rollout
key k (reset + policy noise), from the same (eps, k) draws. Writes estimators.json and .png.

    python scripts/fig2x_ant_estimators.py [--quick] [--out runs/estimators]
"""

from __future__ import annotations

import sys

import jax

import gradgym
from gradgym.diagnostics import default_policy, fit_growth_rate, init_policy
from gradgym.diagnostics.objectives import policy_estimators
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.diagnostics.scripting import Progress, figure_parser, finish

NAMES = ("pathwise", "es_antithetic", "combined")


def plot(res: dict, path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in NAMES:
        ax.plot(res["horizons"], [r.get(name, {}).get("variance") for r in res["by_horizon"]], "o-", ms=3, label=name)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="unroll length T",
        ylabel="per-sample gradient variance (trace)",
        title=f"Ant: gradient estimators (sigma={res['sigma']:g}, {res['samples']} samples)",
    )
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = figure_parser(__doc__.splitlines()[0], "estimators")
    p.add_argument("--sigma", type=float, default=0.01, help="parameter-noise std of the smoothed objective")
    args = p.parse_args(argv)
    # Quick: 8 samples and unrolls up to 8, the shapes of fig2's, fig5's and `gradgym diagnose`'s quick gradient
    # statistics, so that one compiled gradient program serves all of them in one process.
    horizons, samples = ([1, 4, 8], 8) if args.quick else ([1, 2, 4, 8, 16, 32, 64, 100], 16)
    res = {"sigma": args.sigma, "samples": samples, "horizons": horizons, "by_horizon": [], "quick": args.quick}
    with jax.enable_x64(True):
        env = gradgym.make("ant", dtype="float64")
        _, policy_fn = default_policy(env.action_size)
        params = init_policy(env, jax.random.PRNGKey(args.seed))
        prog = Progress("estimators", len(horizons))
        for i, t in enumerate(horizons):
            r = policy_estimators(
                env, policy_fn, params, jax.random.PRNGKey(args.seed + 1), t, max(horizons), args.sigma, samples
            )
            res["by_horizon"].append(r)
            prog(i + 1, f"T={t} " + " ".join(f"{n}={r[n]['variance']:.3g}" for n in NAMES if n in r))
    for name in ("pathwise", "es_antithetic"):
        res[f"{name}_growth"] = fit_growth_rate(horizons, [r[name]["variance"] for r in res["by_horizon"]])
    cross = [
        t
        for t, r in zip(horizons, res["by_horizon"], strict=True)
        if r["es_antithetic"]["variance"] < r["pathwise"]["variance"]
    ]
    res["first_horizon_es_lower"] = cross[0] if cross else None
    summary = [
        f"estimators: variance growth/step pathwise {res['pathwise_growth']['rate']:.4f}, ES "
        f"{res['es_antithetic_growth']['rate']:.4f}; ES lower from T={res['first_horizon_es_lower']}"
    ]
    return finish(args.out, "estimators", res, lambda path: plot(res, path), summary)


if __name__ == "__main__":
    sys.exit(main())
