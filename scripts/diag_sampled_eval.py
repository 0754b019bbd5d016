"""The mean action against the sampled policy, along a run: every kept checkpoint scored both ways.

The trainer scores a policy by its deterministic (mean) action; in training the
policy acts with sampled actions. Where the two part, a learning curve says more
about the mean action than about what was learned. ``measure`` loads every
checkpoint of a folder (keep them while the run goes, e.g. ``cp -n ck/*.gradgym
all/`` in a loop; the trainer keeps the newest two), scores each on the same
fixed episodes with the mean action and with sampled actions
(:func:`gradgym.agents.evaluation.evaluate_policy`, ``sample=False/True``) and
stores returns and episode lengths in a small JSON; ``plot`` draws stored
measurements side by side (return and the share of episodes that ended early,
vs env steps)::

    python scripts/diag_sampled_eval.py measure runs/sample/all-shac-s2 --episodes 32 \\
        --out docs/shac_variants/traces/sampled-shac-ant-s2.json --label "SHAC, seed 2"
    python scripts/diag_sampled_eval.py plot docs/shac_variants/traces/sampled-*.json \\
        --out docs/figures/shac_variants/sampled_eval.png
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.fileio import atomic_write


def score(path: Path, episodes: int) -> dict:
    """One checkpoint, scored with the mean action and with sampled actions on the same episodes."""
    from gradgym.agents.evaluation import evaluate_policy
    from gradgym.agents.policy_io import load_policy

    policy = load_policy(path)
    row: dict = {"checkpoint": path.name, "env_steps": int(policy.header.get("env_steps", 0))}
    for mode, sample in (("mean", False), ("sampled", True)):
        res = evaluate_policy(policy, episodes, policy.seed, sample=sample)
        row[mode] = {"return_mean": round(res.return_mean, 2), "return_ci95": round(res.return_ci95, 2),
                     "returns": [round(float(r), 2) for r in res.returns],
                     "lengths": [int(n) for n in res.lengths],
                     "ended_early": float(np.mean(res.lengths < res.horizon))}
    row["agent"], row["robot"], row["seed"] = policy.agent, policy.env.robot, policy.seed
    return row


def measure(args: argparse.Namespace) -> int:
    files = sorted(Path(args.folder).glob("ckpt_*.gradgym"))
    if not files:
        raise SystemExit(f"error: no ckpt_*.gradgym in {args.folder}; give a folder of kept checkpoints.")
    rows = []
    for f in files:
        row = score(f, args.episodes)
        rows.append(row)
        m, s = row["mean"], row["sampled"]
        print(f"{row['env_steps']:>10,} env steps | mean action {m['return_mean']:9.1f} ± {m['return_ci95']:7.1f} "
              f"(ended early {m['ended_early']:.0%}) | sampled {s['return_mean']:9.1f} ± {s['return_ci95']:7.1f} "
              f"(ended early {s['ended_early']:.0%})", flush=True)
    doc = {"label": args.label or f"{rows[0]['agent']}, seed {rows[0]['seed']}", "episodes": args.episodes,
           "command": shlex.join(["python", "scripts/diag_sampled_eval.py", *sys.argv[1:]]),
           "run_command": args.run_command, "points": rows}
    atomic_write(args.out, (json.dumps(doc) + "\n").encode())
    print(f"Wrote {args.out}: {len(rows)} checkpoints")
    return 0


def plot(args: argparse.Namespace) -> int:
    plt = _plt()
    docs = [json.loads(Path(p).read_text()) for p in args.measurements]
    fig, (ax_r, ax_e) = plt.subplots(1, 2, figsize=(11, 4))
    for i, doc in enumerate(docs):
        color = f"C{i}"
        steps = [p["env_steps"] / 1e6 for p in doc["points"]]
        for mode, style in (("mean", "-"), ("sampled", "--")):
            ax_r.plot(steps, [p[mode]["return_mean"] for p in doc["points"]], style, color=color, marker=".",
                      label=f"{doc['label']}: {'mean action' if mode == 'mean' else 'sampled actions'}")
            ax_e.plot(steps, [p[mode]["ended_early"] for p in doc["points"]], style, color=color, marker=".")
    ax_r.set(xlabel="env steps (millions)", ylabel=f"return (mean of {docs[0]['episodes']} episodes)")
    ax_e.set(xlabel="env steps (millions)", ylabel="share of episodes that ended early", ylim=(-0.05, 1.05))
    ax_r.legend(fontsize=7)
    fig.suptitle("The mean action (solid) against sampled actions (dashed), same checkpoints and episodes")
    save_figure(fig, args.out)
    print(f"Wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="score every checkpoint of a folder both ways")
    m.add_argument("folder", help="folder of kept ckpt_*.gradgym files of one run")
    m.add_argument("--episodes", type=int, default=32, help="episodes per score (default 32)")
    m.add_argument("--out", required=True, help="JSON to write")
    m.add_argument("--label", default=None, help="legend label (default '<agent>, seed <S>')")
    m.add_argument("--run-command", default=None, help="the training command of the run, stored with the scores")
    m.set_defaults(func=measure)
    p = sub.add_parser("plot", help="plot stored measurements side by side")
    p.add_argument("measurements", nargs="+", help="JSON files written by measure")
    p.add_argument("--out", required=True, help="PNG to write")
    p.set_defaults(func=plot)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
