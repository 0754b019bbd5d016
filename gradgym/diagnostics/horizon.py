"""Gradient variance and norm vs unroll length, and a recommended truncation horizon.

Definition of the recommendation (also written into every report):

    The gradient of a ``T``-step unroll is *usable* when its variance across
    seeds has not grown by more than ``max_ratio`` (default 100x) over the
    smallest variance seen at any shorter-or-equal unroll, i.e.
    ``v(T) <= max_ratio * min_{T' <= T} v(T')``, and it is finite.
    The recommended truncation horizon is the longest ``T`` of the grid such
    that every ``T' <= T`` is usable.

A ratio (not an absolute value) makes the rule independent of reward scale and
parameter count; exponential growth ``v ~ exp(b T)`` crosses the bound after
``ln(max_ratio) / b`` steps, which is reported too (``fit_growth_rate``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import numpy as np

from gradgym.checks import is_int
from gradgym.diagnostics.objectives import gradient_samples


def gradient_stats_vs_horizon(
    env,
    policy_fn,
    params: Any,
    horizons,
    key: jax.Array,
    num_seeds: int,
    max_horizon: int | None = None,
    truncation: int | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Pathwise policy-gradient statistics across ``num_seeds`` rollout keys for each unroll length.

    Returns a dict of lists (JSON-ready): ``horizons``, ``variance`` (trace of
    the covariance across seeds), ``mean_norm`` (average per-seed gradient
    norm), ``norm_of_mean``, ``loss_mean``, ``loss_std``, ``num_nonfinite``
    (seeds whose gradient was non-finite; left out of the statistics).
    """
    horizons = [int(h) for h in horizons]
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons must be a non-empty list of positive ints, got {horizons!r}.")
    if not is_int(num_seeds, 2):
        raise ValueError(f"num_seeds must be an int >= 2, got {num_seeds!r}.")
    max_horizon = max(horizons) if max_horizon is None else max_horizon
    keys = jax.random.split(key, num_seeds)
    out: dict[str, list] = {
        k: [] for k in ("horizons", "variance", "mean_norm", "norm_of_mean", "loss_mean", "loss_std", "num_nonfinite")
    }
    t0 = time.time()
    for i, h in enumerate(horizons):
        losses, grads = gradient_samples(env, policy_fn, params, keys, h, max_horizon, truncation)
        losses, grads = np.asarray(losses, np.float64), np.asarray(grads, np.float64)
        ok = np.all(np.isfinite(grads), axis=1) & np.isfinite(losses)
        g = grads[ok]
        out["horizons"].append(h)
        out["num_nonfinite"].append(int((~ok).sum()))
        out["variance"].append(float(np.sum(np.var(g, 0, ddof=1))) if len(g) > 1 else float("nan"))
        out["mean_norm"].append(float(np.mean(np.linalg.norm(g, axis=1))) if len(g) else float("nan"))
        out["norm_of_mean"].append(float(np.linalg.norm(np.mean(g, 0))) if len(g) else float("nan"))
        out["loss_mean"].append(float(np.mean(losses[ok])) if ok.any() else float("nan"))
        out["loss_std"].append(float(np.std(losses[ok])) if ok.any() else float("nan"))
        if verbose:
            el = time.time() - t0
            print(
                f"  [{i + 1}/{len(horizons)}] T={h:4d} var={out['variance'][-1]:.3e} "
                f"|g|={out['mean_norm'][-1]:.3e} loss={out['loss_mean'][-1]:+.4f} "
                f"({(i + 1) / el:.2f} horizons/s)",
                flush=True,
            )
    return out


def fit_growth_rate(x, y) -> dict[str, float]:
    """Least-squares fit ``ln y = a + b x`` over finite, positive ``y``.

    Returns ``rate`` (b, per unit of x), ``intercept`` (a), ``doubling``
    (ln 2 / b, inf when b <= 0), ``r2`` and ``n`` (points used).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    ok = np.isfinite(y) & (y > 0) & np.isfinite(x)
    if ok.sum() < 2:
        return {
            "rate": float("nan"),
            "intercept": float("nan"),
            "doubling": float("nan"),
            "r2": float("nan"),
            "n": int(ok.sum()),
        }
    lx, ly = x[ok], np.log(y[ok])
    b, a = np.polyfit(lx, ly, 1)
    resid = ly - (a + b * lx)
    ss = np.sum((ly - ly.mean()) ** 2)
    r2 = 1.0 - np.sum(resid**2) / ss if ss > 0 else 1.0
    return {
        "rate": float(b),
        "intercept": float(a),
        "doubling": float(math.log(2) / b) if b > 0 else float("inf"),
        "r2": float(r2),
        "n": int(ok.sum()),
    }


def recommend_truncation(horizons, variance, max_ratio: float = 100.0) -> dict[str, Any]:
    """The longest unroll whose gradient variance stays within ``max_ratio`` of the best shorter one.

    Args:
        horizons: increasing unroll lengths.
        variance: gradient variance at each (e.g. from :func:`gradient_stats_vs_horizon`).
        max_ratio: allowed growth factor over the running minimum.

    Returns:
        ``horizon`` (recommended T), ``limited_by_grid`` (True when every
        horizon tried was usable: the true limit may be longer), ``ratios``
        (v(T) / running min), ``growth`` (fit of ln v vs T), ``crossing``
        (ln(max_ratio) / fitted rate: where an exponential fit would cross),
        and ``rule`` (the definition in words).
    """
    if not max_ratio > 1:
        raise ValueError(f"max_ratio must be > 1, got {max_ratio!r}.")
    h = np.asarray(horizons, np.float64)
    v = np.asarray(variance, np.float64)
    if h.shape != v.shape or h.size == 0 or np.any(np.diff(h) <= 0):
        raise ValueError(
            f"horizons must be increasing and match variance in length; got {h.size} horizons and {v.size} variances."
        )
    ratios, best, rec, usable = [], math.inf, None, True
    for hi, vi in zip(h, v, strict=True):
        ok = math.isfinite(vi)
        if ok:
            best = min(best, vi)
        r = vi / best if ok and best > 0 else (1.0 if ok else math.inf)
        ratios.append(float(r))
        usable = usable and ok and r <= max_ratio
        if usable:
            rec = int(hi)
    growth = fit_growth_rate(h, v)
    crossing = math.log(max_ratio) / growth["rate"] if growth["rate"] > 0 else float("inf")
    return {
        "horizon": rec if rec is not None else int(h[0]),
        "limited_by_grid": bool(usable),
        "ratios": ratios,
        "growth": growth,
        "crossing": float(crossing),
        "max_ratio": float(max_ratio),
        "rule": (
            f"longest unroll T whose gradient variance across seeds is finite and at most {max_ratio:g}x the "
            "smallest variance at any unroll <= T (for every unroll up to T)"
        ),
    }
