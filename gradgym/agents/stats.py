"""Statistics over seeds for reports: bootstrap intervals, IQM, area under the curve, ties.

Few seeds are the norm in RL, so every comparison carries its uncertainty
(Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice",
the ``rliable`` library): a point estimate over seeds (the mean, or the
interquartile mean where there are at least :data:`IQM_MIN_SEEDS` seeds)
with a 95% percentile-bootstrap interval. An agent is called the winner only
when its interval lies wholly above every other agent's; otherwise the agents
whose intervals overlap the best one's tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as sp_stats

IQM_MIN_SEEDS = 5  # rliable's IQM needs enough runs for the middle half to be more than one or two
LEVEL = 0.95
N_BOOT = 10_000


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean(x, 0.25)``, as rliable)."""
    return float(sp_stats.trim_mean(np.asarray(values, np.float64), 0.25))


def _check(values: Any) -> np.ndarray:
    x = np.asarray(values, np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("no values: a statistic over seeds needs at least one run.")
    return x


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, level: float = LEVEL,
                 n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``stat`` over ``values`` (resampled with replacement ``n_boot`` times).

    Deterministic for a given ``seed``. One value (or identical values) gives a zero-width interval.
    """
    x = _check(values)
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    samples = x[idx]
    boot = samples.mean(axis=1) if stat is np.mean else np.apply_along_axis(stat, 1, samples)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(low), float(high)


def estimate(values: Sequence[float]) -> dict[str, float]:
    """Point estimate over seeds with its 95% bootstrap interval.

    Returns ``{"value", "low", "high", "stat", "n"}``; ``stat`` is ``"mean"`` for
    fewer than :data:`IQM_MIN_SEEDS` values, else ``"iqm"``.
    """
    x = _check(values)
    use_iqm = x.size >= IQM_MIN_SEEDS
    fn = iqm if use_iqm else np.mean
    low, high = bootstrap_ci(x, fn)
    return {"value": float(fn(x)), "low": low, "high": high, "stat": "iqm" if use_iqm else "mean", "n": int(x.size)}


def auc(env_steps: Sequence[float], returns: Sequence[float]) -> float:
    """Area under a learning curve, normalised by its length: the average return over training (trapezoids).

    A single point gives that point's return.
    """
    x, y = np.asarray(env_steps, np.float64), np.asarray(returns, np.float64)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"a curve needs as many env_steps as returns (>= 1), got {x.shape} and {y.shape}.")
    span = x[-1] - x[0]
    if x.size == 1 or span <= 0:
        return float(y[-1])
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / span)


def clearly_above(a: dict[str, float], b: dict[str, float]) -> bool:
    """Interval ``a`` lies wholly above interval ``b`` (``estimate`` dicts)."""
    return a["low"] > b["high"]


def rank(estimates: dict[str, dict[str, float]]) -> tuple[str | None, list[str]]:
    """The winner, or the agents that tie for first.

    Returns ``(winner, tied)``: ``winner`` is the agent whose interval is clear
    of (above) every other agent's, else ``None``; ``tied`` lists the best agent
    and every agent whose interval overlaps the best one's, best first.
    """
    if not estimates:
        raise ValueError("no agents to rank.")
    order = sorted(estimates, key=lambda k: estimates[k]["value"], reverse=True)
    best = order[0]
    if all(clearly_above(estimates[best], estimates[o]) for o in order[1:]):
        return best, [best]
    return None, [o for o in order if o == best or not clearly_above(estimates[best], estimates[o])]


def learned(initial: Sequence[float], final: Sequence[float]) -> dict[str, float | bool]:
    """Did the runs learn? The bootstrap interval of the per-seed gain (final - initial) must lie above 0.

    Returns ``{"gain", "low", "high", "learned"}`` (mean gain and its interval).
    """
    gain = _check(final) - _check(initial)
    low, high = bootstrap_ci(gain)
    return {"gain": float(gain.mean()), "low": low, "high": high, "learned": bool(low > 0)}
