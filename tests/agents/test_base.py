"""The gradient agents' shared update: a non-finite gradient is skipped and counted, a finite one is Adam's step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradgym.agents.base import apply_finite_update, make_optimizer


def test_apply_finite_update_skips_non_finite_gradients():
    opt = make_optimizer(0.1, 1.0)
    params = {"w": jnp.arange(3.0), "b": jnp.ones(())}
    state = opt.init(params)
    grads = {"w": jnp.array([3.0, 0.0, 4.0]), "b": jnp.zeros(())}

    p1, s1, skipped, norm = apply_finite_update(opt, grads, state, params, jnp.zeros((), jnp.int32))
    updates, s_ref = opt.update(grads, state, params)
    ref = optax.apply_updates(params, updates)
    assert int(skipped) == 0 and float(norm) == 5.0  # the norm before clipping
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((ref, s_ref)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    for bad in (jnp.nan, jnp.inf):
        p2, s2, skipped2, norm2 = apply_finite_update(opt, {**grads, "b": jnp.asarray(bad)}, s1, p1, skipped)
        assert int(skipped2) == 1 and not np.isfinite(float(norm2))
        for a, b in zip(jax.tree.leaves((p2, s2)), jax.tree.leaves((p1, s1)), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # parameters and Adam state unchanged
