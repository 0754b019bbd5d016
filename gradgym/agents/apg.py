"""Analytic policy gradient: backprop through the simulator (truncated BPTT).

A batch of ``num_envs`` robots runs continuously; each update differentiates
the mean reward of the next window of ``horizon`` steps with respect to the
policy parameters and then carries the env state into the next window (as in
Brax's APG, PR #476). Within a window ``stop_gradient`` is applied to the env
state every ``truncation`` steps (Metz et al. 2021, Fig. 6); episode
boundaries stop gradients too (``BraxEnv.autoreset_step``). The policy is a
tanh-Gaussian with reparameterised noise, so the sampled action is a
differentiable function of the parameters. The global gradient norm is logged
before clipping; a non-finite gradient is skipped and counted, never applied.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax

from gradgym.agents.base import GradientState as ApgState
from gradgym.agents.base import (
    apply_finite_update,
    init_train_state,
    make_optimizer,
    num_iterations,
    observe,
    policy_net,
    scheduled_lr,
)
from gradgym.agents.config import LR_SCHEDULES, CommonConfig, check_bool, check_choice, check_float, check_int
from gradgym.agents.losses import apg_loss
from gradgym.agents.normalize import RunningStats
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import DTYPES, strong_types


@dataclasses.dataclass(frozen=True)
class ApgConfig(CommonConfig):
    """Analytic policy gradient settings.

    Attributes:
        num_envs: robots simulated in parallel (one gradient averages them).
        horizon: steps per update window (H); the env state carries over.
        truncation: ``stop_gradient`` on the env state every this many steps
            inside a window (t); must divide ``horizon``; ``None`` = ``horizon``.
        learning_rate: Adam learning rate.
        lr_schedule: ``"constant"`` or ``"linear"``: the rate falls linearly over the run's
            updates to ``LINEAR_END`` of its start (SHAC's schedule). On halfcheetah it holds
            the return a seed reaches but does not raise it (docs/agents.md).
        max_grad_norm: global-norm clipping threshold (the norm is logged first).
        obs_norm: normalise observations with running statistics.
        dtype: ``"float32"`` or ``"float64"`` for physics and parameters.
    """

    RECORDED_IF_SET = ("lr_schedule",)

    num_envs: int = 16
    horizon: int = 32
    truncation: int | None = None
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    max_grad_norm: float = 1.0
    obs_norm: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("num_envs", self.num_envs)
        check_int("horizon", self.horizon)
        if self.truncation is not None:
            check_int("truncation", self.truncation)
            if self.horizon % self.truncation:
                raise ValueError(
                    f"config field 'truncation' ({self.truncation}) must divide 'horizon' ({self.horizon}); "
                    "pick a divisor or None."
                )
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_float("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_bool("obs_norm", self.obs_norm)
        check_choice("dtype", self.dtype, DTYPES)


ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {
    "reacher": {"num_envs": 4, "horizon": 50, "learning_rate": 1e-3},
    "inverted_pendulum": {"horizon": 64},
    # Ant: the halfcheetah window. 10-step windows (the paper's truncation) stay at the survive bonus for 300k
    # steps; 4-step windows on 64 envs walk forward: 1,896 at 1.2M, 1,350 at 3M, seed 0 (docs/agents.md).
    "ant": {"num_envs": 64, "horizon": 4, "learning_rate": 1e-3},
    # Spring contacts make 32-step gradients explode (median norm 8.8e5); 4-step windows on 64 envs keep the
    # norm ~1 and learn to run: -1.5 -> 562 at 300k env steps, 2,799 +- 361 at 2M over 5 seeds (docs/agents.md);
    # a linearly decaying rate ends no higher (2,589 +- 618 against 2,755 +- 401 on seeds 0-3).
    "halfcheetah": {"num_envs": 64, "horizon": 4, "learning_rate": 1e-3},
    "hopper": {"horizon": 32, "learning_rate": 3e-4},
}


class Apg:
    """APG on one env and config; :meth:`iterate` is one jitted update."""

    name = "apg"

    def __init__(self, env: BraxEnv, config: ApgConfig):
        if env.dtype != config.dtype:
            raise ValueError(
                f"APG config dtype {config.dtype!r} differs from the env's dtype {env.dtype!r}; "
                "make the env with the same dtype."
            )
        self.env = env
        self.config = config
        self.steps_per_iter = config.num_envs * config.horizon
        iters = num_iterations(config.total_steps, self.steps_per_iter)
        self.optimizer = make_optimizer(scheduled_lr(config.learning_rate, config.lr_schedule, iters),
                                        config.max_grad_norm)
        self._policy_fn = policy_net(env.action_size, config.hidden, config.activation)[1]
        # loss(params, stats, env_state, key) -> (-mean window reward, (final env state, observations))
        self.loss = functools.partial(apg_loss, env=env, policy_fn=self._policy_fn, num_envs=config.num_envs,
                                      horizon=config.horizon, truncation=config.truncation or config.horizon)
        self.init = jax.jit(lambda key: strong_types(self._init(key)))
        self.iterate = jax.jit(lambda ts: strong_types(self._iterate(ts)))
        self.window_grad = jax.jit(self._window_grad)

    def _init(self, key: jax.Array) -> ApgState:
        return init_train_state(self.env, self.config, self.optimizer, key)

    def policy_params(self, ts: ApgState) -> tuple[Any, RunningStats]:
        return ts.params, ts.stats

    def _window_grad(self, params, stats, env_state, key):
        (loss, aux), grads = jax.value_and_grad(self.loss, has_aux=True)(params, stats, env_state, key)
        return loss, grads, aux

    def _iterate(self, ts: ApgState) -> tuple[ApgState, dict[str, jax.Array]]:
        key, k_win = jax.random.split(ts.key)
        loss, grads, (env_state, obs) = self._window_grad(ts.params, ts.stats, ts.env_state, k_win)
        params, opt_state, skipped, grad_norm = apply_finite_update(self.optimizer, grads, ts.opt_state, ts.params,
                                                                    ts.skipped)
        ts = ts.replace(params=params, opt_state=opt_state, stats=observe(self.config, ts.stats, obs),
                        env_state=env_state, key=key, skipped=skipped)
        return ts, {"loss": loss, "grad_norm": grad_norm, "skipped": ts.skipped}
