"""Truncated backprop through time on a robot (Metz et al. 2021 Fig. 6 and the clipping sweep).

A compact APG trainer written for *sweeps*: the truncation length, learning
rate and clipping threshold are traced values, so one compilation serves every
point of a sweep (the agents' ``gradgym.agents.apg`` compiles per config).

Each update resets ``num_envs`` robots, rolls the policy for ``episode_length``
steps, and differentiates ``-mean(reward)`` over all steps and robots, with
``stop_gradient`` on the env state every ``truncation`` steps (``truncation >=
episode_length``: full backprop). Updates use Adam; the gradient is clipped to
``max_grad_norm`` (``inf``: no clipping). A non-finite gradient is skipped and
counted, never applied. :func:`sweep_truncated` runs one training per sweep
point from the same initial policy and key (the driver of ``scripts/fig6_*``
and ``scripts/fig_clipping.py``).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradgym.checks import is_int
from gradgym.diagnostics.objectives import default_policy, init_policy
from gradgym.envs import BraxEnv
from gradgym.jax_utils import float_dtype, stop_gradient_where


def _episode(env: BraxEnv, policy_fn, params, key, truncation, episode_length: int):
    k_reset, k_pol = jax.random.split(key)
    state = env.reset(k_reset)
    x0 = state.metrics["x_position"]

    def body(carry, inp):
        state, alive = carry
        t, k = inp
        cut = (t > 0) & (t % truncation == 0)
        state = stop_gradient_where(cut, state)
        nxt = env.step(state, policy_fn(params, state.obs, k))
        nxt = jax.tree.map(lambda a, b: jnp.where(alive > 0, a, b), nxt, state)
        reward = nxt.reward * alive
        alive = alive * (1.0 - nxt.done.astype(alive.dtype))
        return (nxt, alive), (reward, alive)

    alive0 = jnp.ones((), state.reward.dtype)
    steps = (jnp.arange(episode_length), jax.random.split(k_pol, episode_length))
    (final, _), (rewards, alive) = jax.lax.scan(body, (state, alive0), steps)
    metrics = {
        "return": jnp.sum(rewards),
        "length": jnp.sum(alive) + (alive[-1] == 0),
        "x_distance": jax.lax.stop_gradient(final.metrics["x_position"] - x0),
    }
    return -jnp.mean(rewards), metrics


def _optimizer():
    return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _update(env, policy_fn, num_envs, episode_length, params, opt_state, key, truncation, lr, max_grad_norm):
    def loss(p):
        keys = jax.random.split(key, num_envs)
        losses, m = jax.vmap(lambda k: _episode(env, policy_fn, p, k, truncation, episode_length))(keys)
        return jnp.mean(losses), m

    (value, m), grads = jax.value_and_grad(loss, has_aux=True)(params)
    norm = optax.tree.norm(grads)
    finite = jnp.isfinite(norm)
    scale = jnp.where(finite, jnp.minimum(1.0, max_grad_norm / jnp.maximum(norm, 1e-30)), 0.0)
    grads = jax.tree.map(lambda g: jnp.where(finite, g * scale, 0.0), grads)
    opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, opt_state.hyperparams["learning_rate"].dtype)
    updates, new_opt = _optimizer().update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda a, b: jax.tree.map(lambda x, y: jnp.where(finite, x, y), a, b)  # noqa: E731
    metrics = {k: jnp.mean(v) for k, v in m.items()}
    metrics.update(loss=value, grad_norm=norm, finite=finite)
    return keep(new_params, params), keep(new_opt, opt_state), metrics


def train_truncated(
    env: BraxEnv,
    policy_fn,
    params: Any,
    key: jax.Array,
    *,
    updates: int,
    num_envs: int,
    episode_length: int,
    truncation: int,
    learning_rate: float,
    max_grad_norm: float = math.inf,
    log_every: int = 10,
    label: str = "",
) -> dict[str, Any]:
    """Trains ``params`` by truncated BPTT; returns the learning curve (JSON-ready) and final params.

    Returns:
        ``{"curve": {"update", "return", "length", "x_distance", "grad_norm"}, "skipped", "params", "seconds"}``
        where each curve entry is the mean over the update's ``num_envs`` training episodes.
    """
    for name, v in (
        ("updates", updates),
        ("num_envs", num_envs),
        ("episode_length", episode_length),
        ("truncation", truncation),
    ):
        if not is_int(v):
            raise ValueError(f"{name} must be a positive int, got {v!r}.")
    if not learning_rate > 0 or not max_grad_norm > 0:
        raise ValueError(f"learning_rate and max_grad_norm must be > 0, got {learning_rate!r}, {max_grad_norm!r}.")
    opt_state = _optimizer().init(params)
    curve: dict[str, list] = {k: [] for k in ("update", "return", "length", "x_distance", "grad_norm")}
    skipped, t0 = 0, time.time()
    dt = float_dtype(env.dtype)
    for i in range(updates):
        key, k = jax.random.split(key)
        params, opt_state, m = _update(
            env,
            policy_fn,
            num_envs,
            episode_length,
            params,
            opt_state,
            k,
            jnp.asarray(truncation, jnp.int32),
            jnp.asarray(learning_rate, dt),
            jnp.asarray(max_grad_norm, dt),
        )
        m = {k2: float(v) for k2, v in m.items()}
        skipped += int(not m["finite"])
        curve["update"].append(i)
        for k2 in ("return", "length", "x_distance", "grad_norm"):
            curve[k2].append(m[k2])
        if log_every and ((i + 1) % log_every == 0 or i == 0 or i + 1 == updates):
            el = time.time() - t0
            print(
                f"  [{label}] update {i + 1}/{updates} return {m['return']:8.2f} x-dist {m['x_distance']:+.3f} "
                f"|g| {m['grad_norm']:.2e} skipped {skipped} ({(i + 1) * num_envs * episode_length / el:.0f} "
                "env-steps/s)",
                flush=True,
            )
    return {
        "curve": curve,
        "skipped": skipped,
        "params": params,
        "seconds": time.time() - t0,
        "final_return": float(np.mean(curve["return"][-max(1, updates // 10) :])),
    }


def sweep_truncated(
    env: BraxEnv,
    points: list[dict[str, Any]],
    *,
    seed: int,
    updates: int,
    num_envs: int,
    episode_length: int,
    log_every: int = 10,
    name: str = "sweep",
) -> list[dict[str, Any]]:
    """Runs :func:`train_truncated` once per sweep point, every run from the same policy and key.

    Args:
        env: the robot.
        points: per run, the :func:`train_truncated` arguments that vary: ``truncation``
            (default ``episode_length``: full backprop), ``learning_rate``, ``max_grad_norm``.
        seed: the default 4x32 policy is initialised (uniform init, not standard) from
            ``PRNGKey(seed)``; training uses ``PRNGKey(seed + 1)`` in every run.
        updates, num_envs, episode_length, log_every: as in :func:`train_truncated`, the same for all runs.
        name: prefix of the progress lines.

    Returns:
        One :func:`train_truncated` result per point, in order.
    """
    _, policy_fn = default_policy(env.action_size)
    params0 = init_policy(env, jax.random.PRNGKey(seed), standard_init=False)
    outs = []
    for point in points:
        point = {"truncation": episode_length, **point}
        label = ", ".join(f"{k}={v:g}" for k, v in point.items())
        print(f"[{name}] {label}", flush=True)
        outs.append(
            train_truncated(
                env,
                policy_fn,
                params0,
                jax.random.PRNGKey(seed + 1),
                updates=updates,
                num_envs=num_envs,
                episode_length=episode_length,
                log_every=log_every,
                label=label,
                **point,
            )
        )
    return outs
