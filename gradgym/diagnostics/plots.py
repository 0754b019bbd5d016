"""Plots of saved diagnostics results (matplotlib, Agg backend). Inputs are the JSON-ready dicts."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 90) -> Path:
    """Saves atomically (tmp + rename) and closes the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _plt().close(fig)
    return path


def _arr(x) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in x], np.float64)


def plot_horizon(runs: dict[str, dict[str, Any]], path: str | Path, recommended: int | None = None) -> Path:
    """Gradient variance and mean norm vs unroll length, one line per run (e.g. per init)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, st in runs.items():
        h = _arr(st["horizons"])
        axes[0].plot(h, _arr(st["variance"]), "o-", label=name)
        axes[1].plot(h, _arr(st["mean_norm"]), "o-", label=name)
    for ax, title in zip(axes, ("gradient variance across seeds", "mean gradient norm"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("unroll length T (steps)")
        ax.set_title(title)
        if recommended is not None:
            ax.axvline(recommended, color="k", ls="--", lw=1, label=f"recommended T={recommended}")
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_spectrum(runs: dict[str, dict[str, Any]], path: str | Path, eig_step: int) -> Path:
    """Fig. 5 layout: eigenvalues of one step, per-step max |eig|, product max |eig|, Lyapunov."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    th = np.linspace(0, 2 * np.pi, 200)
    axes[0].plot(np.cos(th), np.sin(th), "k-", lw=0.8)
    for name, sp in runs.items():
        ev = np.asarray(sp["eig_at_step"], np.float64)
        axes[0].scatter(ev[:, 0], ev[:, 1], s=12, label=name, alpha=0.7)
        i = np.arange(1, len(sp["step_max_abs"]) + 1)
        axes[1].plot(i, _arr(sp["step_max_abs"]), lw=1, label=name)
        axes[2].plot(i, np.exp(_arr(sp["product_log_max_abs"])), lw=1.2, label=name)
        axes[3].plot(i, _arr(sp["lyapunov_running_max"]), lw=1.2, label=name)
    axes[0].set_aspect("equal")
    axes[0].set_title(f"eigenvalues of ds_{eig_step}/ds_{eig_step - 1}")
    axes[0].set_xlabel("Re")
    axes[0].set_ylabel("Im")
    axes[1].set(xscale="log", yscale="log", title="max |eig| of each step", xlabel="iteration i")
    axes[2].set(yscale="log", title="max |eig| of ds_i/ds_0", xlabel="iteration i")
    axes[3].set(title="finite-time Lyapunov exponent (max, per step)", xlabel="iteration i")
    axes[3].axhline(0, color="k", lw=0.8)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.18))
    for ax in axes[1:]:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_slices(shifts: Sequence[float], slices: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """1-D loss slices, one line per label (e.g. per unroll length)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    x = np.asarray(shifts, np.float64)
    for name, y in slices.items():
        ax.plot(x, _arr(y), lw=1, label=name)
    ax.set_xlabel("shift along random direction")
    ax.set_ylabel("loss  (-mean reward)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_three_panels(
    path: str | Path,
    x: Sequence[float],
    family: Sequence[tuple[str, Any]],
    samples: Any,
    variance: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    titles: tuple[str, str, str],
    xlabels: tuple[str, str, str],
    ylabel: str = "",
    mean_label: str = "mean over seeds",
    log: tuple[bool, bool, bool] = (False, False, True),
    marks: Sequence[float] = (),
    variance_fmt: str = "o-",
) -> Path:
    """The (a)/(b)/(c) figure of the paper's Figs. 2-4.

    Args:
        path: the PNG to write.
        x: the x axis of (a) and (b) (a shift, a diameter, ...).
        family: (a) one curve per ``(label, y)``, e.g. per unroll length.
        samples: (b) ``[n, len(x)]``: one thin line per random sample, and their mean in bold black.
        variance: (c) one curve per ``(label, unroll lengths, variance)``, e.g. per location.
        titles, xlabels: of the three panels; ``ylabel``: of (a).
        mean_label: legend of the mean in (b).
        log: log y axis per panel.
        marks: x positions drawn as dashed vertical lines in (a) and (b) (the locations of (c)).
        variance_fmt: matplotlib format of the (c) curves.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    x = np.asarray(x, np.float64)
    for label, y in family:
        axes[0].plot(x, _arr(y), lw=1, label=label)
    samples = np.asarray(samples, np.float64)
    for y in samples:
        axes[1].plot(x, y, lw=0.6, alpha=0.5)
    axes[1].plot(x, samples.mean(0), "k-", lw=2, label=mean_label)
    for m in marks:
        for ax in axes[:2]:
            ax.axvline(m, color="gray", ls="--", lw=0.7)
    for label, h, v in variance:
        axes[2].plot(h, _arr(v), variance_fmt, ms=3, lw=1, label=label)
    axes[0].set_ylabel(ylabel)
    for ax, title, xlabel, lg in zip(axes, titles, xlabels, log, strict=True):
        ax.set(title=title, xlabel=xlabel, yscale="log" if lg else "linear")
        ax.legend(fontsize=7)
    return save_figure(fig, path)
