"""The adaptive window of SHAC runs: store each run's window and gradient norm per iteration, and plot them.

A run trained with ``--log-dir`` (``gradgym train --agent shac --config
'{"adaptive_horizon": true}' --log-dir DIR``) logs the window used
(``train/horizon``) and the geometric mean of the gradient norm
(``train/grad_norm``) of every iteration to ``DIR/shac-<robot>-seed<S>/scalars.csv``.
``store`` keeps them, with the evaluations, in a small JSON; ``plot`` draws
stored traces side by side (window, gradient norm and return vs env steps)::

    python scripts/horizon_trace.py store runs/split/logs/shac-ant-seed0 \\
        --out docs/shac_variants/traces/split-ant-s0.json --label "split robots" --command "gradgym train ..."
    python scripts/horizon_trace.py plot docs/shac_variants/traces/split-ant-s*.json \\
        --out docs/figures/shac_variants/windows.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

from gradgym.agents.logs import CSV_NAME
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.fileio import atomic_write

TAGS = {"train/horizon": "horizon", "train/grad_norm": "grad_norm", "eval/return": "eval"}


def read_trace(run_dir: Path) -> dict:
    """``{"horizon": [[env_steps, h], ...], "grad_norm": [...], "eval": [...], "horizon_counts": {h: n}}``."""
    path = run_dir / CSV_NAME
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; give the run's folder under --log-dir "
                         "(e.g. runs/logs/shac-ant-seed0).")
    trace: dict = {name: [] for name in TAGS.values()}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["tag"] in TAGS:
                trace[TAGS[row["tag"]]].append([int(row["env_steps"]), round(float(row["value"]), 4)])
    if not trace["horizon"]:
        raise SystemExit(f"error: {path} has no train/horizon rows; was the run trained with "
                         "'adaptive_horizon': true?")
    trace["horizon_counts"] = {str(int(h)): n for h, n in sorted(Counter(v for _, v in trace["horizon"]).items())}
    return trace


def store(args: argparse.Namespace) -> int:
    trace = {"label": args.label, "command": args.command, **read_trace(Path(args.run_dir))}
    atomic_write(args.out, (json.dumps(trace) + "\n").encode())
    counts = ", ".join(f"{h}: {n}" for h, n in trace["horizon_counts"].items())
    print(f"Wrote {args.out}: {len(trace['horizon'])} iterations (window: iterations {counts})")
    return 0


def plot(args: argparse.Namespace) -> int:
    plt = _plt()
    traces = [(Path(p), json.loads(Path(p).read_text())) for p in args.traces]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for path, t in traces:
        name = f"{t.get('label') or ''} {path.stem}".strip()
        line, = axes[0].step(*zip(*t["horizon"], strict=True), where="post", label=name)
        axes[1].plot(*zip(*t["grad_norm"], strict=True), color=line.get_color(), lw=0.8)
        axes[2].plot(*zip(*t["eval"], strict=True), "o-", color=line.get_color())
    axes[0].set_ylabel("window (steps)")
    axes[0].set_yscale("log", base=2)
    axes[1].set_ylabel("gradient norm\n(geometric mean per iteration)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("evaluation return")
    axes[2].set_xlabel("environment steps")
    axes[0].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    save_figure(fig, args.out)
    print(f"Wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("store", help="keep one run's window, gradient norm and evaluations as JSON")
    s.add_argument("run_dir", help="the run's folder under --log-dir (holds scalars.csv)")
    s.add_argument("--out", required=True, help="the JSON to write")
    s.add_argument("--label", default="", help="names the variant in plots")
    s.add_argument("--command", default="", help="the command that trained the run")
    s.set_defaults(func=store)
    q = sub.add_parser("plot", help="window, gradient norm and return vs env steps of stored traces")
    q.add_argument("traces", nargs="+", help="JSONs written by store")
    q.add_argument("--out", required=True, help="the PNG to write")
    q.set_defaults(func=plot)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
