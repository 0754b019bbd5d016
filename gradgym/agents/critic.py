"""SHAC's critic options from AHAC (Georgiev et al., ICML 2024) and SAPO (Xing et al., ICLR 2025), as pure functions.

- An ensemble of ``E`` value networks stored as one parameter pytree whose
  leaves have a leading axis ``E`` (``jax.vmap`` of ``init`` over ``E`` keys);
  its value is the minimum over the members (:func:`min_over_members`, AHAC's
  pessimistic bootstrap) or their mean (:func:`mean_over_members`, no
  pessimism), and each member regresses on the same targets
  (:func:`gradgym.agents.losses.ensemble_critic_loss`).
- Fitting "until the loss stops falling" (:func:`fit_until_plateau`): the
  regression passes of one iteration end after the first pass whose mean
  minibatch loss improves on the previous pass's by less than a relative
  tolerance, or after the maximum number of passes; one ``lax.while_loop``,
  so the fused training loop stays one compiled program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def init_members(init: Callable, key: jax.Array, example: jax.Array, members: int) -> Any:
    """Parameters of ``members`` networks, each from its own key, stacked on a leading axis."""
    return jax.vmap(init, in_axes=(0, None))(jax.random.split(key, members), example)


def min_over_members(value_apply: Callable, params: Any, obs_n: jax.Array) -> jax.Array:
    """``value_apply`` of every member of a stacked ensemble on ``obs_n``, reduced by the minimum over members."""
    return jnp.min(jax.vmap(value_apply, in_axes=(0, None))(params, obs_n), axis=0)


def mean_over_members(value_apply: Callable, params: Any, obs_n: jax.Array) -> jax.Array:
    """``value_apply`` of every member of a stacked ensemble on ``obs_n``, averaged over members."""
    return jnp.mean(jax.vmap(value_apply, in_axes=(0, None))(params, obs_n), axis=0)


def fit_until_plateau(epoch: Callable, carry: Any, keys: jax.Array, tol: float) -> tuple[Any, jax.Array, jax.Array]:
    """Runs ``epoch(carry, keys[j]) -> (carry, minibatch losses)`` for ``j = 0, 1, ...`` until the loss plateaus.

    With ``L_j`` the mean minibatch loss of pass ``j`` (each taken before its
    minibatch's update), the passes stop after the first ``j >= 1`` with
    ``L_{j-1} - L_j < tol * |L_{j-1}|``, or after ``len(keys)`` passes. A
    non-finite loss never counts as a plateau.

    Returns:
        ``(carry, mean of L_j over the passes run, passes run)`` (int32).
    """
    max_passes = keys.shape[0]
    loss_dtype = jax.eval_shape(epoch, carry, keys[0])[1].dtype

    def cond(s):
        j, _, _, _, stop = s
        return (j < max_passes) & ~stop

    def body(s):
        j, carry, prev, total, _ = s
        carry, losses = epoch(carry, keys[j])
        loss = jnp.mean(losses)
        stop = (j > 0) & (prev - loss < tol * jnp.abs(prev))
        return j + 1, carry, loss, total + loss, stop

    init = (jnp.zeros((), jnp.int32), carry, jnp.array(jnp.inf, loss_dtype), jnp.zeros((), loss_dtype),
            jnp.array(False))
    passes, carry, _, total, _ = jax.lax.while_loop(cond, body, init)
    return carry, total / passes.astype(loss_dtype), passes
