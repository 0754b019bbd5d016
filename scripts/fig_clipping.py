"""Gradient-clipping sweep of Metz et al. 2021 (Sec. 4.3, no figure in the paper): full-episode backprop on Ant,
learning rate x max-grad-norm grid, final return as a heatmap. The paper reports no setting with positive progress.

Same trainer as fig6 (truncation = episode length). Budgets scaled to a 2-core CPU.
Writes clipping.json and clipping.png.

    python scripts/fig_clipping.py [--quick] [--out runs/clipping]
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


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def plot(res: dict, path) -> None:
    plt = _plt()
    gain = np.asarray(res["final_minus_initial"], np.float64)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    lim = max(1e-9, float(np.nanmax(np.abs(gain))))
    im = ax.imshow(gain, cmap="RdBu", vmin=-lim, vmax=lim, origin="lower")
    ax.set_xticks(range(len(res["clips"])), [f"{c:g}" for c in res["clips"]])
    ax.set_yticks(range(len(res["lrs"])), [f"{lr:g}" for lr in res["lrs"]])
    ax.set(
        xlabel="max gradient norm",
        ylabel="learning rate",
        title=f"final - initial return (full backprop, T={res['episode_length']})",
    )
    for i in range(gain.shape[0]):
        for j in range(gain.shape[1]):
            ax.text(j, i, f"{gain[i, j]:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = figure_parser(__doc__.splitlines()[0], "clipping")
    p.add_argument("--episode-length", type=int, default=200)
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--updates", type=int, default=30)
    p.add_argument("--lrs", default="1e-4,1e-3,1e-2")
    p.add_argument("--clips", default="0.1,1,10,inf")
    args = p.parse_args(argv)
    if args.quick:
        args.episode_length, args.envs, args.updates, args.lrs, args.clips = 8, 2, 2, "1e-3", "1,inf"
    lrs, clips = _floats(args.lrs), _floats(args.clips)
    env = gradgym.make("ant")
    _, policy_fn = default_policy(env.action_size)
    params0 = init_policy(env, jax.random.PRNGKey(args.seed), standard_init=False)
    final = np.zeros((len(lrs), len(clips)))
    initial = np.zeros_like(final)
    for i, lr in enumerate(lrs):
        for j, clip in enumerate(clips):
            print(f"[clipping] lr={lr:g} max_grad_norm={clip:g}", flush=True)
            out = train_truncated(
                env,
                policy_fn,
                params0,
                jax.random.PRNGKey(args.seed + 1),
                updates=args.updates,
                num_envs=args.envs,
                episode_length=args.episode_length,
                truncation=args.episode_length,
                learning_rate=lr,
                max_grad_norm=clip,
                log_every=10,
                label=f"lr={lr:g},clip={clip:g}",
            )
            final[i, j], initial[i, j] = out["final_return"], out["curve"]["return"][0]
    res = {
        "episode_length": args.episode_length,
        "envs": args.envs,
        "updates": args.updates,
        "lrs": lrs,
        "clips": [c if np.isfinite(c) else "inf" for c in clips],
        "final_return": final,
        "initial_return": initial,
        "final_minus_initial": final - initial,
        "quick": args.quick,
        "best_gain": float(np.max(final - initial)),
    }
    save_json(args.out / "clipping.json", res)
    res["clips"] = clips
    plot(res, args.out / "clipping.png")
    print(f"clipping: final - initial return per (lr, clip):\n{np.round(final - initial, 2)}")
    print(f"wrote {args.out}/clipping.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
