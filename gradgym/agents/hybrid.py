"""Hybrid policy gradient: the analytic window gradient and a likelihood-ratio gradient, mixed by alpha-order weighting.

Each update runs APG's window (``num_envs`` robots, ``horizon`` steps, the env
state carried over, ``stop_gradient`` every ``truncation`` steps and at episode
ends) and takes two gradients of the same objective, the negative mean window
reward, from the same rollouts:

- **first order** (pathwise): backprop through the simulator, one sample per
  robot (APG's gradient is their mean);
- **zeroth order** (likelihood ratio, REINFORCE): the score of each sampled
  action times the reward still to come in the window (reset at an episode
  end), minus a leave-one-out baseline (the mean of the other robots' reward
  to come at the same step). It needs no simulator derivative and stays
  unbiased where contacts make the pathwise gradient wrong.

:func:`gradgym.diagnostics.estimators.alpha_order` then weighs the two means
by their measured variances (and covariance) and caps the analytic weight
where the two disagree by more than the zeroth-order noise can explain (Suh
et al. 2022, arXiv 2202.00817). The weight it picks, ``alpha`` (1 = APG's
gradient, 0 = pure likelihood ratio), is a per-update metric: it lands in the
run's history, the TensorBoard/CSV log and the compare report, so a run says
where the simulator's gradient was trusted. ``alpha`` fixed in the config gives
an ablation (``alpha=1`` is APG's update, ``alpha=0`` REINFORCE on windows).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradgym.agents.apg import ROBOT_DEFAULTS as APG_DEFAULTS
from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.base import GradientState as HybridState
from gradgym.agents.base import apply_finite_update, observe, policy_net
from gradgym.agents.config import check_float
from gradgym.agents.normalize import normalize
from gradgym.diagnostics.estimators import alpha_order
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import stop_gradient_where
from gradgym.nets import sample_tanh_gaussian, tanh_gaussian_log_prob


@dataclasses.dataclass(frozen=True)
class HybridConfig(ApgConfig):
    """Hybrid settings: APG's (window, truncation, optimiser, dtype) plus the mixing rule.

    Attributes:
        bias_check: cap on the analytic weight, in standard errors of the
            likelihood-ratio mean (see :func:`~gradgym.diagnostics.estimators.alpha_order`);
            ``None`` = plain minimum-variance weighting.
        alpha: a fixed weight of the analytic gradient in [0, 1] instead of the
            adaptive one (``None``); 1 is APG's update, 0 REINFORCE on windows.
    """

    bias_check: float | None = 2.0
    alpha: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bias_check is not None:
            check_float("bias_check", self.bias_check, 0.0)
        if self.alpha is not None:
            check_float("alpha", self.alpha, 0.0, 1.0)
        if self.num_envs < 2:
            raise ValueError(f"config field 'num_envs' must be >= 2 for the hybrid (its variances and baseline are "
                             f"taken over the robots), got {self.num_envs}.")


#: The window settings that make APG learn on each robot serve the hybrid too (a num_envs of 1 would leave no
#: variance to measure; none of APG's defaults has it).
ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {robot: dict(values) for robot, values in APG_DEFAULTS.items()}


def reward_to_go(rewards: jax.Array, done: jax.Array) -> jax.Array:
    """``G_t = r_t + (1 - done_t) G_{t+1}`` along axis 0 (a window's steps), 0 after the last step."""

    def back(g, xs):
        r, d = xs
        g = r + (1.0 - d) * g
        return g, g

    _, out = jax.lax.scan(back, jnp.zeros_like(rewards[0]), (rewards, done), reverse=True)
    return out


def leave_one_out(x: jax.Array) -> jax.Array:
    """The mean of the other entries along axis 0, for every entry (a baseline independent of each sample)."""
    n = x.shape[0]
    return (jnp.sum(x, 0, keepdims=True) - x) / (n - 1)


class Hybrid(Apg):
    """The hybrid agent on one env and config: APG's setup and window, another update; :meth:`iterate` is one
    jitted update."""

    name = "hybrid"

    def __init__(self, env: BraxEnv, config: HybridConfig):
        super().__init__(env, config)
        self._module = policy_net(env.action_size, config.hidden, config.activation)[0]
        self.estimates = jax.jit(self._estimates)

    def _env_window(self, params, stats, state, keys):
        """One robot's window: ``(-mean reward, (final state, rewards, done, obs_n, u, obs))``.

        ``keys[t]`` is the robot's key at step ``t``: the same noise as APG's
        window with the same key (its step key split over the robots).
        """
        trunc = self.config.truncation or self.config.horizon

        def one(state, xs):
            k, cut = xs
            state = stop_gradient_where(cut, state)
            obs_n = normalize(stats, state.obs)
            mean, raw = self._module.apply(params, obs_n)
            action, u = sample_tanh_gaussian(mean, raw, k)
            nxt, final = self.env.autoreset_step(state, action)
            return nxt, (final.reward, final.done.astype(final.reward.dtype), obs_n, u, state.obs)

        h = self.config.horizon
        final, (rew, done, obs_n, u, obs) = jax.lax.scan(one, state, (keys, jnp.arange(h) % trunc == 0))
        return -jnp.mean(rew), (final, rew, done, obs_n, u, obs)

    def _score_loss(self, params, obs_n, u, advantage):
        """The likelihood-ratio surrogate of one robot's window: its gradient is the zeroth-order sample."""
        mean, raw = self._module.apply(params, obs_n)
        return -jnp.sum(tanh_gaussian_log_prob(mean, raw, u) * advantage) / self.config.horizon

    def _estimates(self, params, stats, env_state, key):
        """Per-robot samples of both gradients, flat ``[num_envs, D]``; also the window's data.

        Returns ``(fo, zo, loss, final env state, observations [num_envs, horizon, obs])``; ``fo`` and ``zo``
        are flat in the order of ``jax.flatten_util.ravel_pytree(params)``.
        """
        n, h = self.config.num_envs, self.config.horizon
        step_keys = jax.random.split(key, h)
        keys = jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, n))(step_keys), 0, 1)  # [n, h, key]
        grad_fo = jax.vmap(jax.value_and_grad(self._env_window, has_aux=True), in_axes=(None, None, 0, 0))
        (losses, (final, rew, done, obs_n, u, obs)), g_fo = grad_fo(params, stats, env_state, keys)
        togo = jax.vmap(reward_to_go)(rew, done)  # [n, h]
        advantage = jax.lax.stop_gradient(togo - leave_one_out(togo))
        g_zo = jax.vmap(jax.grad(self._score_loss), in_axes=(None, 0, 0, 0))(params, obs_n, u, advantage)
        flat = jax.vmap(lambda g: ravel_pytree(g)[0])
        return flat(g_fo), flat(g_zo), jnp.mean(losses), final, obs

    def _iterate(self, ts: HybridState) -> tuple[HybridState, dict[str, jax.Array]]:
        cfg = self.config
        key, k_win = jax.random.split(ts.key)
        fo, zo, loss, env_state, obs = self._estimates(ts.params, ts.stats, ts.env_state, k_win)
        mix = alpha_order(fo, zo, cfg.bias_check, cfg.alpha)
        unravel = ravel_pytree(ts.params)[1]
        params, opt_state, skipped, grad_norm = apply_finite_update(self.optimizer, unravel(mix.grad), ts.opt_state,
                                                                    ts.params, ts.skipped)
        ts = ts.replace(params=params, opt_state=opt_state, stats=observe(cfg, ts.stats, obs), env_state=env_state,
                        key=key, skipped=skipped)
        return ts, {"loss": loss, "grad_norm": grad_norm, "skipped": ts.skipped, "alpha": mix.alpha,
                    "alpha_ivw": mix.alpha_ivw, "var_fo": mix.var_fo, "var_zo": mix.var_zo, "gap": mix.gap}

