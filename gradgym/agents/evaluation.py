"""Evaluating a trained policy: per-episode returns and lengths, mean with a 95% interval.

:func:`make_episode_evaluator` is the trainer's evaluator
(:func:`gradgym.agents.base.make_evaluator`) that also reports when each
episode ended: the return is computed by the same rollout, so it is the
same number bit for bit. :func:`evaluate_policy` scores a policy loaded from
a checkpoint (:mod:`gradgym.agents.policy_io`); by default on the run's own
evaluation episodes, so its mean is the training run's last evaluation return.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents.base import eval_keys, policy_net
from gradgym.agents.normalize import normalize
from gradgym.checks import is_int
from gradgym.envs.core import BraxEnv
from gradgym.envs.functional import rollout

if TYPE_CHECKING:
    from gradgym.agents.policy_io import LoadedPolicy


@functools.lru_cache(maxsize=64)
def make_episode_evaluator(env: BraxEnv, hidden: tuple[int, ...], activation: str, horizon: int,
                           sample: bool = False) -> Callable:
    """Jitted ``evaluate(policy_params, stats, keys) -> (returns[episodes], lengths[episodes])``.

    The deterministic policy, as in :func:`gradgym.agents.base.make_evaluator`
    (same rollout, same return). ``lengths[i]`` is the number of steps episode
    ``i`` lasted: up to and including the step that terminated or truncated it,
    or ``horizon`` if it ran on (the rollout's ``alive`` mask summed).
    ``sample=True`` acts with the policy's sampled (tanh-Gaussian) action
    instead of its mean, the noise of step ``t`` drawn from that step's key of
    :func:`gradgym.envs.rollout` (so it is fixed by the episode key).
    """
    _, policy_fn = policy_net(env.action_size, tuple(hidden), activation)

    def act(p, obs, key):
        params, stats = p
        return policy_fn(params, normalize(stats, obs), key if sample else None)

    def one(params, stats, key):
        ret, traj = rollout(env, act, (params, stats), key, horizon)
        return ret, jnp.sum(traj.alive.astype(jnp.int32))

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0)))


def mean_ci95(values: Any) -> tuple[float, float]:
    """``(mean, half-width)`` of the 95% Student-t interval of the mean (half-width ``nan`` for one value)."""
    from scipy import stats

    x = np.asarray(values, np.float64)
    mean = float(np.mean(x))
    if x.size < 2:
        return mean, math.nan
    return mean, float(stats.t.ppf(0.975, x.size - 1) * np.std(x, ddof=1) / math.sqrt(x.size))


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Scores of a policy on ``episodes`` fixed episodes.

    Attributes:
        returns: per-episode returns (float64 copies of what the rollout summed).
        lengths: per-episode lengths in env steps.
        seed: the seed the episode keys came from (:func:`gradgym.agents.base.eval_keys`).
        horizon: the step limit of each episode.
        sample: whether the policy acted with sampled actions (``False``: its deterministic action).
        return_mean: mean return, computed as the trainer scores an evaluation point.
        return_ci95: half-width of the 95% interval of the mean return (``nan`` for one episode).
        length_mean: mean episode length.
        training_return: the run's last evaluation return from the checkpoint's curve when
            these are the run's own evaluation episodes (same seed and count), else ``None``.
    """

    returns: np.ndarray
    lengths: np.ndarray
    seed: int
    horizon: int
    sample: bool
    return_mean: float
    return_ci95: float
    length_mean: float
    training_return: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (a ``nan`` interval becomes ``None``)."""
        d = dataclasses.asdict(self)
        d["returns"], d["lengths"] = [float(r) for r in self.returns], [int(n) for n in self.lengths]
        d["return_ci95"] = None if math.isnan(self.return_ci95) else self.return_ci95
        return d


def check_episodes(episodes: Any) -> int:
    """``episodes`` as an int >= 1, else ``ValueError`` naming the value."""
    if not is_int(episodes, numpy_ok=True):
        raise ValueError(f"episodes must be a positive int, got {episodes!r}; pass 1 or more (e.g. --episodes 8).")
    return int(episodes)


def evaluate_policy(policy: LoadedPolicy, episodes: int | None = None, seed: int | None = None,
                    sample: bool = False) -> EvalResult:
    """Runs ``policy``'s deterministic action (or, with ``sample``, its sampled one) on ``episodes`` fixed episodes.

    Args:
        policy: from :func:`gradgym.agents.policy_io.load_policy`.
        episodes: number of episodes; ``None`` = the run's ``eval_episodes``.
        seed: seed of the episode keys; ``None`` = the run's seed. With both left
            at ``None`` these are the training run's own evaluation episodes, so
            ``return_mean`` equals the last point of its learning curve.
        sample: act with actions sampled from the policy's distribution, as in
            training, instead of its mean action (the trainer scores the mean).
            The noise comes from the episode keys, so a rerun gives the same returns;
            the gap to the deterministic score says how much the run's learning
            curve owes to the choice of the mean action.

    Raises:
        ValueError: ``episodes`` is not a positive int, ``seed`` not an int >= 0, or
            ``sample`` not a bool.
    """
    if not isinstance(sample, bool):
        raise ValueError(f"sample must be True or False, got {sample!r}.")
    episodes = policy.config.eval_episodes if episodes is None else check_episodes(episodes)
    if seed is None:
        seed = policy.seed
    elif not is_int(seed, 0, numpy_ok=True):
        raise ValueError(f"seed must be an int >= 0, got {seed!r}.")
    returns, lengths = policy.episodes(eval_keys(int(seed), episodes), sample=sample)
    returns = np.asarray(returns, np.float64)
    mean, ci = mean_ci95(returns)
    own = seed == policy.seed and episodes == policy.config.eval_episodes and not sample
    curve = policy.header.get("curve", {}).get("returns") or [None]
    return EvalResult(returns=returns, lengths=np.asarray(lengths, np.int64), seed=int(seed), horizon=policy.horizon, sample=sample,
                      return_mean=mean, return_ci95=ci, length_mean=float(np.mean(lengths)),
                      training_return=curve[-1] if own else None)
