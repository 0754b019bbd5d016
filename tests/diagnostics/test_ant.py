"""Diagnostics on Brax Ant (float64) at short horizons. Shapes match the scripts' quick modes so the
compiled gradient function is shared across this module, the CLI test and the script tests."""

import jax
import numpy as np
import pytest

import gradgym
from gradgym.diagnostics import (
    closed_loop_jacobians,
    default_policy,
    fit_growth_rate,
    gradient_stats_vs_horizon,
    init_policy,
)

HORIZONS = [1, 2, 4, 8]
SEEDS = 8


@pytest.fixture(scope="module")
def ant():
    with jax.enable_x64(True):
        env = gradgym.make("ant", dtype="float64")
        _, policy_fn = default_policy(env.action_size)
        params = init_policy(env, jax.random.PRNGKey(0))
        yield env, policy_fn, params


def test_variance_grows_faster_for_random_init_than_scaled_init(ant):
    env, policy_fn, params = ant
    with jax.enable_x64(True):
        small = jax.tree.map(lambda p: 0.01 * p, params)
        big = gradient_stats_vs_horizon(env, policy_fn, params, HORIZONS, jax.random.PRNGKey(1), SEEDS)
        sml = gradient_stats_vs_horizon(env, policy_fn, small, HORIZONS, jax.random.PRNGKey(1), SEEDS)
    rate_big = fit_growth_rate(big["horizons"], big["variance"])["rate"]
    rate_small = fit_growth_rate(sml["horizons"], sml["variance"])["rate"]
    assert rate_big > 0.1, big  # clear exponential growth per step for the random init
    assert rate_big > 1.5 * rate_small, (rate_big, rate_small)
    assert big["variance"][-1] / big["variance"][0] > 2 * sml["variance"][-1] / sml["variance"][0]
    assert all(n == 0 for n in big["num_nonfinite"] + sml["num_nonfinite"])


def test_closed_loop_jacobian_matches_finite_differences(ant):
    env, policy_fn, params = ant
    with jax.enable_x64(True):
        out = closed_loop_jacobians(env, policy_fn, params, jax.random.PRNGKey(2), 12)
        jac = out["jacobians"]
        assert jac.shape == (12, env.state_size, env.state_size)
        assert np.all(np.isfinite(jac))
        # Column 20 (a joint velocity) of the first Jacobian by central differences of the closed-loop step.
        k_reset, k_pol = jax.random.split(jax.random.PRNGKey(2))
        state = env.reset(k_reset)
        k0 = jax.random.split(k_pol, 12)[0]

        @jax.jit
        def f(vec):
            s = env.with_state_vector(state, vec)
            return env.state_vector(env.step(s, policy_fn(params, s.obs, k0)))

        v = env.state_vector(state)
        e = np.zeros(env.state_size)
        e[20] = 1e-6
        fd = (np.asarray(f(v + e)) - np.asarray(f(v - e))) / 2e-6
    np.testing.assert_allclose(jac[0][:, 20], fd, rtol=1e-4, atol=1e-5)
