"""SHAC's adaptive horizon: a window that grows while its gradient stays bounded (AHAC's idea).

AHAC (Georgiev et al., ICML 2024) lengthens SHAC's window as far as a
constraint on the stiffness of the dynamics allows, by a dual update of the
horizon. Brax's spring contacts give the same signal in the gradient itself:
on halfcheetah the median norm of the window's gradient is ~2-3 at 4 steps,
~10 at 8, ~200-500 at 16 and ~1e5-1e6 at 32 (``docs/experiments.md``), and
it can be read on every backend at no cost. So the constraint here is

    mean over an iteration of  log ||grad||  <=  log C        (C = ``horizon_grad_limit``)

and the horizon follows it by projected dual ascent in log2 units:

    x <- clip(x + lr * clip(log C - mean log ||grad||, -4, 4), log2 h_min, log2 h_max)

(a non-finite norm counts as ``C * 1e6``, so a skipped update shrinks the
window). The window used is ``h_min * 2**round(x - log2 h_min)``, one of the
powers-of-two multiples of ``h_min`` up to ``h_max``.

One compiled program serves every horizon: an iteration always spends
``num_envs * h_max`` env steps, as ``h_max / h`` windows of ``h`` steps each
(one actor and critic update per window), picked by ``lax.switch`` over the
levels, so the trainer's budget, evaluation schedule and checkpoints are
those of a fixed horizon. A masked ``stop_gradient`` inside a fixed
``h_max``-step window would instead make one update per ``h_max`` steps
whatever the horizon (measured: 8x fewer updates at 4 of 32, and no
learning; ``docs/experiments.md``, 2026-11-27).

With SHAC's ``horizon_split_envs`` a longer window also runs on fewer robots
(``num_envs * h_min / h``, the robots taking turns in groups), so an
iteration always makes ``h_max / h_min`` updates of ``num_envs * h_min`` env
steps each, and every robot still advances ``h_max`` steps.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

#: A non-finite gradient norm counts as this many times the limit.
NONFINITE_FACTOR = 1e6
#: Largest step of the log-ratio (natural log) in one update of the horizon.
MAX_LOG_RATIO = 4.0


def horizon_levels(h_min: int, h_max: int) -> tuple[int, ...]:
    """The windows an adaptive horizon may take: ``h_min, 2 h_min, 4 h_min, ..., h_max``."""
    levels = [h_min]
    while levels[-1] < h_max:
        levels.append(levels[-1] * 2)
    return tuple(levels)


@struct.dataclass
class HorizonControl:
    """The adaptive horizon's state (a pytree, checkpointed with the agent's).

    Attributes:
        log2_horizon: the controller's horizon, a float in ``[log2 h_min, log2 h_max]``.
        iteration: iterations done (int32); the learning rates decay with it.
    """

    log2_horizon: jax.Array
    iteration: jax.Array


def init_control(h_min: int, dtype) -> HorizonControl:
    """Starts at the shortest window (AHAC's start)."""
    return HorizonControl(log2_horizon=jnp.asarray(math.log2(h_min), dtype), iteration=jnp.zeros((), jnp.int32))


def level_of(log2_horizon: jax.Array, h_min: int, num_levels: int) -> jax.Array:
    """Index into :func:`horizon_levels` of the window the controller's horizon rounds to (int32)."""
    idx = jnp.floor(log2_horizon - math.log2(h_min) + 0.5).astype(jnp.int32)
    return jnp.clip(idx, 0, num_levels - 1)


def mean_log_norm(grad_norms: jax.Array, limit: float) -> jax.Array:
    """``mean(log ||grad||)`` over one iteration's updates; a non-finite norm counts as ``limit * NONFINITE_FACTOR``."""
    safe = jnp.where(jnp.isfinite(grad_norms), grad_norms, limit * NONFINITE_FACTOR)
    return jnp.mean(jnp.log(jnp.maximum(safe, 1e-30)))


def next_log2_horizon(log2_horizon: jax.Array, mean_log_grad_norm: jax.Array, *, limit: float, lr: float,
                      h_min: int, h_max: int) -> jax.Array:
    """One dual-ascent step of the horizon (module docstring): longer while ``||grad|| < limit``, shorter above."""
    ratio = jnp.clip(math.log(limit) - mean_log_grad_norm, -MAX_LOG_RATIO, MAX_LOG_RATIO)
    x = log2_horizon + lr * ratio.astype(log2_horizon.dtype)
    return jnp.clip(x, math.log2(h_min), math.log2(h_max))

