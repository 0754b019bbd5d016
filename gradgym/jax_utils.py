"""Small JAX rules that the env core, the agents and the diagnostics all follow, written once.

This module imports only JAX, so every layer (``gradgym.envs``, ``gradgym.agents``,
``gradgym.diagnostics``) may use it without importing the layers above it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

DTYPES = ("float32", "float64")


def float_dtype(name: str) -> Any:
    """The JAX float type of a ``dtype`` option: ``jnp.float64`` for ``"float64"``, else ``jnp.float32``."""
    return jnp.float64 if name == "float64" else jnp.float32


def strong_types(tree: Any) -> Any:
    """Drops JAX weak types, so a jitted step's output state has its input's types (no retrace)."""
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, jnp.asarray(x).dtype), tree)


def stop_gradient_where(cut: jax.Array, tree: Any) -> Any:
    """``tree`` with its gradient stopped where the (traced) bool ``cut`` is true: truncated backprop.

    Used inside a ``lax.scan`` over an unroll with ``cut = t % truncation == 0``
    (the first cut is a no-op), so that each step's gradient flows back through
    at most ``truncation`` steps of physics.
    """
    return jax.tree.map(lambda s: jnp.where(cut, jax.lax.stop_gradient(s), s), tree)
