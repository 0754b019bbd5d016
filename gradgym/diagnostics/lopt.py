"""Backprop through a learned optimizer (Metz et al. 2021 Fig. 3), small enough for a 2-core CPU.

Deviation from the paper (documented in docs/reproduction.md): the inner task is a
2-layer MLP (32 hidden units) on a *synthetic* 10-class, 64-feature Gaussian-prototype
dataset generated in code (no MNIST: nothing may be downloaded), trained on one fixed
batch. The learned optimizer is a per-parameter MLP in the style of Metz et al. 2019
(``learned_optimization`` MLPLOpt, reduced): features = parameter, gradient, three
momenta (decays 0.5, 0.9, 0.99), each normalised by its RMS over the tensor, and three
``tanh(t / tau)`` step embeddings; 2 hidden layers of 32; outputs ``(d, m)`` and the
update is ``-d * exp(0.001 m) * step_mult``. The meta-loss is the mean inner training
log loss over the unroll. Unroll lengths are masked inside a fixed-length scan, so one
compilation serves every length.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

DECAYS = (0.5, 0.9, 0.99)
TAUS = (10.0, 100.0, 1000.0)
NUM_FEATURES = 2 + len(DECAYS) + len(TAUS)


def synthetic_digits(seed: int = 0, num: int = 128, dim: int = 64, classes: int = 10):
    """A fixed batch: ``x [num, dim]`` (prototype + unit noise, standardised) and int labels ``y [num]``."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(classes, dim))
    y = rng.integers(0, classes, size=num)
    x = protos[y] + 1.5 * rng.normal(size=(num, dim))
    x = (x - x.mean(0)) / x.std(0)
    return x, y


def _dense_init(key, n_in, n_out, dtype):
    return {"w": jax.random.normal(key, (n_in, n_out), dtype) / np.sqrt(n_in), "b": jnp.zeros(n_out, dtype)}


def init_inner(key, dim: int = 64, hidden: int = 32, classes: int = 10, dtype=jnp.float64):
    k1, k2 = jax.random.split(key)
    return [_dense_init(k1, dim, hidden, dtype), _dense_init(k2, hidden, classes, dtype)]


def inner_loss(params, x, y):
    h = jnp.tanh(x @ params[0]["w"] + params[0]["b"])
    logits = h @ params[1]["w"] + params[1]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def init_lopt(key, hidden: int = 32, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(key, 3)
    return [
        _dense_init(k1, NUM_FEATURES, hidden, dtype),
        _dense_init(k2, hidden, hidden, dtype),
        _dense_init(k3, hidden, 2, dtype),
    ]


def _rms_norm(x):
    return x / jnp.sqrt(jnp.mean(x**2) + 1e-8)


def _lopt_step(theta, p, g, moms, t, step_mult):
    feats = [_rms_norm(p), _rms_norm(g)] + [_rms_norm(m) for m in moms]
    feats += [jnp.full_like(p, jnp.tanh(t / tau)) for tau in TAUS]
    h = jnp.stack(feats, -1)
    for i, layer in enumerate(theta):
        h = h @ layer["w"] + layer["b"]
        if i < len(theta) - 1:
            h = jax.nn.relu(h)
    d, m = h[..., 0], h[..., 1]
    return p - d * jnp.exp(0.001 * m) * step_mult


def meta_loss(theta, inner0, x, y, horizon, max_horizon: int, step_mult: float):
    """Mean inner training loss over the first ``horizon`` steps (traced) of a ``max_horizon`` unroll."""

    def body(carry, t):
        params, moms = carry
        loss, g = jax.value_and_grad(inner_loss)(params, x, y)
        moms = [
            jax.tree.map(lambda m, gg, b=b: b * m + (1 - b) * gg, mm, g) for b, mm in zip(DECAYS, moms, strict=True)
        ]
        new = jax.tree.map(lambda p, gg, *ms: _lopt_step(theta, p, gg, ms, t, step_mult), params, g, *moms)
        return (new, moms), loss

    moms0 = [jax.tree.map(jnp.zeros_like, inner0) for _ in DECAYS]
    ts = jnp.arange(max_horizon, dtype=x.dtype)
    _, losses = jax.lax.scan(body, (inner0, moms0), ts)
    mask = (jnp.arange(max_horizon) < horizon).astype(losses.dtype)
    return jnp.sum(losses * mask) / horizon


@functools.partial(jax.jit, static_argnums=(5, 6))
def meta_loss_slice(theta, direction, shifts, inner0, data, max_horizon, step_mult, horizon):
    """Meta-loss at ``theta + s * direction`` for every shift (flat direction)."""
    v, unravel = ravel_pytree(theta)
    x, y = data
    return jax.vmap(lambda s: meta_loss(unravel(v + s * direction), inner0, x, y, horizon, max_horizon, step_mult))(
        shifts
    )


@functools.partial(jax.jit, static_argnums=(4, 5))
def meta_grads(thetas_flat, unravel_like, inner0, data, max_horizon, step_mult, horizon):
    """Meta-gradients ``[K, P]`` at each row of ``thetas_flat``."""
    _, unravel = ravel_pytree(unravel_like)
    x, y = data

    def one(v):
        return jax.grad(lambda vv: meta_loss(unravel(vv), inner0, x, y, horizon, max_horizon, step_mult))(v)

    return jax.vmap(one)(thetas_flat)
