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
- :func:`alpha_order`: the alpha-order mix of paired first- and zeroth-order
  samples with a bias check (Suh et al. 2022, arXiv 2202.00817), as the
  ``hybrid`` agent uses it on every update.
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


class AlphaOrder(NamedTuple):
    """The alpha-order mix of one batch of paired samples (:func:`alpha_order`).

    Attributes:
        grad: ``alpha * mean_fo + (1 - alpha) * mean_zo``, flat ``[D]``.
        alpha: the weight given to the first-order mean, after the bias check.
        alpha_ivw: the minimum-variance weight before the bias check.
        var_fo: variance (trace of the covariance) of the first-order mean.
        var_zo: variance of the zeroth-order mean.
        gap: ``||mean_fo - mean_zo||``.
    """

    grad: jax.Array
    alpha: jax.Array
    alpha_ivw: jax.Array
    var_fo: jax.Array
    var_zo: jax.Array
    gap: jax.Array


def alpha_order(fo: jax.Array, zo: jax.Array, bias_check: float | None = 2.0, alpha: float | None = None) -> AlphaOrder:
    """Mixes paired first-order (pathwise) and zeroth-order (likelihood-ratio/ES) samples of one gradient.

    ``fo`` and ``zo`` are ``[N, D]``: sample ``i`` of each comes from the same
    rollout, so the two may be correlated. The minimum-variance weight of
    ``alpha * mean_fo + (1 - alpha) * mean_zo`` is

        alpha_ivw = clip((v_zo - c) / (v_zo + v_fo - 2 c), 0, 1),

    with ``v`` the variances of the two means (traces of the sample covariances
    over ``N``) and ``c`` their covariance; with independent samples (``c = 0``)
    this is the inverse-variance weight ``v_zo / (v_fo + v_zo)``. The bias check
    (Suh et al. 2022, Sec. 4: alpha ``||mean_fo - mean_zo|| <= gamma - eps``,
    with ``gamma - eps`` set to ``bias_check`` standard errors of the unbiased
    zeroth-order mean) then caps the weight so that the mix moves no further
    from ``mean_zo`` than ``bias_check * sqrt(v_zo)``:

        alpha = min(alpha_ivw, bias_check * sqrt(v_zo) / ||mean_fo - mean_zo||).

    A first-order gradient that is biased by more than the zeroth-order noise
    can explain (a discontinuity, a stiff contact, truncation) thus falls back
    toward the zeroth-order mean. If any first-order sample is not finite, alpha
    is 0 and only the zeroth-order mean is used.

    Args:
        fo: first-order samples ``[N, D]``, ``N >= 2``.
        zo: zeroth-order samples ``[N, D]``, unbiased for the same gradient.
        bias_check: the cap in standard errors of the zeroth-order mean; ``None`` = no cap.
        alpha: a fixed weight in [0, 1] instead of the adaptive one (the check is then skipped; a
            non-finite first-order sample still gives alpha = 0).
    """
    if fo.ndim != 2 or fo.shape != zo.shape or fo.shape[0] < 2:
        raise ValueError(f"fo and zo must both be [N, D] with N >= 2, got {fo.shape} and {zo.shape}.")
    n = fo.shape[0]
    finite = jnp.all(jnp.isfinite(fo))
    fo = jnp.where(finite, fo, 0.0)
    m_fo, m_zo = jnp.mean(fo, 0), jnp.mean(zo, 0)
    d_fo, d_zo = fo - m_fo, zo - m_zo
    v_fo = jnp.sum(d_fo**2) / ((n - 1) * n)
    v_zo = jnp.sum(d_zo**2) / ((n - 1) * n)
    cov = jnp.sum(d_fo * d_zo) / ((n - 1) * n)
    tiny = jnp.finfo(m_fo.dtype).tiny
    a_ivw = jnp.clip((v_zo - cov) / jnp.maximum(v_zo + v_fo - 2.0 * cov, tiny), 0.0, 1.0)
    gap = jnp.sqrt(jnp.sum((m_fo - m_zo) ** 2))
    if alpha is not None:
        a = jnp.asarray(alpha, m_fo.dtype)
    elif bias_check is None:
        a = a_ivw
    else:
        a = jnp.minimum(a_ivw, bias_check * jnp.sqrt(v_zo) / jnp.maximum(gap, tiny))
    a = jnp.where(finite, a, 0.0)
    return AlphaOrder(a * m_fo + (1.0 - a) * m_zo, a, jnp.where(finite, a_ivw, 0.0), v_fo, v_zo, gap)


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
