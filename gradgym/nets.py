"""Policy and value networks shared by the agents and the diagnostics (flax.linen).

The default policy follows the 2021 Brax APG/PPO networks used by Metz et al.:
an MLP (4 x 32, swish) producing the mean and scale of a Gaussian whose sample
is squashed by ``tanh`` ("NormalTanh"). Sampling is reparameterised: the noise
comes from the key passed in, so holding the key fixed makes the action a
deterministic, differentiable function of the parameters.

Why not ``brax.training.distribution.NormalTanhDistribution``: it imports and
runs on this JAX unshimmed and uses the same convention (std = softplus(raw) +
1e-3), and its sample (pre-tanh, float32 and float64) and mode equal ours bit
for bit; but PPO also needs the log-density and the entropy, and those are not
bit-identical. Measured with brax 0.14.2 on 4,096 random (mean, raw) pairs of 6 actions: its
``log_prob`` computes ``(x / scale - loc / scale)**2`` where ours computes
``((u - mean) / std)**2``, and differs by up to 5.3e-5 in float32 (2,631 of
4,096) and 9.1e-14 in float64; its ``entropy`` takes a key and adds the log-det
Jacobian of tanh at a sample (ours is the pre-tanh Gaussian's, as before), and
even its Gaussian part sums in another order (up to 9.5e-7 apart in float32).
Swapping it in would change every PPO curve, so we keep these few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "swish": nn.swish,
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; available: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Plain MLP; the last layer is linear.

    ``layer_norm=True`` puts flax's ``LayerNorm`` between each hidden layer and
    its activation (the critics of AHAC and SAPO); the default adds nothing, so
    the parameters of existing networks keep their names.
    """

    features: Sequence[int]
    activation: str = "swish"
    final_scale: float = 1.0
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        for i, f in enumerate(self.features):
            last = i == len(self.features) - 1
            init = nn.initializers.variance_scaling(self.final_scale if last else 1.0, "fan_in", "uniform")
            x = nn.Dense(f, kernel_init=init, dtype=x.dtype, param_dtype=x.dtype)(x)
            if not last:
                if self.layer_norm:
                    x = nn.LayerNorm(dtype=x.dtype, param_dtype=x.dtype)(x)
                x = act(x)
        return x


class GaussianPolicy(nn.Module):
    """MLP -> (mean, pre-softplus scale) of a diagonal Gaussian over actions."""

    action_size: int
    hidden: Sequence[int] = (32, 32, 32, 32)
    activation: str = "swish"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP((*self.hidden, 2 * self.action_size), self.activation, final_scale=0.01)(obs)
        mean, raw_scale = jnp.split(out, 2, axis=-1)
        return mean, raw_scale


MIN_STD = 1e-3


def gaussian_std(raw_scale: jax.Array) -> jax.Array:
    """std = softplus(raw) + MIN_STD (Brax's NormalTanh convention)."""
    return jax.nn.softplus(raw_scale) + MIN_STD


def gaussian_params(mean: jax.Array, raw_scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, std) of the pre-tanh Gaussian (:func:`gaussian_std`)."""
    return mean, gaussian_std(raw_scale)


def sample_tanh_gaussian(mean: jax.Array, raw_scale: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample; returns (action in (-1, 1), pre-tanh sample)."""
    mean, std = gaussian_params(mean, raw_scale)
    u = mean + std * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), u


def tanh_gaussian_log_prob(mean: jax.Array, raw_scale: jax.Array, u: jax.Array) -> jax.Array:
    """log-density of ``tanh(u)`` where ``u ~ N(mean, std)``; summed over actions."""
    mean, std = gaussian_params(mean, raw_scale)
    logp = -0.5 * ((u - mean) / std) ** 2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)
    # log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), numerically stable.
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.sum(logp - log_det, axis=-1)


def gaussian_entropy(raw_scale: jax.Array) -> jax.Array:
    """Entropy of the pre-tanh Gaussian (summed over actions)."""
    std = gaussian_std(raw_scale)
    return jnp.sum(0.5 + 0.5 * jnp.log(2 * jnp.pi) + jnp.log(std), axis=-1)


def scale_action(action: jax.Array, low: Any, high: Any) -> jax.Array:
    """Maps an action in [-1, 1] to the env's box [low, high]."""
    low = jnp.asarray(low, action.dtype)
    high = jnp.asarray(high, action.dtype)
    return low + 0.5 * (action + 1.0) * (high - low)


def make_policy(action_size: int, hidden: Sequence[int] = (32, 32, 32, 32), activation: str = "swish"):
    """Returns ``(module, policy_fn)`` where ``policy_fn(params, obs, key)`` samples
    a reparameterised tanh-Gaussian action in [-1, 1] (``key=None``: the mean)."""
    module = GaussianPolicy(action_size, tuple(hidden), activation)

    def policy_fn(params, obs, key=None):
        mean, raw = module.apply(params, obs)
        if key is None:
            return jnp.tanh(mean)
        return sample_tanh_gaussian(mean, raw, key)[0]

    return module, policy_fn
