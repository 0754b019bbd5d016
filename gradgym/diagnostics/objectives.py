"""Robot policy objectives shared by the diagnostics, the CLI and the figure scripts.

The loss of a policy is APG's: ``-mean(reward)`` over an unroll of ``T`` steps
(Metz et al. 2021 Fig. 2, [I] in the spec). To compile once for a whole sweep
of unroll lengths, rollouts run for a fixed ``max_horizon`` and rewards after
step ``T`` are masked out; ``T`` is a traced value. The gradient equals that of
a ``T``-step rollout exactly, because nothing after step ``T`` reaches the loss.

Compiled functions are cached by JAX per (env, policy_fn, max_horizon,
truncation); :func:`default_policy` returns the same ``policy_fn`` object per
(action_size, hidden) so that callers share compilations.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradgym.envs import BraxEnv, rollout
from gradgym.nets import make_policy


@functools.lru_cache(maxsize=16)
def default_policy(action_size: int, hidden: tuple[int, ...] = (32, 32, 32, 32)):
    """``(module, policy_fn)`` of the default 4x32 swish tanh-Gaussian policy (cached)."""
    return make_policy(action_size, hidden)


def init_policy(
    env: BraxEnv,
    key: jax.Array,
    scale: float = 1.0,
    standard_init: bool = True,
    hidden: tuple[int, ...] = (32, 32, 32, 32),
):
    """Random policy parameters in the env's dtype, multiplied by ``scale``.

    Args:
        env: the env (sets sizes and dtype).
        key: init key.
        scale: multiplies every parameter; ``scale=0.01`` gives the paper's
            "init2 = init1 x 0.01" (Fig. 5).
        standard_init: ``gradgym.nets`` shrinks the last layer's init (std x 0.1,
            good for training); ``True`` undoes that so all layers use the
            standard LeCun-uniform init of the 2021 Brax networks, the paper's
            random "init1". ``False`` keeps the agents' init.
        hidden: hidden layer widths.
    """
    module, _ = default_policy(env.action_size, tuple(hidden))
    dtype = jnp.float64 if env.dtype == "float64" else jnp.float32
    params = module.init(key, jnp.zeros(env.observation_size, dtype))
    if standard_init:
        mlp = params["params"]["MLP_0"]
        last = f"Dense_{len(mlp) - 1}"
        mlp = {**mlp, last: {**mlp[last], "kernel": mlp[last]["kernel"] * 10.0}}
        params = {**params, "params": {**params["params"], "MLP_0": mlp}}
    return jax.tree.map(lambda p: p * jnp.asarray(scale, p.dtype), params)


def masked_loss(env: BraxEnv, policy_fn, params: Any, key: jax.Array, horizon, max_horizon: int, truncation=None):
    """``-mean(reward[:horizon])`` of a ``max_horizon``-step rollout; ``horizon`` may be traced."""
    _, traj = rollout(env, policy_fn, params, key, max_horizon, truncation=truncation)
    mask = (jnp.arange(max_horizon) < horizon).astype(traj.reward.dtype)
    return -jnp.sum(traj.reward * mask) / jnp.asarray(horizon, traj.reward.dtype)


@functools.partial(jax.jit, static_argnums=(0, 1, 4, 5))
def _grad_batch(env, policy_fn, params, keys, max_horizon, truncation, horizon):
    def one(k):
        loss, g = jax.value_and_grad(masked_loss, argnums=2)(
            env, policy_fn, params, k, horizon, max_horizon, truncation
        )
        return loss, ravel_pytree(g)[0]

    return jax.vmap(one)(keys)


def gradient_samples(
    env: BraxEnv, policy_fn, params: Any, keys: jax.Array, horizon: int, max_horizon: int, truncation: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """Per-key losses ``[K]`` and flat pathwise gradients ``[K, P]`` of a ``horizon``-step unroll.

    Each key fixes all randomness of its rollout (reset, policy sampling), so
    the spread over keys is the "variance across seeds" of Metz et al. Fig. 2c.
    """
    if not 1 <= horizon <= max_horizon:
        raise ValueError(f"horizon must be in [1, max_horizon={max_horizon}], got {horizon!r}; raise max_horizon.")
    return _grad_batch(env, policy_fn, params, keys, max_horizon, truncation, jnp.asarray(horizon, jnp.int32))


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _slice_batch(env, policy_fn, params, direction, shifts, max_horizon, keys, horizon):
    """Losses ``[S, K]`` at ``params + shift * direction`` for every shift and key."""
    x, unravel = ravel_pytree(params)

    def at(shift, k):
        return masked_loss(env, policy_fn, unravel(x + shift * direction), k, horizon, max_horizon)

    return jax.vmap(lambda s: jax.vmap(lambda k: at(s, k))(keys))(shifts)


def policy_loss_slice(
    env: BraxEnv,
    policy_fn,
    params: Any,
    direction: jax.Array,
    shifts: jax.Array,
    keys: jax.Array,
    horizon: int,
    max_horizon: int,
) -> jax.Array:
    """Loss ``[S, K]`` along ``params + shift * direction`` (flat direction), one column per key."""
    if not 1 <= horizon <= max_horizon:
        raise ValueError(f"horizon must be in [1, max_horizon={max_horizon}], got {horizon!r}; raise max_horizon.")
    return _slice_batch(env, policy_fn, params, direction, shifts, max_horizon, keys, jnp.asarray(horizon, jnp.int32))
