"""Finite-time Lyapunov exponents by the QR (Benettin) method.

For Jacobians ``J_1 .. J_T`` along a trajectory, ``Q_0 = I`` and
``J_i Q_{i-1} = Q_i R_i``; the exponents are ``(1/T) sum_i ln |diag R_i|``.
The largest exponent is the average exponential growth rate (per step, or
per unit time with ``dt``) of ``ds_T/ds_0``; positive means chaotic, and
gradients through the unroll grow like ``exp(lambda_1 T)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def lyapunov_spectrum(jacobians: np.ndarray, dt: float = 1.0) -> dict[str, np.ndarray]:
    """Finite-time Lyapunov exponents of a Jacobian sequence.

    Args:
        jacobians: ``[T, n, n]`` recurrent Jacobians ``ds_{i+1}/ds_i``.
        dt: time per step; exponents are divided by it (1 = per step).

    Returns:
        ``exponents [n]`` (descending, per ``dt``), ``running [T, n]`` (the
        finite-time exponents after each step, i.e. over the first i+1 steps).
    """
    j = np.asarray(jacobians, np.float64)
    if j.ndim != 3 or j.shape[1] != j.shape[2] or j.shape[0] < 1:
        raise ValueError(f"jacobians must have shape [T, n, n] with T >= 1, got {j.shape}.")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}.")
    t, n, _ = j.shape
    q = np.eye(n)
    acc = np.zeros(n)
    running = np.empty((t, n))
    with np.errstate(divide="ignore"):
        for i in range(t):
            q, r = np.linalg.qr(j[i] @ q)
            acc += np.log(np.abs(np.diag(r)))
            running[i] = np.sort(acc / ((i + 1) * dt))[::-1]
    return {"exponents": running[-1], "running": running}


@functools.partial(jax.jit, static_argnums=(0, 2))
def _map_jacobians(f, x0, num_steps):
    def body(x, _):
        return f(x), jax.jacfwd(f)(x)

    _, jacs = jax.lax.scan(body, x0, None, length=num_steps)
    return jacs


def map_jacobians(f: Callable[[jax.Array], jax.Array], x0: jax.Array, num_steps: int) -> np.ndarray:
    """Jacobians of a map ``x -> f(x)`` (vector in, same-shape vector out) along its orbit from ``x0``."""
    x0 = jnp.atleast_1d(jnp.asarray(x0))
    if x0.ndim != 1:
        raise ValueError(f"x0 must be a scalar or a vector, got shape {x0.shape}.")
    return np.asarray(_map_jacobians(f, x0, int(num_steps)), np.float64)


def lyapunov_of_map(f: Callable[[jax.Array], jax.Array], x0, num_steps: int, discard: int = 0) -> np.ndarray:
    """Lyapunov exponents (per step) of a map, dropping the first ``discard`` steps as transient."""
    if discard < 0 or discard >= num_steps:
        raise ValueError(f"discard must be in [0, num_steps), got {discard!r} with num_steps={num_steps!r}.")
    jacs = map_jacobians(f, x0, num_steps)
    return lyapunov_spectrum(jacs[discard:])["exponents"]
