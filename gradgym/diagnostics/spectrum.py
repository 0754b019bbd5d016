"""Jacobian spectra of the closed-loop step (env + policy) in the physics state s = (q, qd).

Metz et al. 2021 Sec. 3.4 / Fig. 5: gradients through an unroll contain
products of the recurrent Jacobians ``ds_i/ds_{i-1}``; eigenvalues with
``|lambda| > 1`` make them grow exponentially. Here the recurrent map is the
*closed-loop* step ``s -> step(s, policy(obs(s), k))`` with the policy noise
``k`` held fixed, so only the policy differs between two parameter settings.

:func:`closed_loop_jacobians` (JAX) computes the Jacobians along a trajectory;
:func:`spectrum_stats` (numpy; ``eig`` runs on CPU) turns them into metrics.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from gradgym.checks import is_int


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _jacobians(env, policy_fn, params, key, num_steps):
    k_reset, k_pol = jax.random.split(key)
    state = env.reset(k_reset)

    def closed_loop(state, vec, k):
        s = env.with_state_vector(state, vec)
        return env.state_vector(env.step(s, policy_fn(params, s.obs, k)))

    def body(state, k):
        vec = env.state_vector(state)
        jac = jax.jacfwd(closed_loop, argnums=1)(state, vec, k)
        nxt = env.step(state, policy_fn(params, state.obs, k))
        return nxt, (jac, vec, nxt.reward, nxt.done)

    _, (jacs, vecs, rewards, done) = jax.lax.scan(body, state, jax.random.split(k_pol, num_steps))
    return jacs, vecs, rewards, done


def closed_loop_jacobians(env, policy_fn, params: Any, key: jax.Array, num_steps: int) -> dict[str, np.ndarray]:
    """Jacobians ``J_i = ds_{i+1}/ds_i`` of the closed-loop step along one rollout.

    Args:
        env: functional env (``gradgym.envs.make``); use ``dtype="float64"`` for spectra.
        policy_fn: ``policy_fn(params, obs, key) -> action`` (e.g. ``gradgym.nets.make_policy``).
        params: policy parameters.
        key: reset and policy-noise key (the noise is fixed per step).
        num_steps: trajectory length (static).

    Returns:
        numpy dict: ``jacobians [T, n, n]``, ``states [T, n]`` (the state each
        Jacobian is taken at), ``rewards [T]``, ``done [T]``. The physics keeps
        running after ``done`` (Jacobians stay defined); ``done`` is recorded.
    """
    if not is_int(num_steps):
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
    jacs, vecs, rewards, done = _jacobians(env, policy_fn, params, key, num_steps)
    return {
        "jacobians": np.asarray(jacs, np.float64),
        "states": np.asarray(vecs, np.float64),
        "rewards": np.asarray(rewards, np.float64),
        "done": np.asarray(done),
    }


def eigenvalues(jacobian: np.ndarray) -> np.ndarray:
    """Eigenvalues (complex, sorted by decreasing modulus) of one square Jacobian."""
    a = np.asarray(jacobian, np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"jacobian must be a square matrix, got shape {a.shape}.")
    ev = np.linalg.eigvals(a)
    return ev[np.argsort(-np.abs(ev), kind="stable")]


def spectrum_stats(jacobians: np.ndarray) -> dict[str, np.ndarray]:
    """Spectral metrics of a sequence of recurrent Jacobians ``J_1 .. J_T``.

    Products ``P_i = J_i ... J_1`` (= ``ds_i/ds_0``) are kept as a unit-norm
    matrix times a scalar ``exp(log_scale)``, so growth far beyond float range
    is still reported (as logs).

    Returns:
        ``step_eigs [T, n]`` (complex, sorted by modulus), ``step_max_abs [T]``
        (max |eigenvalue| of each ``J_i``), ``product_log_max_abs [T]``
        (ln max |eigenvalue| of ``P_i``), ``product_log_sv [T]`` (ln of the top
        singular value of ``P_i``, i.e. the gain of ``ds_i/ds_0``).
    """
    j = np.asarray(jacobians, np.float64)
    if j.ndim != 3 or j.shape[1] != j.shape[2]:
        raise ValueError(f"jacobians must have shape [T, n, n], got {j.shape}.")
    t, n, _ = j.shape
    step_eigs = np.stack([eigenvalues(a) for a in j]) if t else np.zeros((0, n), complex)
    prod, log_scale = np.eye(n), 0.0
    log_max, log_sv = np.empty(t), np.empty(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(t):
            prod = j[i] @ prod
            norm = np.linalg.norm(prod)
            if not np.isfinite(norm):
                log_max[i:], log_sv[i:] = np.nan, np.nan
                break
            if norm > 0:
                prod, log_scale = prod / norm, log_scale + np.log(norm)
            ev = np.max(np.abs(np.linalg.eigvals(prod)))
            log_max[i] = log_scale + np.log(ev)
            log_sv[i] = log_scale + np.log(np.linalg.norm(prod, 2))
    return {
        "step_eigs": step_eigs,
        "step_max_abs": np.abs(step_eigs[:, 0]) if t else np.zeros(0),
        "product_log_max_abs": log_max,
        "product_log_sv": log_sv,
    }
