"""Pieces every agent shares: the policy network, the gradient agents' setup and update, evaluation, the numpy policy.

The gradient agents (apg, ppo, shac) build their training state with
:func:`init_train_state` (policy [+ other nets], optimiser state, observation
statistics, a batch of env states, the run key) and step their parameters with
:func:`apply_finite_update`, which skips a non-finite gradient (parameters and
optimiser state unchanged) and counts it.

Evaluation runs the deterministic (mean) policy of a tanh-Gaussian network on
``eval_episodes`` episodes whose start states come from fixed keys, so every
point of a learning curve, and every agent, is scored on the same episodes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gradgym.agents.normalize import RunningStats, init_stats, normalize, update_stats
from gradgym.envs.core import BraxEnv, State
from gradgym.envs.functional import rollout
from gradgym.jax_utils import float_dtype
from gradgym.nets import make_policy

EVAL_KEY_TAG = 0xE7A1


@functools.lru_cache(maxsize=64)
def policy_net(action_size: int, hidden: tuple[int, ...], activation: str):
    """Cached ``(module, policy_fn)`` so compiled functions are shared across runs."""
    return make_policy(action_size, hidden, activation)


def init_policy_params(env: BraxEnv, hidden: tuple[int, ...], activation: str, key: jax.Array) -> Any:
    module, _ = policy_net(env.action_size, hidden, activation)
    return module.init(key, jnp.zeros((env.observation_size,), float_dtype(env.dtype)))


def make_optimizer(learning_rate: float | optax.Schedule, max_grad_norm: float,
                   betas: tuple[float, float] = (0.9, 0.999)):
    """Global-norm clipping at ``max_grad_norm``, then Adam (``betas`` = (b1, b2)); the rate may be a schedule."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, b1=betas[0], b2=betas[1]))


def num_iterations(total_steps: int, steps_per_iter: int) -> int:
    """Iterations of ``steps_per_iter`` env steps a run of ``total_steps`` makes (the last one may overshoot).

    The trainer runs this many; a learning-rate schedule spans them.
    """
    return max(1, -(-total_steps // steps_per_iter))


#: A linear schedule ends at this fraction of its start (SHAC's paper: 2e-3 -> 1e-5).
LINEAR_END = 1e-5 / 2e-3


def scheduled_lr(lr: float, schedule: str, updates: int) -> float | optax.Schedule:
    """``lr`` (``schedule="constant"``) or its linear decay to ``LINEAR_END * lr`` over ``updates`` optimiser steps."""
    if schedule == "constant":
        return lr
    return optax.linear_schedule(lr, lr * LINEAR_END, max(1, updates))


@struct.dataclass
class GradientState:
    """Training state of a gradient agent (apg, ppo): a pytree, checkpointed as a whole.

    Attributes:
        params: network parameters (apg: the policy; ppo: ``{"policy", "value"}``).
        opt_state: optimiser state of ``params``.
        stats: running observation statistics.
        env_state: the batch of ``num_envs`` robots, carried across iterations.
        key: the run's PRNG key.
        skipped: number of non-finite updates skipped so far (int32).
    """

    params: Any
    opt_state: Any
    stats: RunningStats
    env_state: State
    key: jax.Array
    skipped: jax.Array


def stats_dtype(cfg: Any):
    """The observation statistics' dtype: float64 when ``cfg.dtype`` says so, else float32."""
    return float_dtype(getattr(cfg, "dtype", "float32"))


def init_train_state(env: BraxEnv, cfg: Any, optimizer: Any, key: jax.Array,
                     init_extra: Callable[[jax.Array], dict[str, Any]] | None = None) -> GradientState:
    """Initial :class:`GradientState` of a gradient agent with ``cfg.hidden``/``activation``/``num_envs``.

    ``key`` splits into (policy, env, run) keys, or into (policy, extra, env,
    run) when ``init_extra`` is given; then ``params = {"policy": ...,
    **init_extra(extra_key)}`` (e.g. a value network). Statistics start empty
    and every robot of the batch from its own reset key.
    """
    if init_extra is None:
        k_pol, k_env, k_run = jax.random.split(key, 3)
        params = init_policy_params(env, cfg.hidden, cfg.activation, k_pol)
    else:
        k_pol, k_extra, k_env, k_run = jax.random.split(key, 4)
        params = {"policy": init_policy_params(env, cfg.hidden, cfg.activation, k_pol), **init_extra(k_extra)}
    return GradientState(
        params=params,
        opt_state=optimizer.init(params),
        stats=init_stats(env.observation_size, stats_dtype(cfg)),
        env_state=jax.vmap(env.reset)(jax.random.split(k_env, cfg.num_envs)),
        key=k_run,
        skipped=jnp.zeros((), jnp.int32),
    )


def apply_finite_update(optimizer: Any, grads: Any, opt_state: Any, params: Any, skipped: jax.Array):
    """One optimiser step that is skipped (and counted) when the gradient is not finite.

    The global norm is taken before clipping. A non-finite gradient is zeroed
    before it reaches the optimiser (so no NaN flows into its state) and the
    old parameters and optimiser state are kept.

    Why not ``optax.apply_if_finite``: on a run with a NaN gradient it gives the
    same parameters (measured with optax 0.2.8: 5 Adam steps, the third NaN, bit-identical), but
    it wraps the optimiser state (6 leaves instead of 3 for one Adam), so the
    checkpoints written so far would no longer load; it tests each leaf for
    NaN/inf where we test the global norm, so a finite gradient whose norm
    overflows (entries of 1e19 in float32) is applied by optax and skipped here;
    after ``max_consecutive_errors`` it applies non-finite updates anyway; and
    it counts per optimiser where SHAC's actor and critic share one count.

    Returns:
        ``(params, opt_state, skipped, grad_norm)``.
    """
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(grad_norm)
    safe = jax.tree.map(lambda g: jnp.where(finite, g, 0.0), grads)
    updates, new_opt = optimizer.update(safe, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)  # noqa: E731
    return keep(new_params, params), keep(new_opt, opt_state), skipped + (~finite).astype(jnp.int32), grad_norm


def observe(cfg: Any, stats: RunningStats, obs: jax.Array, mask: jax.Array | None = None) -> RunningStats:
    """Merges ``obs`` into the running statistics when ``cfg.obs_norm`` is on (unchanged otherwise)."""
    return update_stats(stats, obs, mask) if cfg.obs_norm else stats


def eval_horizon(env: BraxEnv, horizon: int | None) -> int:
    if horizon is not None:
        return horizon
    return env.episode_length or 1000


def eval_keys(seed: int, episodes: int) -> jax.Array:
    """The fixed evaluation keys of a run (same for every evaluation point)."""
    return jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_KEY_TAG), episodes)


