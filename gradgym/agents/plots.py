"""Learning-curve plots from saved compare results (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def _grid(runs: list[dict[str, Any]], x_key: str, points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Interpolates every seed's curve onto a common x grid; returns (x, returns[seed, x])."""
    xs = [np.asarray(r["curve"][x_key], np.float64) for r in runs]
    hi = min(x[-1] for x in xs)
    grid = np.linspace(0.0, hi, points) if hi > 0 else np.zeros(1)
    ys = np.stack([np.interp(grid, x, np.asarray(r["curve"]["returns"], np.float64))
                   for x, r in zip(xs, runs, strict=True)])
    return grid, ys


def plot_curves(results: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Writes ``curves_steps.png`` and ``curves_wall.png``: mean over seeds with a min-max band.

    Args:
        results: the dict saved as ``results.json`` by ``gradgym compare``.
        out_dir: folder for the PNGs.

    Returns:
        The written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gradgym.fileio import atomic_write

    written = []
    for x_key, fname, label in (("env_steps", "curves_steps.png", "environment steps"),
                                ("wall_s", "curves_wall.png", "wall-clock seconds (training)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for name, agent in results["agents"].items():
            x, ys = _grid(agent["runs"], x_key)
            line, = ax.plot(x, ys.mean(0), label=f"{name} (n={len(ys)})")
            ax.fill_between(x, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
        ax.set_xlabel(label)
        ax.set_ylabel("evaluation return")
        ax.set_title(f"{results['robot']}: return vs {label.split(' (')[0]}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(out_dir) / fname
        tmp = Path(out_dir) / f".{fname}.tmp.png"
        fig.savefig(tmp)
        plt.close(fig)
        atomic_write(path, tmp.read_bytes())
        tmp.unlink()
        written.append(path)
    return written


def plot_run(summary: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes one run's learning curve (return vs env steps and vs training seconds) as a PNG, atomically.

    Args:
        summary: ``TrainResult.summary()`` (what ``gradgym train --out`` saves as JSON).
        path: the PNG to write.

    Returns:
        The written path.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gradgym.fileio import atomic_write

    c = summary["curve"]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8), dpi=110, sharey=True)
    for ax, x_key, label in ((axes[0], "env_steps", "environment steps"),
                             (axes[1], "wall_s", "wall-clock seconds (training)")):
        ax.plot(c[x_key], c["returns"], marker="o")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("evaluation return")
    fig.suptitle(f"{summary['agent']} on {summary['robot']}, seed {summary['seed']}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())
