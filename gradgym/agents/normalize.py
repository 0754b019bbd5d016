"""Running mean/std observation normalisation (pure, jit-safe).

Statistics are updated with Chan et al.'s parallel merge of (count, mean, M2),
and applied under ``stop_gradient``: gradients flow through the observation but
never into the statistics.

Why not ``brax.training.acme.running_statistics``: it imports and runs on this
JAX unshimmed, but it is not bit-identical, so swapping it in would change every
trained policy. Measured with brax 0.14.2 (float32, 20 batches of 64
normal observations of 11 dims): its mean and std differ from ours by
up to 2.4e-7 (3 and 7 of 11 entries), normalised observations by up to 4.8e-7
(293 of 704). Its update is Welford's (``mean += sum(x - mean) / count``, then a
summed variance) where ours merges batch moments; its std is
``sqrt(var + std_eps)`` clipped to [1e-6, 1e6] where ours is ``sqrt(var + 1e-8)``
with ``var = 1`` until two observations are seen; it counts in a UInt64 pair
(converted to float32 for the division); and its ``normalize`` clips only when
given ``max_abs_value`` (ours always clips to +-10).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

CLIP = 10.0
EPS = 1e-8


@struct.dataclass
class RunningStats:
    """Running statistics of observations.

    Attributes:
        count: number of observations seen (float, to merge batches exactly).
        mean: running mean, shape ``(obs_size,)``.
        m2: running sum of squared deviations, shape ``(obs_size,)``.
    """

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @property
    def std(self) -> jax.Array:
        var = jnp.where(self.count > 1, self.m2 / jnp.maximum(self.count, 1.0), 1.0)
        return jnp.sqrt(var + EPS)


def init_stats(size: int, dtype=jnp.float32) -> RunningStats:
    """Empty statistics (normalisation is the identity until data arrives)."""
    return RunningStats(count=jnp.zeros((), dtype), mean=jnp.zeros((size,), dtype), m2=jnp.zeros((size,), dtype))


def update_stats(stats: RunningStats, obs: jax.Array, mask: jax.Array | None = None) -> RunningStats:
    """Merges a batch ``obs[..., size]`` (rows with ``mask == 0`` ignored)."""
    obs = jax.lax.stop_gradient(obs).reshape(-1, stats.mean.shape[0]).astype(stats.mean.dtype)
    w = jnp.ones(obs.shape[0], obs.dtype) if mask is None else mask.reshape(-1).astype(obs.dtype)
    n_b = jnp.sum(w)
    mean_b = jnp.sum(obs * w[:, None], 0) / jnp.maximum(n_b, 1.0)
    m2_b = jnp.sum(w[:, None] * (obs - mean_b) ** 2, 0)
    n = stats.count + n_b
    delta = mean_b - stats.mean
    safe_n = jnp.maximum(n, 1.0)
    mean = stats.mean + delta * n_b / safe_n
    m2 = stats.m2 + m2_b + delta**2 * stats.count * n_b / safe_n
    return RunningStats(count=n, mean=mean, m2=m2)


def normalize(stats: RunningStats, obs: jax.Array) -> jax.Array:
    """(obs - mean) / std, clipped to +-10; the statistics are constants for autodiff."""
    stats = jax.lax.stop_gradient(stats)
    return jnp.clip((obs - stats.mean) / stats.std, -CLIP, CLIP)
