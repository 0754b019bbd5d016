"""Robot policy objectives shared by the diagnostics, the CLI and the figure scripts.

The loss of a policy is APG's: ``-mean(reward)`` over an unroll of ``T`` steps
(Metz et al. 2021 Fig. 2, [I] in the spec). To compile once for a whole sweep
of unroll lengths, rollouts run for a fixed ``max_horizon`` and rewards after
step ``T`` are masked out; ``T`` is a traced value. The gradient equals that of
a ``T``-step rollout exactly, because nothing after step ``T`` reaches the loss.

Compiled functions are cached by JAX per (env, policy_fn, max_horizon,
truncation) and argument shapes; :func:`default_policy` returns the same
``policy_fn`` object per (action_size, hidden) so that callers share
compilations. All policy gradients (:func:`gradient_samples`, and both
estimators of :func:`policy_estimators`) come from one program, losses and
gradients at ``params + offset`` per rollout key, so a process that asks for
both with the same number of keys compiles the gradient through the physics
once.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradgym.envs import BraxEnv, rollout
from gradgym.jax_utils import float_dtype
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
    params = module.init(key, jnp.zeros(env.observation_size, float_dtype(env.dtype)))
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


@functools.partial(jax.jit, static_argnums=(0, 1, 5, 6))
def _grad_batch(env, policy_fn, params, offsets, keys, max_horizon, truncation, horizon):
    """Losses ``[K]`` and flat pathwise gradients ``[K, P]`` at ``params + offsets[i]`` (flat) with key ``keys[i]``."""
    x, unravel = ravel_pytree(params)

    def one(o, k):
        f = lambda v: masked_loss(env, policy_fn, unravel(v), k, horizon, max_horizon, truncation)  # noqa: E731
        return jax.value_and_grad(f)(x + o)

    return jax.vmap(one)(offsets, keys)


def gradient_samples(
    env: BraxEnv, policy_fn, params: Any, keys: jax.Array, horizon: int, max_horizon: int, truncation: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """Per-key losses ``[K]`` and flat pathwise gradients ``[K, P]`` of a ``horizon``-step unroll.

    Each key fixes all randomness of its rollout (reset, policy sampling), so
    the spread over keys is the "variance across seeds" of Metz et al. Fig. 2c.
    """
    if not 1 <= horizon <= max_horizon:
        raise ValueError(f"horizon must be in [1, max_horizon={max_horizon}], got {horizon!r}; raise max_horizon.")
    x, _ = ravel_pytree(params)
    offsets = jnp.zeros((keys.shape[0], x.size), x.dtype)
    return _grad_batch(env, policy_fn, params, offsets, keys, max_horizon, truncation, jnp.asarray(horizon, jnp.int32))


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


def policy_estimators(
    env: BraxEnv,
    policy_fn,
    params: Any,
    key: jax.Array,
    horizon: int,
    max_horizon: int,
    sigma: float,
    num_samples: int,
) -> dict[str, dict[str, float]]:
    """Pathwise vs antithetic-ES estimates of the gradient of the Gaussian-smoothed policy loss.

    Both estimate ``grad E_{eps, k}[loss(params + eps, k)]`` (``eps ~ N(0, sigma^2 I)``,
    ``k`` the rollout key: reset and policy-sampling noise) from the same ``num_samples``
    (eps, k) draws. Returns, per estimator (``pathwise``, ``es_antithetic``, ``combined``):
    ``variance`` (trace of the per-sample covariance), ``mean_norm`` (norm of the mean) and
    ``nonfinite`` (dropped samples).
    """
    if not 1 <= horizon <= max_horizon:
        raise ValueError(f"horizon must be in [1, max_horizon={max_horizon}], got {horizon!r}; raise max_horizon.")
    if num_samples < 2 or not sigma > 0:
        raise ValueError(f"need num_samples >= 2 and sigma > 0, got {num_samples!r}, {sigma!r}.")
    x, _ = ravel_pytree(params)
    k_eps, k_roll = jax.random.split(key)
    eps = sigma * jax.random.normal(k_eps, (num_samples, x.size), x.dtype)
    keys = jax.random.split(k_roll, num_samples)
    h = jnp.asarray(horizon, jnp.int32)
    # The gradient program of gradient_samples serves both estimators (one compile): its losses at +eps give
    # the ES's first half alongside the pathwise gradients; a second call at -eps gives the other half.
    lp, rp = (np.asarray(a, np.float64) for a in _grad_batch(env, policy_fn, params, eps, keys, max_horizon, None, h))
    lm = np.asarray(_grad_batch(env, policy_fn, params, -eps, keys, max_horizon, None, h)[0], np.float64)
    es = ((lp - lm) / (2 * sigma**2))[:, None] * np.asarray(eps, np.float64)
    out = {}
    for name, s in (("pathwise", rp), ("es_antithetic", es)):
        ok = np.all(np.isfinite(s), 1)
        s = s[ok]
        out[name] = {
            "variance": float(np.sum(np.var(s, 0, ddof=1))) if len(s) > 1 else float("nan"),
            "mean_norm": float(np.linalg.norm(s.mean(0))) if len(s) else float("nan"),
            "nonfinite": int((~ok).sum()),
            "_mean": s.mean(0) if len(s) else None,
        }
    va, vb = out["pathwise"]["variance"], out["es_antithetic"]["variance"]
    if np.isfinite(va) and np.isfinite(vb) and va + vb > 0:
        w = vb / (va + vb)
        m = w * out["pathwise"]["_mean"] + (1 - w) * out["es_antithetic"]["_mean"]
        out["combined"] = {
            "variance": float(w**2 * va + (1 - w) ** 2 * vb),
            "mean_norm": float(np.linalg.norm(m)),
            "weight_pathwise": float(w),
            "nonfinite": 0,
        }
    for v in out.values():
        v.pop("_mean", None)
    return out
