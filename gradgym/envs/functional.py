"""Differentiable rollouts and step Jacobians over the functional core.

``rollout`` is a ``lax.scan`` over :meth:`BraxEnv.step`; it is differentiable
with respect to policy parameters, open-loop action sequences (see
:func:`open_loop_rollout`), the initial state (pass ``init_state``) and physics
parameters (pass ``physics``).
``truncation=t`` applies ``stop_gradient`` to the env state every ``t`` steps
(truncated backprop through time, as in Metz et al. 2021, Fig. 6).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradgym.checks import is_int
from gradgym.envs.core import BraxEnv, PhysicsParams, State
from gradgym.jax_utils import stop_gradient_where

PolicyFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
"""``policy_fn(params, obs, key) -> action``."""


class Trajectory(NamedTuple):
    """Per-step arrays of a rollout, stacked along a leading time axis.

    ``obs[t]`` is the observation the action ``action[t]`` was chosen from;
    ``alive[t]`` is 1 while the episode had not ended before step t (rewards
    after the end are masked out of the return).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    alive: jax.Array


def _check_truncation(truncation: int | None, horizon: int) -> None:
    if truncation is not None and not is_int(truncation):
        raise ValueError(f"truncation must be a positive int or None, got {truncation!r}.")
    if not is_int(horizon):
        raise ValueError(f"horizon must be a positive int, got {horizon!r}.")


def _scan(env: BraxEnv, act_fn, state: State, xs, horizon: int, truncation: int | None, key: jax.Array):
    """Shared scan: ``act_fn(obs, key, x) -> action`` chooses each action."""

    def body(carry, inp):
        state, alive = carry
        t, x, k = inp
        if truncation is not None:
            cut = (t > 0) & (t % truncation == 0)
            state = stop_gradient_where(cut, state)
        action = act_fn(state.obs, k, x)
        nxt = env.step(state, action)
        # Once an episode ends the state is frozen, so later steps neither
        # contribute reward nor propagate (possibly non-finite) physics.
        nxt = jax.tree.map(lambda a, b: jnp.where(alive > 0, a, b), nxt, state)
        reward = nxt.reward * alive
        out = Trajectory(state.obs, action, reward, nxt.terminated, nxt.truncated, alive)
        alive = alive * (1.0 - nxt.done.astype(alive.dtype))
        return (nxt, alive), out

    keys = jax.random.split(key, horizon)
    alive0 = jnp.ones((), state.reward.dtype)
    (final, _), traj = jax.lax.scan(body, (state, alive0), (jnp.arange(horizon), xs, keys))
    return jnp.sum(traj.reward), traj, final


def rollout(
    env: BraxEnv,
    policy_fn: PolicyFn,
    params: Any,
    key: jax.Array,
    horizon: int,
    truncation: int | None = None,
    init_state: State | None = None,
    physics: PhysicsParams | None = None,
) -> tuple[jax.Array, Trajectory]:
    """Runs a closed-loop policy for ``horizon`` steps; returns (return, trajectory).

    Args:
        env: the functional env (from :func:`gradgym.envs.make`).
        policy_fn: ``policy_fn(params, obs, key) -> action``; use the key for
            reparameterised policy noise.
        params: policy parameters (any pytree), differentiable.
        key: drives reset (unless ``init_state``), env noise and policy noise.
        horizon: number of steps (static).
        truncation: ``stop_gradient`` on the env state every this many steps.
        init_state: start here instead of ``env.reset``; differentiable.
        physics: physics scales for the reset (differentiable); ignored with
            ``init_state``.

    Returns:
        The undiscounted return (rewards after the episode ends are masked)
        and the :class:`Trajectory`.
    """
    _check_truncation(truncation, horizon)
    k_reset, k_pol = jax.random.split(key)
    state = env.reset(k_reset, physics) if init_state is None else init_state
    ret, traj, _ = _scan(env, lambda o, k, _: policy_fn(params, o, k), state, None, horizon, truncation, k_pol)
    return ret, traj


def open_loop_rollout(
    env: BraxEnv,
    actions: jax.Array,
    key: jax.Array,
    truncation: int | None = None,
    init_state: State | None = None,
    physics: PhysicsParams | None = None,
) -> tuple[jax.Array, Trajectory]:
    """Plays a fixed action sequence ``actions[T, action_size]``; differentiable in it."""
    horizon = int(actions.shape[0])
    _check_truncation(truncation, horizon)
    k_reset, k_pol = jax.random.split(key)
    state = env.reset(k_reset, physics) if init_state is None else init_state
    ret, traj, _ = _scan(env, lambda o, k, a: a, state, actions, horizon, truncation, k_pol)
    return ret, traj


def step_jacobian(env: BraxEnv, state: State, action: jax.Array, mode: str = "rev") -> tuple[jax.Array, jax.Array]:
    """Jacobians of one step in the physics state vector s = (q, qd).

    Returns ``(ds'/ds, ds'/da)`` with shapes ``(n, n)`` and ``(n, action_size)``,
    ``n = env.state_size``. Noise is held fixed (it comes from ``state.key``).
    ``mode`` picks ``jax.jacrev`` ("rev") or ``jax.jacfwd`` ("fwd").
    """
    if mode not in ("rev", "fwd"):
        raise ValueError(f"mode must be 'rev' or 'fwd', got {mode!r}.")
    jac = jax.jacrev if mode == "rev" else jax.jacfwd

    def f(vec, a):
        return env.state_vector(env.step(env.with_state_vector(state, vec), a))

    return jac(f, argnums=(0, 1))(env.state_vector(state), action)
