"""Loss-landscape slices along random directions in parameter space (Metz et al. Fig. 2a/b, 3a/b).

Directions are flat vectors over ``ravel_pytree(theta)``. ``normalize="unit"``
gives a unit-norm direction (the shifts are then Euclidean distances);
``"filter"`` rescales each parameter leaf's block to the norm of that leaf
(Li et al. 2018), so shifts are relative to the weights' own scale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

NORMALIZATIONS = ("unit", "filter")


def random_direction(key: jax.Array, theta: Any, normalize: str = "unit") -> jax.Array:
    """A Gaussian random direction (flat, theta's dtype), normalised as ``normalize`` says."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    x, unravel = ravel_pytree(theta)
    d = jax.random.normal(key, x.shape, x.dtype)
    if normalize == "unit":
        return d / jnp.linalg.norm(d)
    dt, tp = unravel(d), unravel(x)
    scaled = jax.tree.map(lambda a, p: a * jnp.linalg.norm(p) / jnp.maximum(jnp.linalg.norm(a), 1e-12), dt, tp)
    return ravel_pytree(scaled)[0]


def loss_slice(loss_fn: Callable[[Any], jax.Array], theta: Any, direction: jax.Array, shifts: jax.Array) -> jax.Array:
    """``loss_fn(theta + s * direction)`` for every shift ``s`` (vmapped): shape ``[S]``."""
    x, unravel = ravel_pytree(theta)
    direction = jnp.asarray(direction, x.dtype)
    if direction.shape != x.shape:
        raise ValueError(f"direction must be flat with {x.size} entries (ravel_pytree(theta)), got {direction.shape}.")
    return jax.vmap(lambda s: loss_fn(unravel(x + s * direction)))(jnp.asarray(shifts, x.dtype))


def loss_slice_2d(
    loss_fn: Callable[[Any], jax.Array],
    theta: Any,
    d1: jax.Array,
    d2: jax.Array,
    shifts1: jax.Array,
    shifts2: jax.Array,
) -> jax.Array:
    """``loss_fn(theta + a d1 + b d2)`` on the grid ``shifts1 x shifts2``: shape ``[S1, S2]``."""
    x, unravel = ravel_pytree(theta)
    d1, d2 = jnp.asarray(d1, x.dtype), jnp.asarray(d2, x.dtype)
    for name, d in (("d1", d1), ("d2", d2)):
        if d.shape != x.shape:
            raise ValueError(f"{name} must be flat with {x.size} entries (ravel_pytree(theta)), got {d.shape}.")

    def at(a, b):
        return loss_fn(unravel(x + a * d1 + b * d2))

    s1, s2 = jnp.asarray(shifts1, x.dtype), jnp.asarray(shifts2, x.dtype)
    return jax.vmap(lambda a: jax.vmap(lambda b: at(a, b))(s2))(s1)


def smoothed_loss(loss_fn: Callable[[Any], jax.Array], theta: Any, key: jax.Array, sigma: float, num_samples: int):
    """Monte-Carlo ``E[loss(theta + eps)]``, ``eps ~ N(0, sigma^2 I)``: returns (mean, per-sample std)."""
    if num_samples < 2 or not sigma > 0:
        raise ValueError(f"need num_samples >= 2 and sigma > 0, got {num_samples!r}, {sigma!r}.")
    x, unravel = ravel_pytree(theta)
    eps = sigma * jax.random.normal(key, (num_samples, x.size), x.dtype)
    vals = jax.vmap(lambda e: loss_fn(unravel(x + e)))(eps)
    return jnp.mean(vals), jnp.std(vals, ddof=1)
