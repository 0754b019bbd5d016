"""Gradient-informed PPO: PPO whose policy is first moved toward an alpha-policy built from the simulator's gradient.

Son et al., "Gradient Informed Proximal Policy Optimization" (NeurIPS 2023,
arXiv 2312.08710). One iteration:

1. **Rollout, differentiated.** PPO's rollout (``num_envs`` robots,
   ``rollout_steps`` steps), with a zero offset added to every pre-tanh action
   sample ``u``. GAE's advantages are a function of those offsets through the
   physics and the value network (the later actions' samples are constants:
   the gradient is that of the sampled action sequence, not through the
   policy's response to the changed states); one backward pass of the sum of
   the advantages at the segment starts gives every ``dA_t/du_t`` (times a
   known sum of powers of ``gamma lambda``, which :func:`advantage_gradients`
   divides out).
   The env state's gradient is stopped every ``truncation`` steps, as APG's
   window: on Brax's spring contacts gradients longer than a few steps explode.
2. **Alpha-policy.** The targets ``u + alpha dA/du`` are what a policy a little
   better than the rollout's would have sampled with the same noise; the
   policy is fitted to them (``alpha_iters`` Adam steps on the whole rollout,
   its own optimiser), and kept only if the fit's loss fell (else the fit's
   rate halves for the next iterations).
3. **Alpha.** ``alpha`` grows by ``alpha_factor`` after an update that kept the
   policy's spread (the product of the per-action std ratios in
   ``[1 - alpha_interval, 1 + alpha_interval]`` on every sample) and shrinks by
   it otherwise; it also shrinks when more than ``alpha_max_out_of_range`` of
   the samples' probability ratios leave PPO's clip range, or when the
   importance-sampled gain of the alpha-policy, ``sum_t A_t (p_alpha / p_old -
   1)``, is negative and more than one running standard deviation below its
   running mean (the simulator's gradient is then biased: the check of the
   paper).
4. **PPO.** PPO's epochs from the alpha-policy, with the probability ratio
   taken against the mean of the rollout's and the alpha-policy's densities
   (the paper's), or the alpha-policy's alone where the two are more than a
   factor ``e^4`` apart on some sample.

``gi_alpha`` (the alpha used this iteration) is a per-update metric in the
run's history and logs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from gradgym.agents.base import GradientState, observe
from gradgym.agents.config import check_float, check_int
from gradgym.agents.losses import PpoBatch, PpoStep
from gradgym.agents.normalize import RunningStats, init_stats, normalize, update_stats
from gradgym.agents.ppo import ROBOT_DEFAULTS as PPO_DEFAULTS
from gradgym.agents.ppo import Ppo, PpoConfig, gae_from_next
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import stop_gradient_where
from gradgym.nets import gaussian_params, tanh_gaussian_log_prob


@dataclasses.dataclass(frozen=True)
class GiPpoConfig(PpoConfig):
    """GI-PPO settings: PPO's, plus the alpha-policy's (defaults: the paper's code).

    Attributes:
        truncation: ``stop_gradient`` on the env state every this many rollout
            steps (``None``: never; the paper's soft-contact setting).
        alpha: the first iteration's alpha (pre-tanh action units per unit of
            scaled advantage).
        alpha_max: alpha never grows past this.
        alpha_factor: alpha is multiplied or divided by this after each iteration.
        alpha_interval: the bound on the change of the policy's spread (see the
            module docstring).
        alpha_max_out_of_range: the share of samples whose ratio may leave PPO's
            clip range before alpha shrinks.
        alpha_iters: Adam steps of the fit to the alpha-policy per iteration.
        alpha_lr: their first learning rate; it halves after a fit that did not
            lower its loss (the fit is then undone), down to ``ALPHA_LR_MIN``.
    """

    truncation: int | None = 4
    alpha: float = 1e-3
    alpha_max: float = 1.0
    alpha_factor: float = 1.1
    alpha_interval: float = 0.2
    alpha_max_out_of_range: float = 0.5
    alpha_iters: int = 16
    alpha_lr: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.truncation is not None:
            check_int("truncation", self.truncation)
        check_float("alpha", self.alpha, 0.0, low_open=True)
        check_float("alpha_max", self.alpha_max, 0.0, low_open=True)
        if self.alpha > self.alpha_max:
            raise ValueError(f"config field 'alpha' ({self.alpha}) must not exceed 'alpha_max' ({self.alpha_max}); "
                             "raise alpha_max or lower alpha.")
        check_float("alpha_factor", self.alpha_factor, 1.0)
        check_float("alpha_interval", self.alpha_interval, 0.0, 1.0, low_open=True)
        check_float("alpha_max_out_of_range", self.alpha_max_out_of_range, 0.0, 1.0)
        check_int("alpha_iters", self.alpha_iters)
        check_float("alpha_lr", self.alpha_lr, 0.0, 1.0, low_open=True)


#: The fit's rate halves after each fit that did not lower its loss, down to this (the paper's code's floor).
ALPHA_LR_MIN = 1e-5

#: PPO's per-robot settings serve GI-PPO too (the alpha-policy only adds a step before PPO's epochs).
ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {robot: dict(values) for robot, values in PPO_DEFAULTS.items()}


@struct.dataclass
class GiPpoState(GradientState):
    """PPO's training state plus the alpha-policy's.

    Attributes:
        alpha_opt: the alpha-policy fit's optimiser state (policy parameters).
        alpha: the alpha of the next iteration.
        alpha_lr: the fit's learning rate in the next iteration.
        gain_stats: running mean and variance of the estimated alpha-policy gain
            (a one-entry :class:`RunningStats`).
    """

    alpha_opt: Any
    alpha: jax.Array
    alpha_lr: jax.Array
    gain_stats: RunningStats


def advantage_gradients(grad_of_sum: jax.Array, done: jax.Array, cuts: jax.Array, gamma: float,
                        lam: float) -> jax.Array:
    """Each step's ``dA_t/du_t`` from the gradient at each ``u_t`` of the sum of GAE advantages over the
    *segment starts* (:func:`segment_starts`: the steps where the gradient was cut or an episode began).

    ``A_s = delta_s + gamma lam (1 - done_s) A_{s+1}``, so a start ``s <= t``
    of the episode holding step ``t`` depends on ``u_t`` only through ``A_t``,
    weighted ``(gamma lam)^(t - s)``; a later start is past a cut or the
    episode's end and does not depend on ``u_t`` at all. So the sum's gradient
    at ``u_t`` is ``dA_t/du_t`` times ``w_t = sum (gamma lam)^(t - s)`` over
    those starts, and one backward pass gives every step's own gradient once
    ``w_t`` is divided out. (The paper's code sums the episode starts only; the
    cuts keep ``w_t`` at least ``(gamma lam)^(truncation - 1)``.)

    Args:
        grad_of_sum: ``[T, num_envs, action_size]``.
        done: ``[T, num_envs]``, 1.0 where the episode ended at that step.
        cuts: ``[T]``, True where the env state's gradient is stopped before the step.
    """
    gl = gamma * lam
    starts = segment_starts(done, cuts)
    go_on = jnp.concatenate([jnp.zeros_like(done[:1]), 1.0 - done[:-1]], 0)  # the step before is the same episode

    def weight(w, xs):
        start, same = xs
        w = start + gl * same * w
        return w, w

    _, w = jax.lax.scan(weight, jnp.zeros_like(done[0]), (starts, go_on))
    return grad_of_sum / w[..., None]


def segment_starts(done: jax.Array, cuts: jax.Array) -> jax.Array:
    """``[T, num_envs]`` 1.0 at the steps :func:`advantage_gradients` calls segment starts."""
    after_end = jnp.concatenate([jnp.ones_like(done[:1]), done[:-1]], 0)
    return jnp.maximum(after_end, cuts[:, None].astype(done.dtype))


class GiPpo(Ppo):
    """GI-PPO on one env and config; :meth:`iterate` is one jitted rollout + alpha-policy fit + PPO update."""

    name = "gippo"

    def __init__(self, env: BraxEnv, config: GiPpoConfig):
        super().__init__(env, config)
        # the fit's rate lives in the training state (it halves after a fit that failed): Adam's direction here
        self.alpha_optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam())

    def _init(self, key: jax.Array) -> GiPpoState:
        base = super()._init(key)
        dtype = base.stats.mean.dtype
        return GiPpoState(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
                          alpha_opt=self.alpha_optimizer.init(base.params["policy"]),
                          alpha=jnp.asarray(self.config.alpha, dtype),
                          alpha_lr=jnp.asarray(self.config.alpha_lr, dtype),
                          gain_stats=init_stats(1, dtype))

    # -- 1. the differentiated rollout ---------------------------------------
    def advantages(self, du, params, stats, env_state, key):
        """GAE advantages ``[T, num_envs]`` as a function of the offsets ``du`` on every ``u``; aux = (final env
        state, traj, returns), detached."""
        cfg = self.config

        def one(state, xs):
            k, cut, d = xs
            state = stop_gradient_where(cut, state)
            obs_n = normalize(stats, state.obs)
            mean, raw = self.module.apply(params["policy"], obs_n)
            m, std = gaussian_params(mean, raw)
            u0 = jax.lax.stop_gradient(m + std * jax.random.normal(k, m.shape, m.dtype))
            u = u0 + d
            nxt, final = jax.vmap(self.env.autoreset_step)(state, jnp.tanh(u))
            boot = (final.truncated & ~final.terminated).astype(final.reward.dtype)
            v_final = self._v(params, normalize(stats, final.obs))
            reward = cfg.reward_scale * final.reward + cfg.gamma * boot * v_final
            done = final.done.astype(reward.dtype)
            value = self._v(params, obs_n)
            step = PpoStep(obs=state.obs, obs_n=obs_n, u=u0,
                           log_prob=tanh_gaussian_log_prob(mean, raw, u0), value=value, reward=reward, done=done)
            # v_final is the next step's value where the episode goes on (the same observation)
            return nxt, (step, v_final)

        final, (traj, v_next) = jax.lax.scan(one, env_state,
                                             (jax.random.split(key, cfg.rollout_steps), self.cuts(), du))
        adv, ret = gae_from_next(traj.reward, traj.value, v_next, traj.done, cfg.gamma, cfg.gae_lambda)
        return adv, jax.lax.stop_gradient((final, traj, ret))

    def rollout_gradients(self, params, stats, env_state, key):
        """``(dA/du [T, num_envs, action_size], final env state, traj, advantages, returns)``."""
        cfg = self.config
        du = jnp.zeros((cfg.rollout_steps, cfg.num_envs, self.env.action_size), stats.mean.dtype)

        cuts = self.cuts()

        def total(d):
            adv, (final, traj, ret) = self.advantages(d, params, stats, env_state, key)
            starts = segment_starts(traj.done, cuts)
            return jnp.sum(adv * starts), (jax.lax.stop_gradient(adv), final, traj, ret)

        grad, (adv, final, traj, ret) = jax.grad(total, has_aux=True)(du)
        return advantage_gradients(grad, traj.done, cuts, cfg.gamma, cfg.gae_lambda), final, traj, adv, ret

    def cuts(self) -> jax.Array:
        """``[rollout_steps]``: True before the steps whose incoming env state has its gradient stopped."""
        trunc = self.config.truncation or self.config.rollout_steps
        return jnp.arange(self.config.rollout_steps) % trunc == 0

    # -- 2. the alpha-policy fit -----------------------------------------------
    def _fit_alpha(self, policy, alpha_opt, lr, skipped, obs_n, eps, target):
        """``alpha_iters`` Adam steps (rate ``lr``) of ``mean ||mean + std eps - target||^2``; returns the fitted
        policy (or the old one if the loss did not fall), its optimiser state, skipped count, whether it fell and
        (first loss, last loss)."""

        def fit_loss(p):
            m, std = gaussian_params(*self.module.apply(p, obs_n))
            return jnp.mean(jnp.sum((m + std * eps - target) ** 2, -1))

        def one(carry, _):
            p, opt, sk = carry
            loss, g = jax.value_and_grad(fit_loss)(p)
            finite = jnp.isfinite(optax.tree.norm(g))
            g = jax.tree.map(lambda x: jnp.where(finite, x, 0.0), g)
            step, new_opt = self.alpha_optimizer.update(g, opt, p)
            new_p = jax.tree.map(lambda a, b: a - lr * b, p, step)
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)  # noqa: E731
            return (keep(new_p, p), keep(new_opt, opt), sk + (~finite).astype(sk.dtype)), loss

        (fitted, opt, sk), losses = jax.lax.scan(one, (policy, alpha_opt, skipped), None, self.config.alpha_iters)
        last = fit_loss(fitted)
        ok = last < losses[0]
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        return keep(fitted, policy), keep(opt, alpha_opt), sk, ok, losses[0], last

    # -- 3. alpha's update -----------------------------------------------------
    def _next_alpha(self, alpha, gain_stats, converged, std_log_ratio, log_ratio, adv):
        cfg = self.config
        f = cfg.alpha_factor
        spread_kept = (jnp.min(std_log_ratio) >= math.log(1.0 - cfg.alpha_interval)) & (
            jnp.max(std_log_ratio) <= math.log(1.0 + cfg.alpha_interval))
        nxt = jnp.where(converged, jnp.where(spread_kept, alpha * f, alpha / f), alpha)
        ratio = jnp.exp(jnp.minimum(log_ratio, 16.0))
        out_of_range = jnp.mean(((ratio < 1.0 - cfg.clip_eps) | (ratio > 1.0 + cfg.clip_eps)).astype(adv.dtype))
        gain = jnp.sum(adv * ratio) - jnp.sum(adv)
        z = (gain - gain_stats.mean[0]) / gain_stats.std[0]  # against the iterations before this one
        biased = (gain < 0) & (z < -1.0)
        nxt = jnp.where((out_of_range > cfg.alpha_max_out_of_range) | biased, alpha / f, nxt)
        stats = update_stats(gain_stats, gain[None])
        return jnp.minimum(nxt, cfg.alpha_max), stats, {"gi_out_of_range": out_of_range, "gi_gain": gain,
                                                        "gi_biased": biased.astype(adv.dtype)}

    def _iterate(self, ts: GiPpoState) -> tuple[GiPpoState, dict[str, jax.Array]]:
        cfg = self.config
        key, k_roll, k_perm = jax.random.split(ts.key, 3)
        used_alpha = ts.alpha
        g, env_state, traj, adv, ret = self.rollout_gradients(ts.params, ts.stats, ts.env_state, k_roll)
        n = cfg.num_envs * cfg.rollout_steps
        flat = lambda x: x.reshape(n, *x.shape[2:])  # noqa: E731
        obs_n, u, lp_old, adv_f = flat(traj.obs_n), flat(traj.u), flat(traj.log_prob), flat(adv)
        g = flat(g)
        finite = jnp.all(jnp.isfinite(g), -1, keepdims=True)  # a sample whose gradient blew up keeps its action
        g = jnp.where(finite, g, 0.0)

        policy = ts.params["policy"]
        m0, std0 = gaussian_params(*self.module.apply(policy, obs_n))
        eps = (u - m0) / std0
        target = u + ts.alpha * g
        fitted, alpha_opt, skipped, converged, fit0, fit1 = self._fit_alpha(policy, ts.alpha_opt, ts.alpha_lr,
                                                                            ts.skipped, obs_n, eps, target)
        # a fit that did not lower its loss halves the fit's rate for the next iterations (not below ALPHA_LR_MIN)
        alpha_lr = jnp.where(converged, ts.alpha_lr, jnp.maximum(ts.alpha_lr / 2.0, ALPHA_LR_MIN))
        mean1, raw1 = self.module.apply(fitted, obs_n)
        std1 = gaussian_params(mean1, raw1)[1]
        lp_alpha = tanh_gaussian_log_prob(mean1, raw1, u)
        alpha, gain_stats, info = self._next_alpha(ts.alpha, ts.gain_stats, converged,
                                                   jnp.sum(jnp.log(std1) - jnp.log(std0), -1), lp_alpha - lp_old, adv_f)
        # PPO's ratio against the mean of the two densities, or the alpha-policy's where they are far apart
        far = jnp.any(jnp.abs(lp_alpha - lp_old) > 4.0)
        lp_ref = jnp.where(far, lp_alpha, jnp.logaddexp(lp_old, lp_alpha) - jnp.log(2.0))

        params = {**ts.params, "policy": fitted}
        batch = PpoBatch(obs_n, u, lp_ref, adv_f, flat(ret))

        def epoch(carry, k):
            perm = jax.random.permutation(k, n).reshape(cfg.minibatches, -1)
            return jax.lax.scan(self._update, carry, jax.tree.map(lambda x: x[perm], batch))

        (params, opt_state, skipped), (loss, norm, pg, v_loss, ent) = jax.lax.scan(
            epoch, (params, ts.opt_state, skipped), jax.random.split(k_perm, cfg.epochs))
        ts = ts.replace(params=params, opt_state=opt_state, stats=observe(cfg, ts.stats, traj.obs), env_state=env_state,
                        key=key, skipped=skipped, alpha_opt=alpha_opt, alpha=alpha, alpha_lr=alpha_lr,
                        gain_stats=gain_stats)
        return ts, {"loss": loss.mean(), "grad_norm": norm.mean(), "policy_loss": pg.mean(),
                    "value_loss": v_loss.mean(), "entropy": ent.mean(), "skipped": skipped,
                    "gi_alpha": used_alpha, "gi_adv_grad_norm": jnp.mean(jnp.linalg.norm(g, axis=-1)),
                    "gi_nonfinite": jnp.mean(1.0 - finite[:, 0].astype(adv_f.dtype)),
                    "gi_fit_converged": converged.astype(adv_f.dtype), "gi_fit_ratio": fit1 / (fit0 + 1e-12), **info}
