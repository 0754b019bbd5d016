"""The toy loss of Metz et al. 2021 Fig. 1 and its exact Gaussian smoothing.

``l(x) = 0.1 sin(x w / pi) + (x / 10)^2 + 0.1``; ``w`` stands in for the
exploding-gradient factor. With ``eps ~ N(0, sigma^2)``, using
``E[sin(a (x + eps))] = sin(a x) exp(-a^2 sigma^2 / 2)``:

``L_sigma(x) = 0.1 sin(a x) e^{-a^2 sigma^2/2} + (x^2 + sigma^2) / 100 + 0.1``, ``a = w / pi``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.diagnostics.estimators import es_antithetic, pathwise


def toy_loss(x: jax.Array, w: float) -> jax.Array:
    """The Fig. 1 loss at scalar ``x`` (or elementwise)."""
    return 0.1 * jnp.sin(x * w / jnp.pi) + (x / 10.0) ** 2 + 0.1


def toy_smoothed(x, w: float, sigma: float):
    """Exact Gaussian-smoothed toy loss."""
    a = w / np.pi
    return 0.1 * np.sin(a * x) * np.exp(-(a**2) * sigma**2 / 2) + (np.asarray(x) ** 2 + sigma**2) / 100.0 + 0.1


def toy_smoothed_grad(x, w: float, sigma: float):
    """Exact gradient of the smoothed toy loss."""
    a = w / np.pi
    return 0.1 * a * np.cos(a * x) * np.exp(-(a**2) * sigma**2 / 2) + 2.0 * np.asarray(x) / 100.0


def toy_estimator_variance(xs, ws, sigma: float, num_samples: int, key: jax.Array) -> dict[str, np.ndarray]:
    """Per-sample variance and mean of the pathwise and antithetic-ES estimators on an (x, w) grid.

    Returns ``{"pathwise_var", "es_var", "pathwise_mean", "es_mean"}``, each ``[len(ws), len(xs)]``.
    """
    xs = jnp.asarray(xs)
    ws = jnp.asarray(ws, xs.dtype)

    def at(x, w, k):
        loss = lambda th, _k: toy_loss(th, w)  # noqa: E731
        k1, k2 = jax.random.split(k)
        rp = pathwise(loss, x, k1, sigma, num_samples)
        es = es_antithetic(loss, x, k2, sigma, num_samples)
        return rp.mean, rp.variance, es.mean, es.variance

    keys = jax.random.split(key, ws.size * xs.size).reshape(ws.size, xs.size, -1)
    f = jax.jit(jax.vmap(jax.vmap(at, in_axes=(0, None, 0)), in_axes=(None, 0, 0)))
    rp_m, rp_v, es_m, es_v = (np.asarray(a) for a in f(xs, ws, keys))
    return {"pathwise_var": rp_v, "es_var": es_v, "pathwise_mean": rp_m, "es_mean": es_m}
