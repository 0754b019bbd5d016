"""The gradient agents' transitions and losses, as pure functions (Brax's ``agents/ppo/losses.py`` style).

Each agent binds its settings once with ``functools.partial`` (keyword
arguments after ``*``) and differentiates the result with respect to the
first argument; nothing here reads an agent object or its config.

The typed transitions name what a rollout step hands on (PureJaxRL's and
Brax's ``Transition``): :class:`PpoStep` for PPO's rollout, :class:`WindowStep`
for SHAC's differentiated window. Each field is ``[num_envs, ...]`` for one
step and ``[T, num_envs, ...]`` once a ``lax.scan`` has stacked the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradgym.agents.normalize import RunningStats, normalize
from gradgym.envs.core import BraxEnv, State
from gradgym.jax_utils import stop_gradient_where
from gradgym.nets import gaussian_entropy, tanh_gaussian_log_prob


class PpoStep(NamedTuple):
    """One step of PPO's rollout.

    Attributes:
        obs: raw observation (merged into the running statistics).
        obs_n: the normalised observation the policy and value saw.
        u: pre-tanh action sample.
        log_prob: its log-probability under the rollout policy.
        value: the value estimate of ``obs_n``.
        reward: scaled reward, plus the discounted value of the true final
            observation at a time-limit end (SB3's bootstrap).
        done: 1.0 where the episode ended at this step.
    """

    obs: jax.Array
    obs_n: jax.Array
    u: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array


class PpoBatch(NamedTuple):
    """A (mini)batch of PPO's update: flattened rollout steps with their advantages and returns."""

    obs_n: jax.Array
    u: jax.Array
    log_prob: jax.Array
    advantage: jax.Array
    ret: jax.Array


class WindowStep(NamedTuple):
    """One step of SHAC's window, the critic's data (detached from the actor's gradient).

    Attributes:
        obs: raw observation before the step.
        next_obs: the true observation after it (the final one at an episode end).
        reward: scaled reward.
        alive: 0.0 where the step terminated the episode, else 1.0.
        v_next: target-critic value of ``next_obs`` times ``alive``.
        done: 1.0 where the episode ended at this step (termination or time limit).
    """

    obs: jax.Array
    next_obs: jax.Array
    reward: jax.Array
    alive: jax.Array
    v_next: jax.Array
    done: jax.Array


def value_of(value_apply: Callable, params: Any, obs_n: jax.Array) -> jax.Array:
    """The scalar value of a ``(..., 1)``-output value network on normalised observations."""
    return value_apply(params, obs_n)[..., 0]


def apg_loss(params: Any, stats: RunningStats, env_state: State, key: jax.Array, *, env: BraxEnv,
             policy_fn: Callable, num_envs: int, horizon: int, truncation: int):
    """APG: negative mean reward over one window of ``horizon`` steps; aux = (final env state, observations).

    One key per step, split over the envs; the env state's gradient is stopped
    every ``truncation`` steps (the first cut is a no-op).
    """
    step = jax.vmap(env.autoreset_step)

    def one_step(state, xs):
        k, cut = xs
        state = stop_gradient_where(cut, state)  # truncation: no gradient into earlier chunks
        obs = normalize(stats, state.obs)
        action = jax.vmap(policy_fn, in_axes=(None, 0, 0))(params, obs, jax.random.split(k, num_envs))
        nxt, final = step(state, action)
        return nxt, (final.reward, state.obs)

    keys = jax.random.split(key, horizon)
    final, (rewards, obs) = jax.lax.scan(one_step, env_state, (keys, jnp.arange(horizon) % truncation == 0))
    return -jnp.mean(rewards), (final, obs)


def shac_actor_loss(actor: Any, critic: Any, stats: RunningStats, env_state: State, key: jax.Array, *,
                    env: BraxEnv, policy_fn: Callable, value_apply: Callable, num_envs: int, horizon: int,
                    truncation: int, gamma: float, reward_scale: float, dtype: Any):
    """SHAC: negative bootstrapped window return per env step; aux = (final env state, :class:`WindowStep` s).

    Same key use as :func:`apg_loss`, so that ``horizon=1`` with a zero critic
    gives APG's gradient.
    """
    step = jax.vmap(env.autoreset_step)
    n = num_envs

    def one_step(carry, xs):
        k, cut = xs
        state, disc, total, _ = carry
        # truncation: no gradient into earlier chunks of the window (the first cut is a no-op)
        state = stop_gradient_where(cut, state)
        obs_n = normalize(stats, state.obs)
        action = jax.vmap(policy_fn, in_axes=(None, 0, 0))(actor, obs_n, jax.random.split(k, n))
        nxt, final = step(state, action)
        reward = reward_scale * final.reward
        # v(final obs): bootstraps a time-limit end here; for the critic it is the next state's value.
        alive = 1.0 - final.terminated.astype(reward.dtype)
        v_next = value_of(value_apply, critic, normalize(stats, final.obs)) * alive
        done = final.done.astype(reward.dtype)
        total = total + disc * reward + done * disc * gamma * v_next
        disc = jnp.where(done > 0, 1.0, disc * gamma)
        data = WindowStep(state.obs, final.obs, reward, alive, v_next, done)
        return (nxt, disc, total, v_next), jax.lax.stop_gradient(data)

    zeros = jnp.zeros((n,), dtype)
    keys = jax.random.split(key, horizon)
    (final, disc, total, v_last), window = jax.lax.scan(
        one_step, (env_state, jnp.ones_like(zeros), zeros, zeros), (keys, jnp.arange(horizon) % truncation == 0))
    # Envs still inside an episode at the window's end bootstrap from the critic: the last step's
    # v_next, as the episode did not end there (then the carried state is the final one).
    total = total + (1.0 - window.done[-1]) * disc * v_last
    loss = -jnp.sum(total) / (horizon * n)
    return loss, (final, window)


def critic_loss(critic: Any, obs_n: jax.Array, target: jax.Array, weight: jax.Array | None = None, *,
                value_apply: Callable) -> jax.Array:
    """SHAC's critic regression: mean squared error, or its ``weight``-ed mean (replay slots not filled weigh 0)."""
    err = (value_of(value_apply, critic, obs_n) - target) ** 2
    if weight is None:  # every sample is real (the paper's single window)
        return jnp.mean(err)
    return jnp.sum(weight * err) / jnp.maximum(jnp.sum(weight), 1.0)


def ensemble_critic_loss(critic: Any, obs_n: jax.Array, target: jax.Array, weight: jax.Array | None = None, *,
                         value_apply: Callable) -> jax.Array:
    """:func:`critic_loss` of every member of a stacked ensemble (leading axis of ``critic``) on the same targets,
    averaged over the members (AHAC's)."""
    per_member = jax.vmap(lambda c: critic_loss(c, obs_n, target, weight, value_apply=value_apply))(critic)
    return jnp.mean(per_member)


def ppo_loss(params: Any, batch: PpoBatch, *, policy_apply: Callable, value_apply: Callable, clip_eps: float,
             vf_coef: float, ent_coef: float):
    """Clipped surrogate + value loss - entropy bonus on one minibatch; aux = (surrogate, value loss, entropy)."""
    mean, raw = policy_apply(params["policy"], batch.obs_n)
    ratio = jnp.exp(tanh_gaussian_log_prob(mean, raw, batch.u) - batch.log_prob)
    adv = (batch.advantage - batch.advantage.mean()) / (batch.advantage.std() + 1e-8)
    pg = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv))
    v_loss = 0.5 * jnp.mean((value_of(value_apply, params["value"], batch.obs_n) - batch.ret) ** 2)
    entropy = jnp.mean(gaussian_entropy(raw))
    return pg + vf_coef * v_loss - ent_coef * entropy, (pg, v_loss, entropy)
