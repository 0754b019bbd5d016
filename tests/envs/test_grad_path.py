"""``make(..., grad_path=...)`` (gradgym.envs.spring_grad): cheaper reverse mode through Brax's spring physics.

``"remat"`` must run Brax's forward pass unchanged (a forward-only program is
bit-identical) and ``"fast"`` must equal it to float rounding; both gradients
must equal Brax's path to float rounding and match central finite differences
in float64. The inverted double pendulum (no contacts; a slider and two hinges
in a chain, 3 steps of 4 substeps) carries the gradient checks: the smallest
robot whose "fast" path still recomputes a chain of joint coordinates once per
control step and whose reward reads every step's state (the inverted
pendulum's is constant, so its last step would not reach the objective). Its
float64 gradient program costs about 22-25 s of CPU to compile per path, the
reacher's 26-31 s. Hopper (2 contact points per foot capsule) checks the
forward pass through contacts, from reset states computed once, so its three
programs hold only the steps.

Every compiled function returns value, trajectory and gradient together, so the
finite differences reuse the gradient's compiled code (one compile per path).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradgym.envs as ge
from gradgym.agents.cli import GRAD_PATH_CHOICES
from gradgym.envs import PhysicsParams, open_loop_rollout
from gradgym.envs.spring_grad import DEFAULT_SPRING_GRAD_PATH, GRAD_PATHS, actuator_bias_free

H = 1e-5  # central-difference step (float64)
HORIZON = 3
ROBOT = "inverted_double_pendulum"  # its episode ends once the tip drops below 1 (from about 1.2): not in 3 steps


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_grad_path_names_defaults_and_errors():
    assert GRAD_PATHS == ("brax", "remat", "fast")
    assert GRAD_PATH_CHOICES == GRAD_PATHS  # the CLI's --grad-path
    assert ge.make("reacher").grad_path == DEFAULT_SPRING_GRAD_PATH
    assert ge.make("reacher") is ge.make("reacher", "spring", grad_path=DEFAULT_SPRING_GRAD_PATH)
    assert ge.make("reacher", "generalized").grad_path == "brax"
    assert ge.make("reacher", grad_path="fast") is not ge.make("reacher", grad_path="brax")
    assert "grad_path='fast'" in repr(ge.make("reacher", grad_path="fast"))
    with pytest.raises(ValueError, match=r"Unknown grad_path 'quick'.*brax, remat, fast"):
        ge.make("reacher", grad_path="quick")
    with pytest.raises(ValueError, match=r"spring backend only.*backend='generalized'"):
        ge.make("reacher", "generalized", grad_path="remat")
    with pytest.raises(ValueError, match=r"Unknown grad_path"):
        ge.make("reacher", grad_path=["fast"])


def _objective(ret, traj):
    # A fixed smooth function of every observation, so every state component feeds the gradient.
    w = jnp.sin(jnp.arange(traj.obs.size, dtype=traj.obs.dtype)).reshape(traj.obs.shape)
    return ret + jnp.sum(w * traj.obs)


@functools.cache
def _value_traj_and_grad(grad_path):
    """x = {actions, mass} -> ((objective, (observations, alive)), gradient) on ROBOT, spring, float64."""
    env = ge.make(ROBOT, "spring", dtype="float64", grad_path=grad_path)
    key = jax.random.PRNGKey(0)

    def f(x):
        physics = PhysicsParams(friction=jnp.ones((), jnp.float64), mass=x["mass"])
        ret, traj = open_loop_rollout(env, x["actions"], key, physics=physics)
        return _objective(ret, traj), (traj.obs, traj.alive)

    return jax.jit(jax.value_and_grad(f, has_aux=True))


def _x():
    actions = 0.5 * jax.random.normal(jax.random.PRNGKey(1), (HORIZON, 1), jnp.float64)
    return {"actions": actions, "mass": jnp.ones((), jnp.float64)}


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])


@pytest.mark.parametrize("grad_path", ["remat", "fast"])
def test_forward_and_gradient_equal_brax_path(grad_path):
    # "fast" computes the joint coordinates once per control step only where no actuator reads them.
    assert actuator_bias_free(ge.make(ROBOT, "spring", dtype="float64", grad_path=grad_path).brax_env.sys)
    (value_ref, (obs_ref, alive)), g_ref = _value_traj_and_grad("brax")(_x())
    (value, (obs, _)), g = _value_traj_and_grad(grad_path)(_x())
    assert np.all(np.asarray(alive) == 1)  # no episode ends (that would freeze the state and stop the gradient)
    # Inside a gradient program XLA fuses the forward differently on each path, so even remat's forward
    # values may differ in the last bits here (measured: 4e-16; on the reacher 9e-15); forward-only
    # programs are compared bit for bit in test_forward_through_contacts_equals_brax_path.
    np.testing.assert_allclose(obs, obs_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(value), float(value_ref), rtol=1e-12)
    # Measured: the gradients differ by at most ~1e-15 relative (8e-16; float64 rounding, the
    # recomputed substeps are fused differently by XLA).
    g, g_ref = _flat(g), _flat(g_ref)
    assert np.abs(g_ref).max() > 1e-2
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-11 * np.abs(g_ref).max())


@pytest.mark.parametrize("grad_path", ["remat", "fast"])
def test_gradient_matches_finite_differences(grad_path):
    """d objective / d(actions, mass) . v against central differences, two random directions."""
    f = _value_traj_and_grad(grad_path)
    x = _x()
    _, g = f(x)
    leaves, treedef = jax.tree.flatten(x)
    for i in range(2):
        ks = jax.random.split(jax.random.PRNGKey(10 + i), len(leaves))
        v = jax.tree.unflatten(treedef, [jax.random.normal(k, jnp.shape(a), jnp.float64) for k, a in zip(ks, leaves, strict=True)])
        analytic = float(sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v), strict=True)))
        plus = f(jax.tree.map(lambda a, b: a + H * b, x, v))[0][0]
        minus = f(jax.tree.map(lambda a, b: a - H * b, x, v))[0][0]
        fd = float(plus - minus) / (2 * H)
        assert abs(analytic) > 1e-3  # a zero gradient would pass trivially
        np.testing.assert_allclose(analytic, fd, rtol=1e-5)


def test_forward_through_contacts_equals_brax_path():
    """Hopper, 4 steps from 4 reset states, its feet on the floor: remat is Brax's forward, fast equals it.

    ``grad_path`` replaces only the step, so the reset states are computed once (Brax's reset) and every
    path's program holds just the 4 steps."""
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    actions = 0.8 * jnp.tanh(jax.random.normal(jax.random.PRNGKey(3), (4, 4, 3), jnp.float64))
    starts = jax.jit(jax.vmap(ge.make("hopper", "spring", dtype="float64", grad_path="brax").reset))(keys)

    def run(grad_path):
        env = ge.make("hopper", "spring", dtype="float64", grad_path=grad_path)

        def one(start, acts):
            def body(s, a):
                s = env.step(s, a)
                ps = s.inner.pipeline_state
                return s, (s.obs, s.reward, ps.x.pos, ps.xd.vel)

            return jax.lax.scan(body, start, acts)[1]

        return [np.asarray(a) for a in jax.jit(jax.vmap(one))(starts, actions)]

    ref = run("brax")
    assert np.any(ref[2][..., 2] < 0.3)  # some link is low enough to touch the floor: contacts are exercised
    for a, b in zip(run("remat"), ref, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(run("fast"), ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_checkpoint_env_options_round_trip():
    """Checkpoint headers name a non-default path (and omit the default, so older headers still match)."""
    from gradgym.agents.checkpoint import env_options
    from gradgym.agents.policy_io import env_from_options

    default = ge.make("reacher", episode_length=50)
    assert "grad_path" not in env_options(default)
    assert env_from_options(env_options(default)) is default
    brax_path = ge.make("reacher", episode_length=50, grad_path="brax")
    assert env_options(brax_path)["grad_path"] == "brax"
    assert env_from_options(env_options(brax_path)) is brax_path
