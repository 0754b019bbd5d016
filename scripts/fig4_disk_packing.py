"""Fig. 4 of Metz et al. 2021: bi-disperse disk packing (JAX MD, FIRE, phi = 0.98), energy and dE/dD vs steps.

N = 128 disks (64 of diameter D, 64 of diameter 1), random initial positions, quenched
with FIRE; dE/dD by forward-mode differentiation through every FIRE step. float64.
(a) energy vs D after 1, 2, 4, ..., 256 steps (seed mean); (b) energy at 256 steps per
seed and the mean; (c) variance across seeds of dE/dD vs steps at D = 0.10, 0.35, 0.60, 0.85.
Writes fig4.json, fig4.npz and fig4.png.

    python scripts/fig4_disk_packing.py [--quick] [--out runs/fig4]
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from gradgym.diagnostics.horizon import fit_growth_rate
from gradgym.diagnostics.packing import packing_sweep
from gradgym.diagnostics.plots import plot_three_panels
from gradgym.diagnostics.scripting import figure_parser, finish

MARKED = (0.10, 0.35, 0.60, 0.85)


def plot(res: dict, arr: dict, path) -> None:
    d, e, g = arr["diameters"], arr["energy"], arr["grad"]
    steps = e.shape[2]
    marked = [int(np.argmin(np.abs(d - dm))) for dm in MARKED]
    plot_three_panels(
        path,
        d,
        [(f"{k} steps", e[:, :, k - 1].mean(1)) for k in [2**i for i in range(9) if 2**i <= steps]],
        e[:, :, -1].T,
        [(f"D={d[i]:.2f}", np.arange(1, steps + 1), np.var(g[i], 0)) for i in marked],
        titles=("(a) energy vs diameter (seed mean)", f"(b) energy after {steps} steps",
                "(c) variance of dE/dD across seeds"),
        xlabels=("small-disk diameter D", "small-disk diameter D", "FIRE steps"),
        log=(True, True, True),
        variance_fmt="-",
    )


def main(argv: list[str] | None = None) -> int:
    args = figure_parser(__doc__.splitlines()[0], "fig4").parse_args(argv)
    n, seeds, steps, diam = (
        (32, 3, 16, np.array(MARKED))
        if args.quick
        else (128, 16, 256, np.round(np.union1d(np.linspace(0.1, 1.0, 19), MARKED), 4))
    )
    print(f"[fig4] N={n}, {len(diam)} diameters x {seeds} seeds x {steps} FIRE steps (forward-mode dE/dD)", flush=True)
    with jax.enable_x64(True):
        out = packing_sweep(diam, seeds, steps, jax.random.PRNGKey(args.seed), num_particles=n, phi=0.98)
    var = np.var(out["grad"], 1)  # [D, steps]
    it = np.arange(1, steps + 1)
    growth = {}
    for dm in MARKED:
        i = int(np.argmin(np.abs(diam - dm)))
        growth[f"{diam[i]:.2f}"] = {"var_at_end": float(var[i, -1]), "fit": fit_growth_rate(it, var[i])}
    res = {
        "num_particles": n,
        "phi": 0.98,
        "seeds": seeds,
        "steps": steps,
        "diameters": diam,
        "quick": args.quick,
        "energy_mean_at_end": out["energy"][:, :, -1].mean(1),
        "energy_std_at_end": out["energy"][:, :, -1].std(1),
        "grad_variance_growth": growth,
    }
    arrays = {"diameters": diam, **out}
    summary = [
        f"fig4 D={k}: Var[dE/dD] after {steps} steps {v['var_at_end']:.3g}, fitted growth "
        f"{v['fit']['rate']:.3f}/step (x{np.exp(v['fit']['rate']):.3f})"
        for k, v in growth.items()
    ]
    return finish(args.out, "fig4", res, lambda path: plot(res, arrays, path), summary, **arrays)


if __name__ == "__main__":
    sys.exit(main())
