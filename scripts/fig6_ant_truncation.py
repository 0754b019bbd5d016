"""Fig. 6 of Metz et al. 2021: truncated backprop through time on Ant, one learning curve per truncation t.

Each update resets a batch of Ants, rolls the policy for a whole episode and backpropagates
-mean(reward) with stop_gradient on the env state every t steps (t = episode length: full
backprop). Adam. Budgets are scaled to a 2-core CPU (the paper: 400-step episodes, 1024
envs): see --episode-length, --envs, --updates. Writes fig6.json and fig6.png.

    python scripts/fig6_ant_truncation.py [--quick] [--out runs/fig6]
"""

from __future__ import annotations

import sys

import numpy as np

import gradgym
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.diagnostics.scripting import comma_list, finish, parse_sweep_args, sweep_parser
from gradgym.diagnostics.truncated import sweep_truncated


def _smooth(y, k: int = 5):
    y = np.asarray(y, np.float64)
    return np.convolve(y, np.ones(k) / k, mode="valid") if len(y) >= k else y


def plot(res: dict, path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(19, 3.6))
    ts = [r["truncation"] for r in res["runs"]]
    for r in res["runs"]:
        c = r["curve"]
        axes[0].plot(_smooth(c["return"]), lw=1.2, label=f"t={r['truncation']}")
        axes[1].plot(_smooth(c["x_distance"]), lw=1.2, label=f"t={r['truncation']}")
        axes[2].plot(c["update"], c["grad_norm"], lw=0.8, label=f"t={r['truncation']}")
    axes[0].set(title="episode return (5-update mean)", xlabel="update")
    axes[1].set(title="x-distance per episode (5-update mean)", xlabel="update")
    axes[2].set(yscale="log", title="gradient norm", xlabel="update")
    axes[3].plot(ts, [r["final_return"] for r in res["runs"]], "o-", label="final return")
    axes[3].plot(ts, [r["initial_return"] for r in res["runs"]], "k--", lw=0.8, label="initial return")
    ax2 = axes[3].twinx()
    ax2.plot(ts, [r["final_x_distance"] for r in res["runs"]], "s-", color="tab:red", label="final x-distance")
    ax2.set_ylabel("x-distance", color="tab:red")
    axes[3].set(xscale="log", title="final return vs truncation t", xlabel="truncation length t")
    for ax in axes:
        ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = sweep_parser(__doc__.splitlines()[0], "fig6", updates=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--truncations", default="1,5,10,20,50,200", help="comma-separated t values")
    args = parse_sweep_args(p, argv, truncations="1,8")
    ts = comma_list(args.truncations, int, "--truncations")
    env = gradgym.make("ant")
    outs = sweep_truncated(env, [{"truncation": t, "learning_rate": args.lr} for t in ts], seed=args.seed,
                           updates=args.updates, num_envs=args.envs, episode_length=args.episode_length, name="fig6")
    res = {
        "episode_length": args.episode_length,
        "envs": args.envs,
        "updates": args.updates,
        "lr": args.lr,
        "dtype": env.dtype,
        "runs": [],
        "quick": args.quick,
    }
    for t, out in zip(ts, outs, strict=True):
        c = out["curve"]
        res["runs"].append(
            {
                "truncation": t,
                "curve": c,
                "final_return": out["final_return"],
                "initial_return": c["return"][0],
                "final_x_distance": float(np.mean(c["x_distance"][-5:])),
                "skipped": out["skipped"],
                "seconds": out["seconds"],
            }
        )
    summary = [
        f"fig6 t={r['truncation']:4d}: return {r['initial_return']:8.2f} -> {r['final_return']:8.2f}, "
        f"x-distance {r['final_x_distance']:+.3f}, skipped {r['skipped']}"
        for r in res["runs"]
    ]
    return finish(args.out, "fig6", res, lambda path: plot(res, path), summary)


if __name__ == "__main__":
    sys.exit(main())
