"""GI-PPO: its per-step advantage gradients against brute force, its PPO step, learning, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import get_agent, train
from gradgym.agents.gippo import GiPpo, advantage_gradients, segment_starts
from gradgym.agents.ppo import compute_gae, gae_from_next
from gradgym.envs import make


@pytest.fixture(scope="module")
def short_pendulum():
    """Episodes of 4 steps, so a 10-step rollout crosses two episode ends (and the pendulum's own ends)."""
    env = make("inverted_pendulum", episode_length=4)
    cfg = get_agent("gippo").default_config(env.robot, {"num_envs": 2, "rollout_steps": 10, "minibatches": 2,
                                                         "hidden": (8,), "truncation": 3, "total_steps": 20})
    agent = GiPpo(env, cfg)
    return agent, agent.init(jax.random.PRNGKey(0))


def test_advantage_gradients_are_each_steps_own(short_pendulum):
    """dA_t/du_t from one backward pass of sum(A) equals the diagonal of the full Jacobian dA/du."""
    agent, ts = short_pendulum
    cfg = agent.config
    key = jax.random.PRNGKey(7)
    g, _, traj, adv, _ = jax.jit(agent.rollout_gradients)(ts.params, ts.stats, ts.env_state, key)
    du = jnp.zeros((cfg.rollout_steps, cfg.num_envs, agent.env.action_size))
    jac = jax.jit(jax.jacfwd(lambda d: agent.advantages(d, ts.params, ts.stats, ts.env_state, key)[0]))(du)
    t, n = np.arange(cfg.rollout_steps), np.arange(cfg.num_envs)
    own = np.asarray(jac)[t[:, None], n[None, :], t[:, None], n[None, :]]  # [T, N, A]
    assert np.asarray(traj.done).sum() >= 2  # the rollout crosses episode ends
    np.testing.assert_allclose(np.asarray(g), own, rtol=2e-4, atol=1e-6)
    assert np.abs(own).max() > 1e-3
    # the truncation (every 3 steps): the first step moves no advantage from the next window on
    assert np.all(np.asarray(jac)[3:, :, 0, :] == 0.0) and np.abs(np.asarray(jac)[1:3, :, 0, :]).max() > 0


def test_advantage_gradient_weights():
    """The sum over segment starts weighs a step's own gradient by sum (gamma lambda)^(t - s) over the starts s of
    its episode up to it (an episode end at step 1; a cut before step 5)."""
    grad = jnp.ones((6, 1, 1))
    done = jnp.array([[0.0], [1.0], [0.0], [0.0], [0.0], [0.0]])
    cuts = jnp.array([True, False, False, False, False, True])
    gl = 0.9 * 0.5
    np.testing.assert_allclose(np.asarray(advantage_gradients(grad, done, cuts, 0.9, 0.5))[:, 0, 0],
                               [1.0, 1 / gl, 1.0, 1 / gl, 1 / gl**2, 1 / (1 + gl**3)], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(segment_starts(done, cuts))[:, 0], [1, 0, 1, 0, 0, 1])


def test_gae_from_next_is_compute_gae():
    r = np.random.default_rng(0)
    rew, val = jnp.asarray(r.normal(size=(6, 3))), jnp.asarray(r.normal(size=(6, 3)))
    done = jnp.asarray((r.random((6, 3)) < 0.3).astype(np.float64))
    last = jnp.asarray(r.normal(size=3))
    a, b = compute_gae(rew, val, done, last, 0.99, 0.95)
    c, d = gae_from_next(rew, val, jnp.concatenate([val[1:], last[None]]), done, 0.99, 0.95)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    np.testing.assert_array_equal(np.asarray(b), np.asarray(d))


@pytest.fixture(scope="module")
def gippo_run(pend):
    return train("gippo", pend, {"eval_episodes": 4, "num_evals": 4, "total_steps": 24_576}, seed=0, progress=False)


def test_gippo_learns_pendulum(gippo_run):
    """PPO's test budget on the 100-step pendulum (seeds 0-3 reached 100 from 64-78; a random policy stays
    far below)."""
    r = gippo_run.curve.returns
    assert max(r[1:]) >= r[0] + 25.0 and gippo_run.final_return >= r[0] + 12.5, r
    assert gippo_run.metrics["skipped_updates"] == 0
    alpha = np.asarray(gippo_run.history["gi_alpha"])
    assert alpha.shape == (48,) and alpha[0] == pytest.approx(1e-3)
    assert alpha.max() > 2e-3  # fits that held the policy's spread let alpha grow
    assert gippo_run.metrics["gi_alpha_median"] == pytest.approx(float(np.median(alpha)))


def test_bad_gippo_configs_name_the_field():
    info = get_agent("gippo")
    for field, value in (("alpha", 0.0), ("alpha", 2.0), ("alpha_factor", 0.5), ("alpha_interval", 1.5),
                         ("alpha_iters", 0), ("alpha_lr", float("nan")), ("truncation", 0),
                         ("alpha_max_out_of_range", -0.1)):
        with pytest.raises(ValueError, match=f"'{field}'"):
            info.default_config("hopper", {field: value})
