"""Gradient-clipping sweep of Metz et al. 2021 (Sec. 4.3, no figure in the paper): full-episode backprop on Ant,
learning rate x max-grad-norm grid, final return as a heatmap. The paper reports no setting with positive progress.

Same trainer as fig6 (truncation = episode length). Budgets scaled to a 2-core CPU.
Writes clipping.json and clipping.png.

    python scripts/fig_clipping.py [--quick] [--out runs/clipping]
"""

from __future__ import annotations

import sys

import numpy as np

import gradgym
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.diagnostics.scripting import comma_list, finish, parse_sweep_args, sweep_parser
from gradgym.diagnostics.truncated import sweep_truncated


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
    p = sweep_parser(__doc__.splitlines()[0], "clipping", updates=30)
    p.add_argument("--lrs", default="1e-4,1e-3,1e-2")
    p.add_argument("--clips", default="0.1,1,10,inf")
    args = parse_sweep_args(p, argv, lrs="1e-3", clips="1,inf")
    lrs, clips = comma_list(args.lrs, float, "--lrs"), comma_list(args.clips, float, "--clips")
    grid = [{"learning_rate": lr, "max_grad_norm": clip} for lr in lrs for clip in clips]  # full backprop
    outs = sweep_truncated(gradgym.make("ant"), grid, seed=args.seed, updates=args.updates, num_envs=args.envs,
                           episode_length=args.episode_length, name="clipping")
    final = np.reshape([o["final_return"] for o in outs], (len(lrs), len(clips)))
    initial = np.reshape([o["curve"]["return"][0] for o in outs], (len(lrs), len(clips)))
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
    summary = [f"clipping: final - initial return per (lr, clip):\n{np.round(final - initial, 2)}"]
    return finish(args.out, "clipping", res, lambda path: plot({**res, "clips": clips}, path), summary)


if __name__ == "__main__":
    sys.exit(main())
