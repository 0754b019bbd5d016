"""Short-horizon actor-critic (SHAC; Xu et al. 2022, arXiv 2204.07137).

The actor is trained by backprop through the simulator over a short window of
``horizon`` steps (default 32), and a learned critic bootstraps the tail, so
the gradient neither explodes over long unrolls (Metz et al. 2021) nor ignores
what lies beyond the window. Per iteration, on ``num_envs`` robots that run on
across windows:

1. actor loss ``-1/(H N) sum_i [sum_t gamma^t r_t + gamma^H V'(s_H)]`` with the
   discount restarting at episode ends (``V'`` = target critic; a time-limit
   end bootstraps from the true final observation, a termination does not;
   episode boundaries stop gradients, ``BraxEnv.autoreset_step``);
2. global-norm clipping (norm logged first), Adam with betas (0.7, 0.95) and,
   as in the paper, learning rates that decay linearly over the run; a
   non-finite gradient is skipped and counted, never applied;
3. critic regression onto TD(lambda) targets of the (detached) window,
   computed from the target critic (:func:`td_lambda_targets`), for
   ``critic_iterations`` epochs of ``critic_minibatches`` minibatches; with
   ``critic_windows=K > 1`` the critic regresses on the newest K windows
   (the targets of the older ones recomputed with the current target critic),
   so that a short window still gives it the paper's ``N x H`` samples;
4. soft update ``V' <- alpha V' + (1 - alpha) V``.

The critic recipe of AHAC (Georgiev et al., ICML 2024) and SAPO (Xing et al.,
ICLR 2025) is available as options (:mod:`gradgym.agents.critic`), off by
default except on ant (an ensemble of 3 LayerNorm critics, their mean):
an ensemble of critics whose minimum (or mean, ``critic_reduce``) bootstraps
the actor and the targets (``critic_ensemble``), LayerNorm in the critic (``critic_layernorm``), no
target network (``target_network=False``: ``V'`` is ``V``), and regression
passes until the loss stops falling (``critic_early_stop``).

``adaptive_horizon=True`` lets the window grow and shrink with its gradient
norm, AHAC's adaptive horizon (:mod:`gradgym.agents.horizon`);
``horizon_split_envs=True`` runs a longer window on fewer robots, so every
update costs the same env steps. Both are on by default for ant.

With ``horizon=1`` and a zero critic the actor gradient equals APG's (tested).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from gradgym.agents.base import (
    apply_finite_update,
    init_policy_params,
    make_optimizer,
    num_iterations,
    observe,
    policy_net,
    scheduled_lr,
)
from gradgym.agents.config import (
    CommonConfig,
    check_actor_critic,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from gradgym.agents.critic import fit_until_plateau, init_members, mean_over_members, min_over_members
from gradgym.agents.horizon import (
    HorizonControl,
    horizon_levels,
    init_control,
    level_of,
    mean_log_norm,
    next_log2_horizon,
)
from gradgym.agents.losses import WindowStep, critic_loss, ensemble_critic_loss, shac_actor_loss, value_of
from gradgym.agents.normalize import RunningStats, init_stats, normalize
from gradgym.envs.core import BraxEnv, State
from gradgym.jax_utils import DTYPES, float_dtype, strong_types
from gradgym.nets import MLP

AUTO = "auto"
AUTO_HORIZONS = (1, 2, 4, 8, 16, 32, 64)  # unroll lengths tried for horizon="auto"


@dataclasses.dataclass(frozen=True)
class ShacConfig(CommonConfig):
    """SHAC settings (defaults from the paper's Ant/Cheetah configs, scaled to a CPU).

    Attributes:
        num_envs: robots simulated in parallel (one gradient averages them).
        horizon: steps per window (H) that the actor differentiates through;
            the env state carries over between windows. ``gradgym train
            --agent shac --config '{"horizon": "auto"}'`` takes the truncation
            horizon recommended by ``gradgym diagnose``.
        truncation: ``stop_gradient`` on the env state every this many steps
            inside the window (as APG's): every reward and the bootstrap value
            are still in the objective, but each one's gradient flows back
            through at most ``truncation`` steps of physics; must divide
            ``horizon``; ``None`` = ``horizon`` (the paper's).
        actor_lr: Adam learning rate of the policy.
        critic_lr: Adam learning rate of the critic.
        lr_schedule: ``"linear"`` (the paper's): both learning rates fall linearly
            over the run's ``total_steps`` to 1/200 of their start (2e-3 -> 1e-5);
            ``"constant"``: no decay.
        betas: Adam (beta1, beta2) of both optimisers; the paper uses (0.7, 0.95).
        gamma: discount factor.
        lam: TD(lambda) parameter of the critic targets.
        target_alpha: soft update ``V' <- alpha V' + (1 - alpha) V`` after each iteration.
        critic_iterations: epochs over each window's data for the critic (with
            ``critic_early_stop``, the most epochs).
        critic_minibatches: minibatches per critic epoch (must divide num_envs * horizon).
        critic_windows: windows the critic regresses on, the newest and the
            ``critic_windows - 1`` before it (1: the paper's, only the newest).
            The stored windows of each env follow each other, so they are
            treated as one ``critic_windows * horizon``-step trajectory: its
            TD(lambda) targets look ahead across window boundaries (as the
            paper's 32-step windows do when ``horizon`` is short), recomputed
            each iteration with the current target critic and observation
            statistics; a minibatch holds
            ``critic_windows * num_envs * horizon / critic_minibatches`` samples.
        critic_ensemble: critics trained side by side, each from its own
            initialisation and on the same targets (the loss is the mean of the
            members'); the actor's bootstrap and the TD(lambda) targets use the
            minimum over the members (AHAC's; ``critic_reduce``). 1: a single critic (the paper's).
        critic_reduce: how an ensemble's members make one value: ``"min"`` (AHAC's pessimistic
            bootstrap) or ``"mean"`` (their average, no pessimism).
        critic_layernorm: LayerNorm (flax's) after each hidden layer of the critic, before its activation.
        target_network: ``True`` (the paper's): bootstrap and targets from the
            target critic ``V'``, soft-updated with ``target_alpha``. ``False``
            (AHAC's): from the current critic; ``V'`` is kept equal to ``V``.
        critic_early_stop: the critic's epochs of an iteration stop after the
            first whose mean minibatch loss improves on the previous epoch's by
            less than ``critic_stop_tol`` times that loss, at most
            ``critic_iterations`` epochs (``gradgym.agents.critic.fit_until_plateau``);
            the epochs run are logged as the metric ``critic_passes``. The
            linear learning-rate schedule counts the critic's updates over the
            run as if every iteration ran ``critic_iterations`` epochs, so with
            fewer the critic's rate decays more slowly than the actor's.
        critic_stop_tol: relative loss improvement below which ``critic_early_stop`` stops.
        adaptive_horizon: AHAC's adaptive window (:mod:`gradgym.agents.horizon`): the window
            starts at ``horizon`` and doubles or halves, between ``horizon`` and
            ``horizon_max``, to keep the actor's gradient norm (before clipping) near
            ``horizon_grad_limit``; an iteration is always ``num_envs * horizon_max`` env
            steps, as ``horizon_max / h`` windows of the current ``h``, each one update.
            The learning rates then decay with the env steps spent (same schedule per env
            step as a fixed window's). Needs ``truncation=None`` and ``critic_windows=1``.
            The window used is logged as the metric ``horizon``.
        horizon_max: the longest window of ``adaptive_horizon`` (``horizon`` times a power of two).
        horizon_grad_limit: the gradient norm ``adaptive_horizon`` aims to stay under (C).
        horizon_lr: step of the horizon's update, in log2 units per unit of ``log(C / ||grad||)``.
        horizon_split_envs: with ``adaptive_horizon``, a window of ``h`` steps runs on
            ``num_envs * horizon / h`` of the robots, which take turns in ``h / horizon``
            groups, so every update costs ``num_envs * horizon`` env steps (and its critic
            as many samples) whatever the window, an iteration makes ``horizon_max / horizon``
            updates, and every robot still advances ``horizon_max`` steps per iteration.
            Without it a longer window makes fewer updates per env step. Needs ``num_envs``
            divisible by ``horizon_max / horizon``.
        max_grad_norm: global-norm clipping of actor and critic gradients.
        reward_scale: rewards are multiplied by this before learning.
        value_hidden: hidden sizes of the critic MLP.
        obs_norm: normalise observations with running statistics.
        dtype: ``"float32"`` or ``"float64"`` for physics and parameters.
    """

    num_envs: int = 64
    horizon: int | str = 32
    truncation: int | None = None
    actor_lr: float = 2e-3
    critic_lr: float = 2e-3
    lr_schedule: str = "linear"
    betas: tuple[float, float] = (0.7, 0.95)
    gamma: float = 0.99
    lam: float = 0.95
    target_alpha: float = 0.2
    critic_iterations: int = 16
    critic_minibatches: int = 4
    critic_windows: int = 1
    critic_ensemble: int = 1
    critic_layernorm: bool = False
    critic_reduce: str = "min"
    target_network: bool = True
    critic_early_stop: bool = False
    critic_stop_tol: float = 0.01
    adaptive_horizon: bool = False
    horizon_max: int = 32
    horizon_grad_limit: float = 10.0
    horizon_lr: float = 0.25
    horizon_split_envs: bool = False
    max_grad_norm: float = 1.0
    reward_scale: float = 1.0
    value_hidden: tuple[int, ...] = (64, 64)
    obs_norm: bool = True
    dtype: str = "float32"

    # the critic options came after checkpoints: at their defaults they stay out of config headers
    RECORDED_IF_SET = ("critic_ensemble", "critic_layernorm", "critic_reduce", "target_network", "critic_early_stop",
                       "critic_stop_tol", "adaptive_horizon", "horizon_max", "horizon_grad_limit", "horizon_lr",
                       "horizon_split_envs")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_envs", "critic_iterations", "critic_minibatches", "critic_windows", "critic_ensemble"):
            check_int(name, getattr(self, name))
        if self.horizon != AUTO:  # "auto" is replaced by an int before an agent is built
            check_int("horizon", self.horizon)
            if (self.num_envs * self.horizon) % self.critic_minibatches:
                raise ValueError(
                    f"config field 'critic_minibatches' ({self.critic_minibatches}) must divide num_envs * horizon "
                    f"({self.num_envs * self.horizon}); pick a divisor."
                )
        if self.truncation is not None:
            check_int("truncation", self.truncation)
            if self.horizon != AUTO and self.horizon % self.truncation:
                raise ValueError(
                    f"config field 'truncation' ({self.truncation}) must divide 'horizon' ({self.horizon}); "
                    "pick a divisor or None."
                )
        check_float("actor_lr", self.actor_lr, 0.0, 1.0, low_open=True)
        check_float("critic_lr", self.critic_lr, 0.0, 1.0, low_open=True)
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else None
        if betas is None or len(betas) != 2:
            raise ValueError(f"config field 'betas' must be a pair (beta1, beta2), got {self.betas!r}.")
        for i, b in enumerate(betas):
            check_float(f"betas[{i}]", b, 0.0, 1.0)
        object.__setattr__(self, "betas", betas)
        check_float("lam", self.lam, 0.0, 1.0)
        check_float("target_alpha", self.target_alpha, 0.0, 1.0)
        for name in ("critic_layernorm", "target_network", "critic_early_stop"):
            check_bool(name, getattr(self, name))
        check_float("critic_stop_tol", self.critic_stop_tol, 0.0, 1.0)
        check_choice("critic_reduce", self.critic_reduce, ("min", "mean"))
        self._check_adaptive_horizon()
        check_actor_critic(self)
        check_choice("dtype", self.dtype, DTYPES)

    def _check_adaptive_horizon(self) -> None:
        check_bool("adaptive_horizon", self.adaptive_horizon)
        check_int("horizon_max", self.horizon_max)
        check_float("horizon_grad_limit", self.horizon_grad_limit, 0.0, low_open=True)
        check_float("horizon_lr", self.horizon_lr, 0.0, 100.0, low_open=True)
        check_bool("horizon_split_envs", self.horizon_split_envs)
        if not self.adaptive_horizon:
            if self.horizon_split_envs:
                raise ValueError("config field 'horizon_split_envs' (True; on by default for ant) needs "
                                 "'adaptive_horizon' true (it splits the robots between the adaptive windows); for a "
                                 "fixed window set both to false.")
            return
        fix = "set 'adaptive_horizon' to false (on by default for ant) or change the field"
        if self.horizon == AUTO:
            raise ValueError(f"config field 'horizon' is 'auto', which 'adaptive_horizon' cannot start from; give "
                             f"the shortest window as an int (e.g. 4), or {fix}.")
        ratio = self.horizon_max // self.horizon
        if self.horizon_max % self.horizon or ratio & (ratio - 1):
            raise ValueError(f"config field 'horizon_max' ({self.horizon_max}) must be 'horizon' ({self.horizon}) "
                             f"times a power of two (e.g. {self.horizon * 8}) for 'adaptive_horizon' (on by default "
                             f"for ant); change 'horizon_max', or set 'adaptive_horizon' to false for a fixed window.")
        if self.truncation is not None:
            raise ValueError(f"config field 'truncation' ({self.truncation}) must be None with 'adaptive_horizon' "
                             f"(the adaptive window is the truncation); {fix}.")
        if self.critic_windows != 1:
            raise ValueError(f"config field 'critic_windows' ({self.critic_windows}) must be 1 with "
                             f"'adaptive_horizon' (the windows differ in length); {fix}.")
        if self.horizon_split_envs and self.num_envs % ratio:
            raise ValueError(f"config field 'num_envs' ({self.num_envs}) must be divisible by horizon_max / horizon "
                             f"({ratio}) with 'horizon_split_envs' (the robots split into that many groups at the "
                             f"longest window); pick a multiple of {ratio}.")


def recommended_horizon(env: BraxEnv, config: ShacConfig, key: jax.Array, num_seeds: int = 8,
                        max_ratio: float = 100.0) -> dict[str, Any]:
    """``gradgym diagnose``'s recommended truncation for the initial policy of ``config`` on ``env``.

    The longest unroll of :data:`AUTO_HORIZONS` whose pathwise gradient variance
    across ``num_seeds`` rollout keys stays within ``max_ratio`` of the smallest
    at any shorter unroll (:func:`gradgym.diagnostics.horizon.recommend_truncation`).
    """
    from gradgym.diagnostics.horizon import gradient_stats_vs_horizon, recommend_truncation

    k_pol, k_grad = jax.random.split(key)
    policy_fn = policy_net(env.action_size, config.hidden, config.activation)[1]
    params = init_policy_params(env, config.hidden, config.activation, k_pol)
    stats = gradient_stats_vs_horizon(env, policy_fn, params, AUTO_HORIZONS, k_grad, num_seeds)
    return recommend_truncation(stats["horizons"], stats["variance"], max_ratio)


def resolve_for_env(config: ShacConfig, env: BraxEnv, seed: int) -> ShacConfig:
    """Replaces ``horizon="auto"`` by the recommended truncation (the trainer calls this before building)."""
    if config.horizon != AUTO:
        return config
    rec = recommended_horizon(env, config, jax.random.PRNGKey(seed))
    return dataclasses.replace(config, horizon=int(rec["horizon"]))


ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {
    # Measured on 100-step episodes, constant rates: 62.8 -> 100 in 15k env steps (pendulum), 546 -> 906 in
    # 30k (double). With the linear decay over a 20k budget the pendulum stalls at 84 (tests/agents/test_shac.py).
    "inverted_pendulum": {"num_envs": 16, "horizon": 16, "lr_schedule": "constant"},
    "inverted_double_pendulum": {"num_envs": 16, "horizon": 16, "lr_schedule": "constant"},
    # Spring contacts: at H=32 the gradient norm is 1e6-1e8 and nothing is learned; at H=4 it is ~3-13
    # (median) and halfcheetah runs. 256 envs (1,024 critic samples per window) with the linear decay:
    # 2,412 +- 539 at 2M steps over 5 seeds (1,620 to 2,850; PPO: 3,423 +- 573); docs/agents.md.
    # Measured and not adopted (docs/agents.md): gamma 0.95 (1,991 +- 322, 3 seeds), 64 envs (peaks at 300k,
    # collapses), critic_windows 8 (1,624 vs 1,743 at 600k), horizon 32 with truncation 4 (8x fewer updates),
    # horizon 8 (nothing at 600k), Adam's default betas (3-seed mean 1,537 at 800k of 2M, default 1,633).
    "halfcheetah": {"horizon": 4, "num_envs": 256},
    # Ant: at H=32 (also what --horizon auto picks) it stays at the survive bonus for 300k steps; the
    # halfcheetah setting walks: 3,801 +- 1,828 at 3M over seeds 0-4 (1,914 to 6,404; PPO: 7,350). The
    # adaptive window at a fixed cost per update (32 steps on 32 robots while the gradient stays under 10,
    # down to 4 steps on 256 as the robot speeds up): 6,455 +- 1,750 over seeds 0-5 (4,835 to 8,946), best
    # 7,916 on average, three seeds ending at 0.57-0.74 of their best; docs/experiments.md, 2026-12-06.
    # With AHAC's ensemble of 3 LayerNorm critics, bootstrapping from the members' mean: 7,774 +- 2,329
    # over the same seeds (5,563 to 11,794), every seed ending within 0.9x of its best; with their minimum
    # (AHAC's) 5,928 +- 1,108; docs/experiments.md, 2026-12-07.
    "ant": {"horizon": 4, "num_envs": 256, "adaptive_horizon": True, "horizon_split_envs": True,
            "critic_ensemble": 3, "critic_layernorm": True, "critic_reduce": "mean"},
}


def td_lambda_targets(rewards: jax.Array, next_values: jax.Array, ends: jax.Array, gamma: float,
                      lam: float) -> jax.Array:
    """TD(lambda) returns of a window, by a reverse ``lax.scan``.

    ``G_t = r_t + gamma * ((1 - lam) v_t + lam G_{t+1})`` inside a segment and
    ``G_t = r_t + gamma * v_t`` where the segment ends (episode end or the
    window's last step), with ``v_t`` the value of the state after step t
    (zero after a termination).

    Args:
        rewards, next_values, ends: ``[T, ...]``; ``ends[t]`` = 1 where step t
            is the last of its segment (the caller forces the last step to 1).

    Returns:
        ``[T, ...]`` targets.
    """

    def body(g_next, x):
        r, v, end = x
        g = r + gamma * jnp.where(end > 0, v, (1.0 - lam) * v + lam * g_next)
        return g, g

    _, g = jax.lax.scan(body, jnp.zeros_like(rewards[-1]), (rewards, next_values, ends), reverse=True)
    return g


@struct.dataclass
class Replay:
    """The critic's data of the newest ``critic_windows`` (K) windows, newest first: each leaf ``[K, H, N, ...]``.

    The field names are those of the dict this replaced, so checkpoints written
    before (flax stores a struct by its field names) still load.

    Attributes:
        obs, next_obs, reward, alive, done: as in :class:`gradgym.agents.losses.WindowStep`.
        count: windows stored so far, capped at K (int32); slots ``>= count`` hold copies of the first window.
    """

    obs: jax.Array
    next_obs: jax.Array
    reward: jax.Array
    alive: jax.Array
    done: jax.Array
    count: jax.Array


@struct.dataclass
class ShacState:
    """Training state (a pytree: checkpointed as a whole)."""

    actor: Any
    critic: Any
    target: Any
    actor_opt: Any
    critic_opt: Any
    stats: RunningStats
    env_state: State
    key: jax.Array
    skipped: jax.Array
    replay: Replay


@struct.dataclass
class AdaptiveShacState(ShacState):
    """:class:`ShacState` with the adaptive horizon's controller (``adaptive_horizon=True``)."""

    control: HorizonControl


def with_rate(opt_state: Any, rate: float | optax.Schedule, count: jax.Array) -> Any:
    """An ``optax.inject_hyperparams`` state with its learning rate set to ``rate`` at ``count`` (a schedule of
    :func:`gradgym.agents.base.scheduled_lr`, evaluated at a fractional count; or a constant), in its own dtype."""
    old = opt_state.hyperparams["learning_rate"]
    value = rate(count) if callable(rate) else rate
    return opt_state._replace(hyperparams={**opt_state.hyperparams,
                                           "learning_rate": jnp.asarray(value, old.dtype)})


class Shac:
    """SHAC on one env and config; :meth:`iterate` is one jitted window + actor and critic updates."""

    name = "shac"

    def __init__(self, env: BraxEnv, config: ShacConfig):
        if config.horizon == AUTO:
            raise ValueError("SHAC horizon 'auto' must be resolved first: use gradgym.agents.train, or "
                             "gradgym.agents.shac.resolve_for_env(config, env, seed).")
        if env.dtype != config.dtype:
            raise ValueError(f"SHAC config dtype {config.dtype!r} differs from the env's dtype {env.dtype!r}; "
                             "make the env with the same dtype.")
        self.env = env
        self.config = config
        self.adaptive = config.adaptive_horizon
        # the windows the agent can use (one, or the adaptive horizon's levels)
        self.horizons = horizon_levels(config.horizon, config.horizon_max) if self.adaptive else (config.horizon,)
        self.steps_per_iter = config.num_envs * self.horizons[-1]
        # robots per window at each level: all of them, or (horizon_split_envs) num_envs * horizon / h
        split = self.adaptive and config.horizon_split_envs
        self.robots = tuple(config.num_envs * self.horizons[0] // h if split else config.num_envs
                            for h in self.horizons)
        self._policy_fn = policy_net(env.action_size, config.hidden, config.activation)[1]
        self.value = MLP((*config.value_hidden, 1), config.activation, layer_norm=config.critic_layernorm)
        ensemble = config.critic_ensemble > 1
        # the critic's value: the one network, or the minimum (or mean) over the members of the ensemble
        reduce = min_over_members if config.critic_reduce == "min" else mean_over_members
        self.value_apply = functools.partial(reduce, self.value.apply) if ensemble else self.value.apply
        iters = num_iterations(config.total_steps, self.steps_per_iter)
        critic_updates = iters * config.critic_iterations * config.critic_minibatches
        sched = config.lr_schedule
        if self.adaptive:  # the updates per iteration vary: the rates follow the iterations (env steps) spent
            rated = lambda learning_rate: make_optimizer(learning_rate, config.max_grad_norm, config.betas)  # noqa: E731
            self.actor_opt = optax.inject_hyperparams(rated)(learning_rate=config.actor_lr)
            self.critic_opt = optax.inject_hyperparams(rated)(learning_rate=config.critic_lr)
            self.rates = (scheduled_lr(config.actor_lr, sched, iters), scheduled_lr(config.critic_lr, sched, iters))
        else:
            self.actor_opt = make_optimizer(scheduled_lr(config.actor_lr, sched, iters), config.max_grad_norm,
                                            config.betas)
            self.critic_opt = make_optimizer(scheduled_lr(config.critic_lr, sched, critic_updates),
                                             config.max_grad_norm, config.betas)
        # actor_loss(actor, target critic, stats, env_state, key) -> (loss, (final env state, WindowStep)),
        # one per window length (actor_losses[i] for horizons[i]); actor_loss is the first
        self.actor_losses = tuple(functools.partial(
            shac_actor_loss, env=env, policy_fn=self._policy_fn, value_apply=self.value_apply,
            num_envs=n, horizon=h, truncation=config.truncation or h,
            gamma=config.gamma, reward_scale=config.reward_scale, dtype=self._dtype)
            for h, n in zip(self.horizons, self.robots, strict=True))
        self.actor_loss = self.actor_losses[0]
        # critic_loss(critic, obs_n, target[, weight]) -> (weighted) mean squared error (an ensemble: members' mean)
        self.critic_loss = functools.partial(ensemble_critic_loss if ensemble else critic_loss,
                                             value_apply=self.value.apply)
        self.init = jax.jit(lambda key: strong_types(self._init(key)))
        self.iterate = jax.jit(lambda ts: strong_types(self._iterate(ts)))

    @property
    def _dtype(self):
        return float_dtype(self.config.dtype)

    def _init(self, key: jax.Array) -> ShacState:
        k_pol, k_val, k_env, k_run = jax.random.split(key, 4)
        cfg = self.config
        actor = init_policy_params(self.env, cfg.hidden, cfg.activation, k_pol)
        example = jnp.zeros((self.env.observation_size,), self._dtype)
        if cfg.critic_ensemble == 1:
            critic = self.value.init(k_val, example)
        else:  # every leaf [critic_ensemble, ...]
            critic = init_members(self.value.init, k_val, example, cfg.critic_ensemble)
        state_class = functools.partial(AdaptiveShacState, control=init_control(cfg.horizon, self._dtype)) \
            if self.adaptive else ShacState
        return state_class(
            actor=actor,
            critic=critic,
            target=critic,
            actor_opt=self.actor_opt.init(actor),
            critic_opt=self.critic_opt.init(critic),
            stats=init_stats(self.env.observation_size, self._dtype),
            env_state=jax.vmap(self.env.reset)(jax.random.split(k_env, cfg.num_envs)),
            key=k_run,
            skipped=jnp.zeros((), jnp.int32),
            replay=self._empty_replay(),
        )

    def _empty_replay(self) -> Replay:
        cfg = self.config
        lead = (cfg.critic_windows, cfg.horizon, cfg.num_envs)
        obs = jnp.zeros((*lead, self.env.observation_size), self._dtype)
        return Replay(obs=obs, next_obs=obs, reward=jnp.zeros(lead, self._dtype), alive=jnp.zeros(lead, self._dtype),
                      done=jnp.zeros(lead, self._dtype), count=jnp.zeros((), jnp.int32))

    def policy_params(self, ts: ShacState) -> tuple[Any, RunningStats]:
        return ts.actor, ts.stats

    def v(self, critic: Any, obs_n: jax.Array) -> jax.Array:
        return value_of(self.value_apply, critic, obs_n)

    def critic_targets(self, rewards: jax.Array, v_next: jax.Array, dones: jax.Array) -> jax.Array:
        ends = dones.at[-1].set(1.0)
        return td_lambda_targets(rewards, v_next, ends, self.config.gamma, self.config.lam)

    def _critic_update(self, carry, batch):
        critic, opt, skipped = carry
        loss, grads = jax.value_and_grad(self.critic_loss)(critic, *batch)
        critic, opt, skipped, _ = apply_finite_update(self.critic_opt, grads, opt, critic, skipped)
        return (critic, opt, skipped), loss

    def _replay_window(self, replay: Replay, window: WindowStep) -> Replay:
        """Pushes the newest window to the front; the first window fills every slot."""
        first = replay.count == 0

        def push(new, old):
            return jnp.where(first, jnp.broadcast_to(new, old.shape), jnp.concatenate([new[None], old[:-1]]))

        # the critic's fields in the order the dict-based replay computed them (same program, same floats)
        return Replay(obs=push(window.obs, replay.obs), next_obs=push(window.next_obs, replay.next_obs),
                      reward=push(window.reward, replay.reward), alive=push(window.alive, replay.alive),
                      done=push(window.done, replay.done),
                      count=jnp.minimum(replay.count + 1, self.config.critic_windows))

    def replay_targets(self, target: Any, stats: RunningStats, replay: Replay):
        """TD(lambda) targets and sample weights of the stored windows, each ``[K, H, N]`` (newest first).

        The windows of an env follow each other, so they are stitched oldest first into one
        ``K * H``-step trajectory and a target looks ahead to the newest step (episode ends still
        restart it). Slots the first window filled that no real window has replaced yet get weight 0.
        """
        chrono = lambda x: jnp.flip(x, 0).reshape(-1, *x.shape[2:])  # noqa: E731
        v_old = self.v(target, normalize(stats, chrono(replay.next_obs))) * chrono(replay.alive)
        g = self.critic_targets(chrono(replay.reward), v_old, chrono(replay.done))
        g = jnp.flip(g.reshape(replay.reward.shape), 0)
        real = jnp.arange(self.config.critic_windows) < replay.count
        return g, jnp.broadcast_to(real[:, None, None].astype(g.dtype), g.shape)

    def critic_epoch(self, data: tuple[jax.Array, ...], carry, key: jax.Array):
        """One pass over ``data`` (flat samples: normalised obs, targets[, weights]) in ``critic_minibatches``
        shuffled minibatches; ``carry = (critic, critic optimiser state, skipped)``; returns (carry, losses)."""
        m = data[0].shape[0]
        perm = jax.random.permutation(key, m).reshape(self.config.critic_minibatches, -1)
        return jax.lax.scan(self._critic_update, carry, jax.tree.map(lambda x: x[perm], data))

    def fit_critic(self, carry, data: tuple[jax.Array, ...], key: jax.Array):
        """``critic_iterations`` epochs (:meth:`critic_epoch`), or fewer with ``critic_early_stop``.

        Returns:
            ``(carry, epoch losses, metrics)``; the metrics hold ``critic_passes`` with early stopping.
        """
        cfg = self.config
        epoch = functools.partial(self.critic_epoch, data)
        keys = jax.random.split(key, cfg.critic_iterations)
        if cfg.critic_early_stop:
            carry, v_loss, passes = fit_until_plateau(epoch, carry, keys, cfg.critic_stop_tol)
            return carry, v_loss, {"critic_passes": passes}
        carry, v_loss = jax.lax.scan(epoch, carry, keys)
        return carry, v_loss, {}

    def _iterate(self, ts: ShacState) -> tuple[ShacState, dict[str, jax.Array]]:
        if self.adaptive:
            return self._adaptive_iterate(ts)
        return self._update(ts, 0)

    def _update(self, ts: ShacState, level: int, count: jax.Array | None = None):
        """One window of ``horizons[level]`` steps, then the actor's and the critic's updates.

        ``count`` (the adaptive horizon's): the iterations done, fractional inside one, at which both
        learning rates are taken (``self.rates``); the window is then the critic's only data (no replay).
        """
        cfg = self.config
        key, k_win, k_perm = jax.random.split(ts.key, 3)
        actor_opt, critic_opt = ts.actor_opt, ts.critic_opt
        if self.adaptive:
            actor_opt = with_rate(actor_opt, self.rates[0], count)
            critic_opt = with_rate(critic_opt, self.rates[1], count)
        grads, (env_state, window) = jax.grad(self.actor_losses[level], has_aux=True)(
            ts.actor, ts.target, ts.stats, ts.env_state, k_win)
        actor, actor_opt, skipped, grad_norm = apply_finite_update(self.actor_opt, grads, actor_opt, ts.actor,
                                                                   ts.skipped)
        if self.adaptive:
            replay, obs = ts.replay, window.obs[None]
        else:
            replay = self._replay_window(ts.replay, window)
            obs = replay.obs
        if cfg.critic_windows == 1:  # the paper's: the window's own targets (values from the actor pass)
            targets = self.critic_targets(window.reward, window.v_next, window.done)[None]
            extra = ()
        else:  # the stored windows as one trajectory, targets from the current target critic and statistics
            targets, weights = self.replay_targets(ts.target, ts.stats, replay)
            extra = (weights,)
        m = cfg.critic_windows * self.horizons[level] * self.robots[level]
        flat = (normalize(ts.stats, obs).reshape(m, -1), *(x.reshape(m) for x in (targets, *extra)))
        (critic, critic_opt, skipped), v_loss, extra_metrics = self.fit_critic((ts.critic, critic_opt, skipped),
                                                                               flat, k_perm)
        if cfg.target_network:
            a = cfg.target_alpha
            target = jax.tree.map(lambda t, c: a * t + (1.0 - a) * c, ts.target, critic)
        else:  # the next window bootstraps from, and the next targets come from, the critic itself
            target = critic
        stats = observe(cfg, ts.stats, window.obs)
        ts = ts.replace(actor=actor, critic=critic, target=target, actor_opt=actor_opt, critic_opt=critic_opt,
                        stats=stats, env_state=env_state, key=key, skipped=skipped, replay=replay)
        return ts, {"loss": -jnp.mean(window.reward), "grad_norm": grad_norm, "value_loss": jnp.mean(v_loss),
                    "skipped": skipped, **extra_metrics}

    def _adaptive_iterate(self, ts: AdaptiveShacState) -> tuple[AdaptiveShacState, dict[str, jax.Array]]:
        """``num_envs * horizon_max`` env steps as windows of the controller's current length, then its update.

        With ``horizon_split_envs`` the robots form ``h / horizon`` groups; the windows take the groups in
        turn (group ``u mod g`` for the ``u``-th window), ``horizon_max / horizon`` windows in all.

        Metrics: the means over the iteration's updates (``grad_norm``: the geometric mean), ``skipped``
        after the last, and the window ``horizon`` used.
        """
        cfg = self.config
        h_max = self.horizons[-1]

        def run_level(level: int):
            h = self.horizons[level]
            groups = cfg.num_envs // self.robots[level]
            k = h_max // h * groups  # windows (updates) in the iteration

            def one(ts, u):
                count = ts.control.iteration.astype(self._dtype) + u / k
                if groups == 1:
                    return self._update(ts, level, count)
                j = u.astype(jnp.int32) % groups
                grouped = jax.tree.map(lambda x: x.reshape(groups, -1, *x.shape[1:]), ts.env_state)
                ts_j, metrics = self._update(ts.replace(env_state=jax.tree.map(lambda x: x[j], grouped)), level,
                                             count)
                env_state = jax.tree.map(lambda x, new: x.at[j].set(new).reshape(-1, *x.shape[2:]), grouped,
                                         ts_j.env_state)
                return ts_j.replace(env_state=env_state), metrics

            def run(ts):
                ts, m = jax.lax.scan(one, ts, jnp.arange(k, dtype=self._dtype))
                out = {name: jnp.mean(v) for name, v in m.items() if name not in ("grad_norm", "skipped")}
                log_norm = mean_log_norm(m["grad_norm"], cfg.horizon_grad_limit)
                return ts, {**out, "grad_norm": jnp.exp(log_norm), "log_grad_norm": log_norm,
                            "skipped": m["skipped"][-1], "horizon": jnp.asarray(h, self._dtype)}

            return run

        level = level_of(ts.control.log2_horizon, cfg.horizon, len(self.horizons))
        ts, metrics = jax.lax.switch(level, [run_level(i) for i in range(len(self.horizons))], ts)
        x = next_log2_horizon(ts.control.log2_horizon, metrics.pop("log_grad_norm"), limit=cfg.horizon_grad_limit,
                              lr=cfg.horizon_lr, h_min=cfg.horizon, h_max=h_max)
        return ts.replace(control=HorizonControl(log2_horizon=x, iteration=ts.control.iteration + 1)), metrics
