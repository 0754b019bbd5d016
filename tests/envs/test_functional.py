"""Differentiable rollouts and step Jacobians (gradgym.envs.functional) in float64:
analytic gradients vs central finite differences, jacfwd vs jacrev, truncation,
and scan vs a Python loop of ``env.step``.

Every compiled function returns value and gradient together, so the finite
differences reuse the gradient's compiled code (one compile per quantity).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradgym.envs as ge
from gradgym.envs import PhysicsParams, open_loop_rollout, rollout, step_jacobian

H = 1e-5  # central-difference step; float64 FD error here is ~1e-9 relative
HORIZON = 10


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def pendulum():
    """Inverted pendulum on generalized: smooth (no contacts) over short horizons."""
    return ge.make("inverted_pendulum", "generalized", dtype="float64")


def _objective(ret: jax.Array, traj: ge.Trajectory) -> jax.Array:
    # The pendulum's reward is a constant alive bonus (zero gradient), so add a
    # fixed smooth function of every observation to make the test informative.
    w = jnp.sin(jnp.arange(traj.obs.size, dtype=traj.obs.dtype)).reshape(traj.obs.shape)
    return ret + jnp.sum(w * traj.obs)


def _check_directional(value_and_grad, x, key, n_dirs: int = 2, rtol: float = 1e-5):
    """grad(f) . v vs (f(x + h v) - f(x - h v)) / 2h for random directions v."""
    _, g = value_and_grad(x)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
    leaves, treedef = jax.tree.flatten(x)
    for i in range(n_dirs):
        ks = jax.random.split(jax.random.fold_in(key, i), len(leaves))
        v = jax.tree.unflatten(
            treedef, [jax.random.normal(k, jnp.shape(leaf), jnp.float64) for k, leaf in zip(ks, leaves, strict=True)]
        )
        analytic = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v), strict=True))
        plus = value_and_grad(jax.tree.map(lambda a, b: a + H * b, x, v))[0]
        minus = value_and_grad(jax.tree.map(lambda a, b: a - H * b, x, v))[0]
        fd = (plus - minus) / (2 * H)
        assert abs(float(analytic)) > 1e-3  # a zero gradient would pass trivially
        np.testing.assert_allclose(float(analytic), float(fd), rtol=rtol)


@functools.cache
def _open_loop_value_and_grad(env):
    """One program for the open-loop checks: value and gradient in the actions and the mass together."""
    init_key = jax.random.PRNGKey(6)

    def loss(x):
        physics = PhysicsParams(friction=jnp.ones((), jnp.float64), mass=x["mass"])
        return _objective(*open_loop_rollout(env, x["actions"], init_key, physics=physics))

    return jax.jit(jax.value_and_grad(loss))


def _open_loop_x(env):
    actions = 0.3 * jax.random.normal(jax.random.PRNGKey(7), (HORIZON, env.action_size), jnp.float64)
    return {"actions": actions, "mass": jnp.ones((), jnp.float64)}


def test_grad_open_loop_actions_matches_finite_differences(pendulum):
    f, x = _open_loop_value_and_grad(pendulum), _open_loop_x(pendulum)

    def actions_only(a):
        value, g = f({**x, "actions": a})
        return value, g["actions"]

    _check_directional(actions_only, x["actions"], jax.random.PRNGKey(2))


def linear_policy(params, obs, key):
    return jnp.tanh(obs @ params["w"] + params["b"])


@functools.cache
def _policy_value_and_grad(env, truncation):
    def loss(params, key):
        return _objective(*rollout(env, linear_policy, params, key, HORIZON, truncation=truncation))

    return jax.jit(jax.value_and_grad(loss))


def _policy_params(env):
    kw, kb = jax.random.split(jax.random.PRNGKey(3))
    return {
        "w": 0.5 * jax.random.normal(kw, (env.observation_size, env.action_size), jnp.float64),
        "b": 0.1 * jax.random.normal(kb, (env.action_size,), jnp.float64),
    }


def test_grad_policy_params_matches_finite_differences(pendulum):
    key = jax.random.PRNGKey(4)
    f = _policy_value_and_grad(pendulum, None)
    _check_directional(lambda p: f(p, key), _policy_params(pendulum), jax.random.PRNGKey(5))


def test_grad_mass_matches_finite_differences(pendulum):
    f, x = _open_loop_value_and_grad(pendulum), _open_loop_x(pendulum)

    def mass_only(mass):
        value, g = f({**x, "mass": mass})
        return value, g["mass"]

    _check_directional(mass_only, x["mass"], jax.random.PRNGKey(8))


@pytest.mark.slow
def test_ant_grad_actions_and_friction_match_finite_differences():
    """Ant for a few steps on spring: the contact with the floor makes friction matter."""
    env = ge.make("ant", dtype="float64")
    key = jax.random.PRNGKey(1)
    actions = 0.3 * jax.random.normal(jax.random.PRNGKey(2), (3, env.action_size), jnp.float64)

    def loss(x):
        physics = PhysicsParams(friction=x["friction"], mass=jnp.ones((), jnp.float64))
        return _objective(*open_loop_rollout(env, x["actions"], key, physics=physics))

    f = jax.jit(jax.value_and_grad(loss))
    x = {"actions": actions, "friction": jnp.ones((), jnp.float64)}
    _check_directional(f, x, jax.random.PRNGKey(3), rtol=1e-4)
    # Friction alone (it is a small part of the full direction above).
    g_friction = float(f(x)[1]["friction"])
    fd = (f({**x, "friction": 1.0 + H})[0] - f({**x, "friction": 1.0 - H})[0]) / (2 * H)
    assert abs(g_friction) > 1e-3
    np.testing.assert_allclose(g_friction, float(fd), rtol=1e-4)


@pytest.fixture(scope="module")
def moving_state(pendulum):
    """A pendulum state a few steps in, so velocities are non-zero."""
    s = pendulum.reset(jax.random.PRNGKey(9))
    step = jax.jit(pendulum.step)
    for _ in range(3):
        s = step(s, jnp.full((pendulum.action_size,), 0.5))
    return s


def test_step_jacobian_fwd_equals_rev_and_finite_differences(pendulum, moving_state):
    action = jnp.full((pendulum.action_size,), 0.2)
    jac = jax.jit(step_jacobian, static_argnums=(0, 3))
    ds_rev, da_rev = jac(pendulum, moving_state, action, "rev")
    ds_fwd, da_fwd = jac(pendulum, moving_state, action, "fwd")
    n = pendulum.state_size
    assert ds_rev.shape == (n, n) and da_rev.shape == (n, pendulum.action_size)
    np.testing.assert_allclose(ds_fwd, ds_rev, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(da_fwd, da_rev, rtol=1e-9, atol=1e-12)

    @jax.jit
    def next_vec(vec, a):
        return pendulum.state_vector(pendulum.step(pendulum.with_state_vector(moving_state, vec), a))

    s0 = pendulum.state_vector(moving_state)
    fd_s = np.stack([(next_vec(s0 + H * e, action) - next_vec(s0 - H * e, action)) / (2 * H) for e in jnp.eye(n)], 1)
    fd_a = np.stack(
        [(next_vec(s0, action + H * e) - next_vec(s0, action - H * e)) / (2 * H) for e in jnp.eye(action.size)], 1
    )
    np.testing.assert_allclose(ds_rev, fd_s, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(da_rev, fd_a, rtol=1e-5, atol=1e-7)
    assert np.abs(ds_rev - np.eye(n)).max() > 1e-3 and np.abs(da_rev).max() > 1e-4  # not trivial


def test_truncation_horizon_equals_full_gradient_and_one_differs(pendulum):
    key = jax.random.PRNGKey(4)
    params = _policy_params(pendulum)
    v_full, g_full = _policy_value_and_grad(pendulum, None)(params, key)
    v_h, g_h = _policy_value_and_grad(pendulum, HORIZON)(params, key)
    v_1, g_1 = _policy_value_and_grad(pendulum, 1)(params, key)
    # Truncation changes gradients only, never the forward rollout.
    assert float(v_full) == float(v_h) == float(v_1)
    for a, b in zip(jax.tree.leaves(g_full), jax.tree.leaves(g_h), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    diff = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(g_full), jax.tree.leaves(g_1), strict=True))
    scale = max(float(jnp.abs(a).max()) for a in jax.tree.leaves(g_full))
    assert diff > 1e-2 * scale


def test_scan_rollout_equals_python_loop_of_steps(pendulum):
    """Same trajectory as stepping by hand; after the episode ends the state is frozen and masked."""
    init = pendulum.reset(jax.random.PRNGKey(10))
    actions = 0.5 * jax.random.normal(jax.random.PRNGKey(11), (HORIZON, pendulum.action_size), jnp.float64)
    ret, traj = jax.jit(lambda a: open_loop_rollout(pendulum, a, jax.random.PRNGKey(12), init_state=init))(actions)
    step = jax.jit(pendulum.step)
    s, obs, rewards, alive, done = init, [], [], [], False
    for a in actions:
        obs.append(s.obs)
        alive.append(0.0 if done else 1.0)
        if not done:
            s = step(s, a)
            done = bool(s.done)
        rewards.append(s.reward * alive[-1])
    assert alive[-1] == 0.0 and alive[1] == 1.0  # these actions topple the pole mid-rollout
    np.testing.assert_allclose(traj.obs, np.stack(obs), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(traj.action, actions)
    np.testing.assert_array_equal(traj.alive, alive)
    np.testing.assert_allclose(traj.reward, np.stack(rewards), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(ret), float(np.sum(rewards)), rtol=1e-12)


@pytest.mark.parametrize("truncation", [0, -3, True, 2.5])
def test_rollout_rejects_bad_truncation(pendulum, truncation):
    with pytest.raises(ValueError, match=rf"truncation must be a positive int or None, got {truncation!r}"):
        rollout(pendulum, linear_policy, _policy_params(pendulum), jax.random.PRNGKey(0), 5, truncation=truncation)


@pytest.mark.parametrize("horizon", [0, -1, 2.0])
def test_rollout_rejects_bad_horizon(pendulum, horizon):
    with pytest.raises(ValueError, match=rf"horizon must be a positive int, got {horizon!r}"):
        rollout(pendulum, linear_policy, _policy_params(pendulum), jax.random.PRNGKey(0), horizon)


def test_open_loop_rejects_empty_actions_and_step_jacobian_bad_mode(pendulum, moving_state):
    with pytest.raises(ValueError, match="horizon must be a positive int, got 0"):
        open_loop_rollout(pendulum, jnp.zeros((0, pendulum.action_size)), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="mode must be 'rev' or 'fwd', got 'backward'"):
        step_jacobian(pendulum, moving_state, jnp.zeros(pendulum.action_size), mode="backward")
