"""Gradient estimators of one Gaussian-smoothed objective (Metz et al. 2021, Sec. 2, 4.6).

All estimators target the gradient of the smoothed loss

    L_sigma(theta) = E_{eps ~ N(0, sigma^2 I), k} [ l(theta + eps, k) ],

where ``k`` is the loss's own randomness (e.g. the key of a stochastic
rollout). Each returns a :class:`GradEstimate` with the sample mean and the
*per-sample* variance (variance of one single-sample estimate; divide by
``num_samples`` for the variance of the mean), so estimators can be compared
independently of the sample count.

- :func:`pathwise`: reparameterised, ``grad l(theta + eps, k)`` with the noise
  held fixed while differentiating.
- :func:`es_antithetic`: Gaussian-smoothing ES with antithetic pairs,
  ``(l(theta+eps, k) - l(theta-eps, k)) eps / (2 sigma^2)``.
- :func:`score_function`: REINFORCE on the search distribution,
  ``(l(theta+eps, k) - b) eps / sigma^2`` with the baseline ``b = l(theta, k)``
  (independent of ``eps``, so the estimate stays unbiased).
- :func:`combine`: inverse-variance weighting of two estimates (Parmas et al.
  2018; Metz et al. 2019).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradgym.checks import is_int

LossFn = Callable[[Any, jax.Array], jax.Array]
"""``loss_fn(theta, key) -> scalar``; ``key`` drives the loss's own noise."""


class GradEstimate(NamedTuple):
    """A Monte-Carlo gradient estimate.

    Attributes:
        mean: the estimate (sample mean), same pytree structure as theta.
        variance: per-sample variance of each coordinate (ddof=1), same structure.
        num_samples: number of independent samples (antithetic pairs count once).
    """

    mean: Any
    variance: Any
    num_samples: int

    @property
    def total_variance(self) -> jax.Array:
        """Trace of the per-sample covariance (sum of coordinate variances)."""
        return sum(jnp.sum(v) for v in jax.tree.leaves(self.variance))


def _check(sigma: float, num_samples: int) -> None:
    if not is_int(num_samples, 2):
        raise ValueError(f"num_samples must be an int >= 2 (variance needs two samples), got {num_samples!r}.")
    if isinstance(sigma, (int, float)) and not sigma > 0:
        raise ValueError(f"sigma must be > 0 (the smoothing std), got {sigma!r}.")


def _noise(key: jax.Array, x: jax.Array, sigma: float, num_samples: int) -> tuple[jax.Array, jax.Array]:
    k_eps, k_loss = jax.random.split(key)
    eps = sigma * jax.random.normal(k_eps, (num_samples, x.size), x.dtype)
    return eps, jax.random.split(k_loss, num_samples)


def _summarise(samples: jax.Array, unravel) -> GradEstimate:
    return GradEstimate(unravel(jnp.mean(samples, 0)), unravel(jnp.var(samples, 0, ddof=1)), samples.shape[0])


def pathwise(loss_fn: LossFn, theta: Any, key: jax.Array, sigma: float, num_samples: int) -> GradEstimate:
    """Reparameterised (pathwise) estimate: the mean of ``grad l(theta + eps_i, k_i)``."""
    _check(sigma, num_samples)
    x, unravel = ravel_pytree(theta)
    eps, keys = _noise(key, x, sigma, num_samples)
    flat = lambda v, k: loss_fn(unravel(v), k)  # noqa: E731
    grads = jax.vmap(jax.grad(flat))(x + eps, keys)
    return _summarise(grads, unravel)


def es_antithetic(loss_fn: LossFn, theta: Any, key: jax.Array, sigma: float, num_samples: int) -> GradEstimate:
    """Antithetic Gaussian-smoothing ES; ``num_samples`` pairs (2 loss calls each), common noise per pair."""
    _check(sigma, num_samples)
    x, unravel = ravel_pytree(theta)
    eps, keys = _noise(key, x, sigma, num_samples)
    flat = lambda v, k: loss_fn(unravel(v), k)  # noqa: E731
    lp = jax.vmap(flat)(x + eps, keys)
    lm = jax.vmap(flat)(x - eps, keys)
    samples = ((lp - lm) / (2.0 * sigma**2))[:, None] * eps
    return _summarise(samples, unravel)


def score_function(
    loss_fn: LossFn, theta: Any, key: jax.Array, sigma: float, num_samples: int, baseline: bool = True
) -> GradEstimate:
    """Score-function (REINFORCE) estimate ``(l(theta+eps) - b) eps / sigma^2``.

    Args:
        baseline: subtract ``b = l(theta, k_i)`` (same loss noise, no parameter
            noise); unbiased because ``b`` does not depend on ``eps_i``.
    """
    _check(sigma, num_samples)
    x, unravel = ravel_pytree(theta)
    eps, keys = _noise(key, x, sigma, num_samples)
    flat = lambda v, k: loss_fn(unravel(v), k)  # noqa: E731
    lp = jax.vmap(flat)(x + eps, keys)
    if baseline:
        lp = lp - jax.vmap(flat, in_axes=(None, 0))(x, keys)
    samples = (lp / sigma**2)[:, None] * eps
    return _summarise(samples, unravel)


def combine(a: GradEstimate, b: GradEstimate, per_coordinate: bool = False) -> GradEstimate:
    """Inverse-variance-weighted combination ``w a + (1 - w) b``, ``w = v_b / (v_a + v_b)``.

    Treats ``a`` and ``b`` as independent. With ``per_coordinate=False`` one
    weight is used for all coordinates (from the total variances), which is
    more robust when each coordinate's variance is estimated from few samples.
    The weights are estimated from the same samples, a small bias that vanishes
    as the sample count grows.
    """
    ma, _ = ravel_pytree(a.mean)
    mb, unravel = ravel_pytree(b.mean)
    va, _ = ravel_pytree(a.variance)
    vb, _ = ravel_pytree(b.variance)
    tiny = jnp.finfo(ma.dtype).tiny
    if per_coordinate:
        w = vb / jnp.maximum(va + vb, tiny)
    else:
        w = jnp.sum(vb) / jnp.maximum(jnp.sum(va) + jnp.sum(vb), tiny)
    w = jnp.where(jnp.isfinite(w), w, jnp.where(jnp.isfinite(jnp.sum(va)), 1.0, 0.0))
    mean = w * ma + (1.0 - w) * mb
    var = w**2 * va + (1.0 - w) ** 2 * vb
    return GradEstimate(unravel(mean), unravel(var), min(a.num_samples, b.num_samples))


def estimate_all(
    loss_fn: LossFn, theta: Any, key: jax.Array, sigma: float, num_samples: int
) -> dict[str, GradEstimate]:
    """All four estimators (independent noise for pathwise and ES) in one dict."""
    k_rp, k_es, k_sf = jax.random.split(key, 3)
    rp = pathwise(loss_fn, theta, k_rp, sigma, num_samples)
    es = es_antithetic(loss_fn, theta, k_es, sigma, num_samples)
    return {
        "pathwise": rp,
        "es_antithetic": es,
        "score_function": score_function(loss_fn, theta, k_sf, sigma, num_samples),
        "combined": combine(rp, es),
    }
