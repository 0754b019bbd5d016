"""Fig. 5 of Metz et al. 2021: closed-loop Jacobian spectra of Brax Ant for a random policy init and init x 0.01.

For each init: eigenvalues of ds_90/ds_89, max |eigenvalue| of every single-step
Jacobian, max |eigenvalue| of ds_i/ds_0, finite-time Lyapunov exponents (QR), and
the gradient norm vs unroll length. float64 throughout. Writes fig5.json and fig5.png.

    python scripts/fig5_ant_spectrum.py [--quick] [--out runs/fig5]
"""

from __future__ import annotations

import sys

import jax
import numpy as np

import gradgym
from gradgym.diagnostics import (
    closed_loop_jacobians,
    default_policy,
    fit_growth_rate,
    gradient_stats_vs_horizon,
    init_policy,
    lyapunov_spectrum,
    spectrum_stats,
)
from gradgym.diagnostics.plots import _arr, _plt, save_figure
from gradgym.diagnostics.scripting import figure_parser, finish

INITS = {"init1 (random)": 1.0, "init2 (init1 x 0.01)": 0.01}


def plot(res: dict, path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 5, figsize=(19, 3.4))
    th = np.linspace(0, 2 * np.pi, 200)
    axes[0].plot(np.cos(th), np.sin(th), "k-", lw=0.8)
    for name, r in res["runs"].items():
        ev = np.asarray(r["eig_at_step"])
        axes[0].scatter(ev[:, 0], ev[:, 1], s=12, alpha=0.7, label=name)
        i = np.arange(1, len(r["step_max_abs"]) + 1)
        axes[1].plot(i, r["step_max_abs"], lw=1, label=name)
        axes[2].plot(i, np.exp(_arr(r["product_log_max_abs"])), lw=1.2, label=name)
        axes[3].plot(r["horizons"], r["grad_norm"], "o-", ms=3, label=name)
        axes[4].plot(i, r["lyapunov_running_max"], lw=1.2, label=name)
    k = res["eig_step"]
    axes[0].set(aspect="equal", title=f"(a) eigenvalues of ds_{k}/ds_{k - 1}", xlabel="real", ylabel="imaginary")
    axes[1].set(xscale="log", yscale="log", title="(b) max |eig| per step", xlabel="iteration")
    axes[2].set(yscale="log", title="(c) max |eig| of ds_i/ds_0", xlabel="iteration i")
    axes[3].set(xscale="log", yscale="log", title="(d) gradient norm", xlabel="unroll length")
    axes[4].set(title="max finite-time Lyapunov exp.", xlabel="iteration")
    axes[4].axhline(0, color="k", lw=0.8)
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.18))
    for ax in axes[1:]:
        ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    args = figure_parser(__doc__.splitlines()[0], "fig5").parse_args(argv)
    # Quick: the shapes of fig2's, fig2x's and `gradgym diagnose`'s quick modes (one compile each in a process).
    steps, horizons, seeds = (12, [1, 2, 4, 8], 8) if args.quick else (100, [1, 2, 4, 8, 16, 24, 32, 48, 64, 100], 8)
    res: dict = {"steps": steps, "eig_step": min(90, steps), "seeds": seeds, "runs": {}, "quick": args.quick}
    with jax.enable_x64(True):
        env = gradgym.make("ant", dtype="float64")
        _, policy_fn = default_policy(env.action_size)
        k_init, k_spec, k_grad = jax.random.split(jax.random.PRNGKey(args.seed), 3)
        base = init_policy(env, k_init)
        for name, scale in INITS.items():
            params = jax.tree.map(lambda p, s=scale: p * s, base)
            print(f"[fig5] {name}: Jacobians along {steps} steps", flush=True)
            jac = closed_loop_jacobians(env, policy_fn, params, k_spec, steps)
            sp = spectrum_stats(jac["jacobians"])
            ly = lyapunov_spectrum(jac["jacobians"])
            print(f"[fig5] {name}: gradient norms at {horizons}", flush=True)
            st = gradient_stats_vs_horizon(env, policy_fn, params, horizons, k_grad, seeds, verbose=True)
            ev = sp["step_eigs"][res["eig_step"] - 1]
            i = np.arange(1, steps + 1)
            res["runs"][name] = {
                "eig_at_step": np.stack([ev.real, ev.imag], 1),
                "step_max_abs": sp["step_max_abs"],
                "frac_steps_max_abs_gt_1": float(np.mean(sp["step_max_abs"] > 1)),
                "product_log_max_abs": sp["product_log_max_abs"],
                "product_growth_per_step": fit_growth_rate(i, np.exp(sp["product_log_max_abs"]))["rate"],
                "lyapunov_exponents": ly["exponents"],
                "lyapunov_running_max": ly["running"][:, 0],
                "horizons": st["horizons"],
                "grad_norm": st["mean_norm"],
                "grad_variance": st["variance"],
                "grad_norm_growth_per_step": fit_growth_rate(st["horizons"], st["mean_norm"])["rate"],
                "grad_variance_growth_per_step": fit_growth_rate(st["horizons"], st["variance"])["rate"],
                "done_during_spectrum": bool(jac["done"].any()),
            }
    summary = [
        f"fig5 {name}: ln max|eig(ds_T/ds_0)| at T={steps}: {r['product_log_max_abs'][-1]:.2f}, growth/step "
        f"{r['product_growth_per_step']:.4f}, max Lyapunov {r['lyapunov_exponents'][0]:.4f}/step, "
        f"grad-norm growth {r['grad_norm_growth_per_step']:.4f}/step"
        for name, r in res["runs"].items()
    ]
    return finish(args.out, "fig5", res, lambda path: plot(res, path), summary)


if __name__ == "__main__":
    sys.exit(main())
