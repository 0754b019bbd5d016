"""Fig. 6 of Metz et al. 2021: truncated backprop through time on Ant, one learning curve per truncation t.

Each update resets a batch of Ants, rolls the policy for a whole episode and backpropagates
-mean(reward) with stop_gradient on the env state every t steps (t = episode length: full
backprop). Adam. Budgets are scaled to a 2-core CPU (the paper: 400-step episodes, 1024
envs): see --episode-length, --envs, --updates. Writes fig6.json and fig6.png.

    python scripts/fig6_ant_truncation.py [--quick] [--out runs/fig6]
"""

from __future__ import annotations

import sys

import jax
import numpy as np

import gradgym
from gradgym.diagnostics import default_policy, init_policy
from gradgym.diagnostics.io import save_json
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.diagnostics.scripting import figure_parser
from gradgym.diagnostics.truncated import train_truncated


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
    p = figure_parser(__doc__.splitlines()[0], "fig6")
    p.add_argument("--episode-length", type=int, default=200)
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--truncations", default="1,5,10,20,50,200", help="comma-separated t values")
    args = p.parse_args(argv)
    if args.quick:
        args.episode_length, args.envs, args.updates, args.truncations = 8, 2, 2, "1,8"
    try:
        ts = [int(t) for t in args.truncations.split(",")]
    except ValueError:
        raise ValueError(f"--truncations must be comma-separated ints, got {args.truncations!r}") from None
    env = gradgym.make("ant")
    _, policy_fn = default_policy(env.action_size)
    params0 = init_policy(env, jax.random.PRNGKey(args.seed), standard_init=False)
    res = {
        "episode_length": args.episode_length,
        "envs": args.envs,
        "updates": args.updates,
        "lr": args.lr,
        "dtype": env.dtype,
        "runs": [],
        "quick": args.quick,
    }
    for t in ts:
        print(f"[fig6] truncation t={t}", flush=True)
        out = train_truncated(
            env,
            policy_fn,
            params0,
            jax.random.PRNGKey(args.seed + 1),
            updates=args.updates,
            num_envs=args.envs,
            episode_length=args.episode_length,
            truncation=t,
            learning_rate=args.lr,
            log_every=10,
            label=f"t={t}",
        )
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
    save_json(args.out / "fig6.json", res)
    plot(res, args.out / "fig6.png")
    for r in res["runs"]:
        print(
            f"fig6 t={r['truncation']:4d}: return {r['initial_return']:8.2f} -> {r['final_return']:8.2f}, "
            f"x-distance {r['final_x_distance']:+.3f}, skipped {r['skipped']}"
        )
    print(f"wrote {args.out}/fig6.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
