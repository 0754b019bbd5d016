"""PPO in JAX on the batched core (Schulman et al. 2017, arXiv 1707.06347).

One iteration = a rollout of ``rollout_steps`` on ``num_envs`` robots
(``vmap`` of ``BraxEnv.autoreset_step``) + GAE + ``epochs`` x ``minibatches``
clipped-surrogate updates, all in one ``jit``. Truncated episodes bootstrap
from the value of the true final observation (SB3's convention). Policy:
tanh-Gaussian (``gradgym.nets``); value: an MLP; both see normalised
observations. A non-finite gradient is skipped and counted.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from gradgym.agents.base import GradientState as PpoState
from gradgym.agents.base import (
    apply_finite_update,
    init_train_state,
    make_optimizer,
    num_iterations,
    observe,
    policy_net,
    scheduled_lr,
)
from gradgym.agents.config import CommonConfig, check_actor_critic, check_float, check_int
from gradgym.agents.losses import PpoBatch, PpoStep, ppo_loss, value_of
from gradgym.agents.normalize import RunningStats, normalize
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import strong_types
from gradgym.nets import MLP, sample_tanh_gaussian, tanh_gaussian_log_prob


@dataclasses.dataclass(frozen=True)
class PpoConfig(CommonConfig):
    """PPO settings.

    Attributes:
        num_envs: robots simulated in parallel.
        rollout_steps: steps per robot per iteration.
        epochs: passes over each rollout.
        minibatches: minibatches per epoch (must divide num_envs * rollout_steps).
        learning_rate: Adam learning rate (policy and value).
        lr_schedule: ``"constant"``, or ``"linear"``: the rate falls linearly over
            the run's ``total_steps`` (to 1/200 of its start), as CleanRL's
            ``anneal_lr``; it keeps late updates from undoing a learned gait.
        gamma: discount factor.
        gae_lambda: GAE lambda.
        clip_eps: PPO ratio clipping.
        vf_coef: value-loss weight.
        ent_coef: entropy-bonus weight.
        max_grad_norm: global-norm gradient clipping.
        value_hidden: hidden sizes of the value MLP.
        obs_norm: normalise observations with running statistics.
        reward_scale: rewards are multiplied by this before learning (Brax's
            ``reward_scaling``); keeps value targets, whose loss shares the
            clipped gradient with the policy's, near unit scale.
    """

    num_envs: int = 32
    rollout_steps: int = 64
    epochs: int = 4
    minibatches: int = 4
    learning_rate: float = 3e-4
    lr_schedule: str = "constant"
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 1e-3
    max_grad_norm: float = 0.5
    value_hidden: tuple[int, ...] = (64, 64)
    obs_norm: bool = True
    reward_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_envs", "rollout_steps", "epochs", "minibatches"):
            check_int(name, getattr(self, name))
        if (self.num_envs * self.rollout_steps) % self.minibatches:
            raise ValueError(
                f"config field 'minibatches' ({self.minibatches}) must divide num_envs * rollout_steps "
                f"({self.num_envs * self.rollout_steps}); pick a divisor."
            )
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_float("clip_eps", self.clip_eps, 0.0, low_open=True)
        check_float("vf_coef", self.vf_coef)
        check_float("ent_coef", self.ent_coef)
        check_actor_critic(self)


ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {
    "inverted_pendulum": {"num_envs": 16, "rollout_steps": 32, "learning_rate": 1e-3},
    # The default `gradgym compare` robot (100-step episodes): the pendulum's many small updates learn 40k steps
    # to an IQM of 863 [818, 913] over 5 seeds from ~550; the class defaults (20 updates) to 719 [568, 838].
    "inverted_double_pendulum": {"num_envs": 16, "rollout_steps": 32, "learning_rate": 1e-3},
    "reacher": {"rollout_steps": 50},
    # Measured on the 2-core CPU (docs/agents.md, "Learning locomotion"): many small minibatches (320
    # updates of 64 samples per 2,048 steps), a short-sighted discount, a wide critic. Halfcheetah: 3,155 at
    # 2M steps over 3 seeds, no collapse. Ant adds Brax's gamma 0.97, entropy 0.01 and a linear decay: 5,785
    # at 3M (seed 0); the same without the decay peaked at 2,822 and fell to 1,884 at 1M.
    "ant": {"num_envs": 16, "rollout_steps": 128, "epochs": 10, "minibatches": 32, "gamma": 0.97,
            "gae_lambda": 0.92, "value_hidden": (256, 256), "ent_coef": 1e-2, "lr_schedule": "linear"},
    "halfcheetah": {"num_envs": 16, "rollout_steps": 128, "epochs": 10, "minibatches": 32, "gamma": 0.98,
                    "gae_lambda": 0.92, "value_hidden": (256, 256)},
}


def compute_gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Generalised advantage estimation with a reverse ``lax.scan``.

    Args:
        rewards, values, dones: ``[T, ...]`` arrays (``dones[t]``: the episode
            ended at step t, so ``values[t + 1]`` belongs to a new episode).
        last_value: value of the state after the last step, ``[...]``.

    Returns:
        (advantages, returns), both ``[T, ...]``.
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], 0)
    return gae_from_next(rewards, values, next_values, dones, gamma, lam)


def gae_from_next(rewards, values, next_values, dones, gamma: float, lam: float):
    """:func:`compute_gae` with each step's next value given (``next_values[t]``: the value after step t, used
    where the episode goes on); returns (advantages, returns)."""

    def body(gae, x):
        r, v, nv, d = x
        nonterminal = 1.0 - d
        delta = r + gamma * nv * nonterminal - v
        gae = delta + gamma * lam * nonterminal * gae
        return gae, gae

    _, adv = jax.lax.scan(body, jnp.zeros_like(values[0]), (rewards, values, next_values, dones), reverse=True)
    return adv, adv + values


class Ppo:
    """PPO on one env and config; :meth:`iterate` is one jitted rollout + update."""

    name = "ppo"

    def __init__(self, env: BraxEnv, config: PpoConfig):
        self.env = env
        self.config = config
        self.steps_per_iter = config.num_envs * config.rollout_steps
        self.module = policy_net(env.action_size, config.hidden, config.activation)[0]
        self.value = MLP((*config.value_hidden, 1), config.activation)
        updates = num_iterations(config.total_steps, self.steps_per_iter) * config.epochs * config.minibatches
        self.optimizer = make_optimizer(scheduled_lr(config.learning_rate, config.lr_schedule, updates),
                                        config.max_grad_norm)
        # loss(params, batch: PpoBatch) -> (total, (surrogate, value loss, entropy))
        self.loss = functools.partial(ppo_loss, policy_apply=self.module.apply, value_apply=self.value.apply,
                                      clip_eps=config.clip_eps, vf_coef=config.vf_coef, ent_coef=config.ent_coef)
        self.init = jax.jit(lambda key: strong_types(self._init(key)))
        self.iterate = jax.jit(lambda ts: strong_types(self._iterate(ts)))

    def _init(self, key: jax.Array) -> PpoState:
        def value_params(k):
            return {"value": self.value.init(k, jnp.zeros((self.env.observation_size,)))}

        return init_train_state(self.env, self.config, self.optimizer, key, value_params)

    def policy_params(self, ts: PpoState) -> tuple[Any, RunningStats]:
        return ts.params["policy"], ts.stats

    def _rollout(self, params, stats, env_state, key):
        cfg = self.config

        def one(state, k):
            obs_n = normalize(stats, state.obs)
            mean, raw = self.module.apply(params["policy"], obs_n)
            action, u = sample_tanh_gaussian(mean, raw, k)
            nxt, final = jax.vmap(self.env.autoreset_step)(state, action)
            # Time-limit ends are not terminal: bootstrap from the true final observation.
            boot = (final.truncated & ~final.terminated).astype(jnp.float32)
            reward = cfg.reward_scale * final.reward + cfg.gamma * boot * self._v(params, normalize(stats, final.obs))
            out = PpoStep(obs=state.obs, obs_n=obs_n, u=u, log_prob=tanh_gaussian_log_prob(mean, raw, u),
                          value=self._v(params, obs_n), reward=reward, done=final.done.astype(jnp.float32))
            return nxt, out

        return jax.lax.scan(one, env_state, jax.random.split(key, cfg.rollout_steps))

    def _v(self, params, obs_n):
        return value_of(self.value.apply, params["value"], obs_n)

    def _update(self, carry, batch):
        params, opt_state, skipped = carry
        (loss, aux), grads = jax.value_and_grad(self.loss, has_aux=True)(params, batch)
        *carry, norm = apply_finite_update(self.optimizer, grads, opt_state, params, skipped)
        return tuple(carry), (loss, norm, *aux)

    def _iterate(self, ts: PpoState) -> tuple[PpoState, dict[str, jax.Array]]:
        cfg = self.config
        key, k_roll, k_perm = jax.random.split(ts.key, 3)
        env_state, traj = self._rollout(ts.params, ts.stats, ts.env_state, k_roll)
        last_v = self._v(ts.params, normalize(ts.stats, env_state.obs))
        adv, ret = compute_gae(traj.reward, traj.value, traj.done, last_v, cfg.gamma, cfg.gae_lambda)
        n = cfg.num_envs * cfg.rollout_steps
        flat = jax.tree.map(lambda x: x.reshape(n, *x.shape[2:]), PpoBatch(traj.obs_n, traj.u, traj.log_prob, adv, ret))

        def epoch(carry, k):
            perm = jax.random.permutation(k, n).reshape(cfg.minibatches, -1)
            batches = jax.tree.map(lambda x: x[perm], flat)
            return jax.lax.scan(self._update, carry, batches)

        (params, opt_state, skipped), (loss, norm, pg, v_loss, ent) = jax.lax.scan(
            epoch, (ts.params, ts.opt_state, ts.skipped), jax.random.split(k_perm, cfg.epochs)
        )
        ts = ts.replace(params=params, opt_state=opt_state, stats=observe(cfg, ts.stats, traj.obs), env_state=env_state,
                        key=key, skipped=skipped)
        return ts, {"loss": loss.mean(), "grad_norm": norm.mean(), "policy_loss": pg.mean(), "value_loss": v_loss.mean(),
                    "entropy": ent.mean(), "skipped": skipped}
