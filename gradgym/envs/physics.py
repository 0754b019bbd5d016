"""Physics parameters: per-episode friction and mass scales, and how they reach Brax.

:class:`PhysicsParams` is a pytree of two scalars, so returns are
differentiable in them (``d return / d friction``). :func:`scaled_sys` applies
them to a Brax ``System``; :func:`sample_physics` draws them from the noise
model's ranges.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class PhysicsParams:
    """Multiplicative physics scales; differentiable (e.g. d return / d friction).

    Attributes:
        friction: scale on every geom's sliding friction coefficient.
        mass: scale on every body's mass and rotational inertia.
    """

    friction: jax.Array
    mass: jax.Array

    @classmethod
    def nominal(cls, dtype=jnp.float32) -> PhysicsParams:
        return cls(friction=jnp.ones((), dtype), mass=jnp.ones((), dtype))


def scaled_sys(sys: Any, physics: PhysicsParams) -> Any:
    """Returns the Brax ``System`` ``sys`` with friction and mass scaled (differentiably)."""
    friction = sys.geom_friction.at[:, 0].multiply(physics.friction)
    link = sys.link
    inertia = link.inertia.replace(mass=link.inertia.mass * physics.mass, i=link.inertia.i * physics.mass)
    return sys.replace(
        geom_friction=friction,
        link=link.replace(inertia=inertia),
        body_mass=sys.body_mass * physics.mass,
        body_inertia=sys.body_inertia * physics.mass,
    )


def cast_sys(sys: Any, dtype: Any) -> Any:
    """``sys`` with every floating-point leaf cast to ``dtype`` (for float64 physics)."""
    return jax.tree.map(
        lambda x: x.astype(dtype) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) else x, sys
    )


def sample_physics(
    key: jax.Array,
    friction_range: tuple[float, float] | None,
    mass_range: tuple[float, float] | None,
    dtype: Any = jnp.float32,
) -> PhysicsParams:
    """Draws friction and mass scales U(low, high) from their ranges; ``None`` ranges give 1."""
    kf, km = jax.random.split(key)

    def draw(k, rng):
        if rng is None:
            return jnp.ones((), dtype)
        return jax.random.uniform(k, (), dtype, rng[0], rng[1])

    return PhysicsParams(friction=draw(kf, friction_range), mass=draw(km, mass_range))
