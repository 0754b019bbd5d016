"""Bi-disperse disk packing with JAX MD and FIRE (Metz et al. 2021 Fig. 4; the jax-md meta-optimisation notebook).

N disks in a periodic 2-D box, half of diameter ``D`` and half of diameter 1, soft-sphere
repulsion ``(1 - r / sigma_ij)^2 / 2``. The box side keeps the packing fraction at ``phi``:
``L = sqrt(N/2 * pi (D^2 + 1) / 4 / phi)``. Random initial positions (uniform in the box, as
fractions of L so they move with D) are quenched with FIRE. The energy after each step and its
derivative with respect to ``D`` (forward mode through every FIRE step) are returned.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def box_side(diameter: jax.Array, num_particles: int, phi: float) -> jax.Array:
    """Side of the periodic box giving packing fraction ``phi``."""
    return jnp.sqrt(num_particles / 2 * jnp.pi * (diameter**2 + 1.0) / 4.0 / phi)


def _energies(diameter, key, num_particles: int, phi: float, steps: int):
    from jax_md import energy, minimize, space

    n2 = num_particles // 2
    species = np.array([0] * n2 + [1] * (num_particles - n2))  # static: jax-md needs numpy species
    side = box_side(diameter, num_particles, phi)
    displacement, shift = space.periodic(side)
    mid = (diameter + 1.0) / 2.0
    sigma = jnp.stack([jnp.stack([diameter, mid]), jnp.stack([mid, jnp.ones_like(diameter)])])
    energy_fn = energy.soft_sphere_pair(displacement, species=species, sigma=sigma)
    pos = jax.random.uniform(key, (num_particles, 2), dtype=diameter.dtype) * side
    init_fn, apply_fn = minimize.fire_descent(energy_fn, shift)

    def body(state, _):
        state = apply_fn(state)
        return state, energy_fn(state.position)

    _, es = jax.lax.scan(body, init_fn(pos), None, length=steps)
    return es


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def packing_energy_and_grad(diameters, keys, num_particles: int, phi: float, steps: int):
    """Energies ``E[d, s, k]`` and ``dE/dD`` after step ``k+1`` for every diameter ``d`` and seed ``s``."""

    def one(d, key):
        f = lambda dd: _energies(dd, key, num_particles, phi, steps)  # noqa: E731
        return jax.jvp(f, (d,), (jnp.ones_like(d),))

    return jax.vmap(lambda d: jax.vmap(lambda k: one(d, k))(keys))(diameters)


def packing_sweep(
    diameters, num_seeds: int, steps: int, key: jax.Array, num_particles: int = 128, phi: float = 0.98
) -> dict[str, np.ndarray]:
    """Runs the sweep; returns numpy ``energy`` and ``grad`` of shape ``[len(diameters), num_seeds, steps]``."""
    if num_particles < 2 or not 0 < phi < 1 or steps < 1 or num_seeds < 2:
        raise ValueError(
            f"need num_particles >= 2, 0 < phi < 1, steps >= 1, num_seeds >= 2; got {num_particles}, "
            f"{phi}, {steps}, {num_seeds}."
        )
    d = jnp.asarray(diameters)
    e, g = packing_energy_and_grad(d, jax.random.split(key, num_seeds), num_particles, phi, steps)
    return {"energy": np.asarray(e), "grad": np.asarray(g)}
