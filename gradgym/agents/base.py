"""Pieces every agent shares: the policy network, evaluation, and the numpy policy.

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

from gradgym.agents.normalize import RunningStats, normalize
from gradgym.envs.core import BraxEnv
from gradgym.envs.functional import rollout
from gradgym.nets import make_policy

EVAL_KEY_TAG = 0xE7A1


@functools.lru_cache(maxsize=64)
def policy_net(action_size: int, hidden: tuple[int, ...], activation: str):
    """Cached ``(module, policy_fn)`` so compiled functions are shared across runs."""
    return make_policy(action_size, hidden, activation)


def init_policy_params(env: BraxEnv, hidden: tuple[int, ...], activation: str, key: jax.Array) -> Any:
    module, _ = policy_net(env.action_size, hidden, activation)
    dtype = jnp.float64 if env.dtype == "float64" else jnp.float32
    return module.init(key, jnp.zeros((env.observation_size,), dtype))


def strong_types(tree: Any) -> Any:
    """Drops JAX weak types, so a jitted step's output state has its input's types (no retrace)."""
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, jnp.asarray(x).dtype), tree)


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