@functools.lru_cache(maxsize=64)
def make_evaluator(env: BraxEnv, hidden: tuple[int, ...], activation: str, horizon: int) -> Callable:
    """Jitted ``evaluate(policy_params, stats, keys) -> returns[episodes]`` (deterministic policy)."""
    _, policy_fn = policy_net(env.action_size, hidden, activation)

    def act(p, obs, _key):
        params, stats = p
        return policy_fn(params, normalize(stats, obs), None)

    def one(params, stats, key):
        ret, _ = rollout(env, act, (params, stats), key, horizon)
        return ret

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0)))


class JaxAgent(Protocol):
    """What the training loop needs from a JAX agent (apg, ppo, es)."""

    name: str
    steps_per_iter: int

    def init(self, key: jax.Array) -> Any: ...

    def iterate(self, ts: Any) -> tuple[Any, dict[str, jax.Array]]: ...

    def policy_params(self, ts: Any) -> tuple[Any, RunningStats]: ...


class NumpyPolicy:
    """A trained policy as ``policy(obs) -> action`` on numpy arrays.

    Works on one observation ``(obs_size,)`` or a batch ``(n, obs_size)``;
    returns float32 actions inside the Gymnasium env's action space: the
    deterministic mean action the core saw in training, clipped to the
    actuator control range (Brax clips there too, so clipping changes nothing).
    """

    def __init__(self, env: BraxEnv, hidden: tuple[int, ...], activation: str, params: Any, stats: RunningStats):
        _, policy_fn = policy_net(env.action_size, tuple(hidden), activation)
        self.params = params
        self.stats = stats
        self.observation_size = env.observation_size
        self.action_size = env.action_size
        self.low, self.high = env.action_bounds
        self._fn = jax.jit(lambda p, s, o: policy_fn(p, normalize(s, o), None))

    def __call__(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs)
        if obs.shape[-1:] != (self.observation_size,) or obs.ndim > 2:
            raise ValueError(
                f"policy expects observations of shape ({self.observation_size},) or (n, {self.observation_size}), "
                f"got {obs.shape}; pass the observation of the env the policy was trained on."
            )
        dtype = self.stats.mean.dtype
        action = self._fn(self.params, self.stats, jnp.asarray(obs, dtype))
        return np.clip(np.array(action, dtype=np.float32), self.low, self.high)
