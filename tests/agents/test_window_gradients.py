"""Window gradients of APG and SHAC: APG's truncation against plain BPTT, SHAC's actor gradient against
APG's (horizon 1, truncated windows) and SHAC's critic replay.

On the inverted double pendulum (spring, 4 envs, hidden (16, 16)): of the robots whose reward has a gradient, the
cheapest to compile a gradient program for (the inverted pendulum pays a constant 1 per step, so APG's gradient on
it is exactly zero). Measured on one core: tracing and compiling APG's 4-step window gradient takes about 30 s of
CPU on it, 42 s on the reacher. Compile time dominates, so the tests share programs: APG's truncated window, one
plain-BPTT reference for both chunks and the whole window, SHAC's truncated window and the agents' ``init``, each
compiled once. Apart from tests/agents/test_shac.py so that pytest-xdist's ``--dist loadfile`` runs the two on
different workers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.normalize import normalize, update_stats
from gradgym.agents.shac import Shac, ShacConfig
from gradgym.envs import make

N, HIDDEN = 4, (16, 16)


def flat(tree) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0])


@pytest.fixture(scope="module")
def robot():
    """Inverted double pendulum: its episode ends when the tip drops below 1 (from about 1.2), which no robot
    here reaches within the few steps these tests run from a reset (the tests check)."""
    return make("inverted_double_pendulum", episode_length=100)


@pytest.fixture(scope="module")
def apg_t2(robot):
    """APG on a 4-step window truncated every 2 steps (one compile, shared by two tests; its ``init``, by three)."""
    return Apg(robot, ApgConfig(num_envs=N, horizon=4, truncation=2, hidden=HIDDEN))


def test_apg_truncation_is_the_mean_of_plain_bptt_chunks(robot, apg_t2):
    """A 4-step window truncated at 2 = the mean of the gradients of its two 2-step chunks, each plain BPTT
    (one scan, no stop_gradient) from where the previous chunk left the robots; the whole window's plain
    BPTT gradient differs from it (truncation drops the terms that cross the cut)."""
    ts = apg_t2.init(jax.random.PRNGKey(0))
    stats = update_stats(ts.stats, ts.env_state.obs * 3.0 + 1.0)  # normalisation is part of the gradient
    key = jax.random.PRNGKey(7)

    @jax.jit
    def plain(params, state, keys, weights):
        """Reference: BPTT through 4 steps of APG's loss, no truncation, each step's rewards weighted (a chunk
        is the first steps weighted 1, the rest 0: one compiled program serves the chunks and the window)."""
        def loss(params):
            def one(s, k):
                a = jax.vmap(apg_t2._policy_fn, in_axes=(None, 0, 0))(params, normalize(stats, s.obs),
                                                                      jax.random.split(k, N))
                s, final = jax.vmap(robot.autoreset_step)(s, a)
                return s, (final.reward, final.done, s)

            _, (rewards, done, states) = jax.lax.scan(one, state, keys)
            return -jnp.sum(weights[:, None] * rewards) / (jnp.sum(weights) * N), (done, states)

        return jax.grad(loss, has_aux=True)(params)

    keys = jax.random.split(key, 4)  # the keys APG's loss gives its steps
    chunk, window = jnp.array([1.0, 1.0, 0.0, 0.0]), jnp.ones(4)
    g_chunk1, (done1, states) = plain(ts.params, ts.env_state, keys, chunk)
    mid = jax.tree.map(lambda a: a[1], states)  # where the first chunk leaves the robots
    more = jax.random.split(jax.random.PRNGKey(8), 2)  # two steps past the window, weighted 0
    g_chunk2, (done2, _) = plain(ts.params, mid, jnp.concatenate([keys[2:], more]), chunk)
    assert not np.any(done1) and not np.any(done2)  # no episode boundary stops a gradient inside the window
    ref = (flat(g_chunk1) + flat(g_chunk2)) / 2
    _, g_t2, _ = apg_t2.window_grad(ts.params, stats, ts.env_state, key)
    g_t2 = flat(g_t2)
    assert np.linalg.norm(ref) > 0
    np.testing.assert_allclose(g_t2, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())
    g_full = flat(plain(ts.params, ts.env_state, keys, window)[0])
    rel = np.linalg.norm(g_full - g_t2) / np.linalg.norm(g_full)
    # Measured 0.32 (1.3e-3 on the reacher): far above float32 round-off, which the equality above allows.
    assert rel > 1e-4, rel


@pytest.fixture(scope="module")
def shac_h4(robot):
    """A 4-step SHAC (truncation 2, gamma 1, 3 critic windows) and its jitted window gradient, shared by
    two tests (one compile; its ``init``, by three)."""
    agent = Shac(robot, ShacConfig(num_envs=N, horizon=4, truncation=2, gamma=1.0, hidden=HIDDEN,
                                   critic_minibatches=1, critic_windows=3))
    return agent, jax.jit(jax.grad(agent.actor_loss, has_aux=True))


def test_horizon_one_zero_critic_gradient_equals_apg(robot, apg_t2, shac_h4):
    apg = Apg(robot, ApgConfig(num_envs=N, horizon=1, hidden=HIDDEN))
    shac = Shac(robot, ShacConfig(num_envs=N, horizon=1, hidden=HIDDEN, critic_minibatches=1))
    # The initial state and critic come from the shared agents' compiled ``init`` (same envs and networks).
    ts = apg_t2.init(jax.random.PRNGKey(0))
    # Observation statistics that are not the identity, so normalisation is part of both gradients.
    stats = update_stats(ts.stats, ts.env_state.obs * 3.0 + 1.0)
    critic = shac_h4[0].init(jax.random.PRNGKey(1)).critic
    zero = jax.tree.map(jnp.zeros_like, critic)
    key = jax.random.PRNGKey(7)
    _, g_apg, _ = apg.window_grad(ts.params, stats, ts.env_state, key)
    shac_grad = jax.jit(jax.grad(shac.actor_loss, has_aux=True))
    g_shac, _ = shac_grad(ts.params, zero, stats, ts.env_state, key)
    g_apg, g_shac = flat(g_apg), flat(g_shac)
    assert np.abs(g_apg).sum() > 0
    np.testing.assert_allclose(g_shac, g_apg, rtol=1e-5, atol=1e-7)
    # A non-zero critic changes the gradient (the bootstrap term is differentiated through the state).
    g_crit, _ = shac_grad(ts.params, critic, stats, ts.env_state, key)
    assert not np.allclose(flat(g_crit), g_shac)


def test_truncated_window_gradient_equals_truncated_apg(apg_t2, shac_h4):
    """gamma=1 and a zero critic make SHAC's window loss APG's mean reward; with truncation 2 of a 4-step
    window both stop the gradient at the same steps, so the gradients agree."""
    agent, grad = shac_h4
    ts = apg_t2.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(3)
    _, g_apg, _ = apg_t2.window_grad(ts.params, ts.stats, ts.env_state, key)
    zero = jax.tree.map(jnp.zeros_like, agent.init(jax.random.PRNGKey(1)).critic)
    g_trunc = grad(ts.params, zero, ts.stats, ts.env_state, key)[0]
    g_apg, g_trunc = flat(g_apg), flat(g_trunc)
    assert np.abs(g_apg).sum() > 0
    np.testing.assert_allclose(g_trunc, g_apg, rtol=1e-5, atol=1e-7)


def test_critic_replay_stores_windows_and_recomputes_their_targets(shac_h4):
    """critic_windows=3: the newest window goes to the front, the first fills every slot (weight 0 until a
    real window replaces it), and the stored windows' targets are TD(lambda) over the windows stitched into
    one trajectory: the newest window's equal the actor pass's, an older window's look ahead into the next."""
    agent, grad = shac_h4
    ts = agent.init(jax.random.PRNGKey(0))
    _, (state1, w1) = grad(ts.actor, ts.critic, ts.stats, ts.env_state, jax.random.PRNGKey(1))
    _, (_, w2) = grad(ts.actor, ts.critic, ts.stats, state1, jax.random.PRNGKey(2))
    r1 = agent._replay_window(ts.replay, w1)
    assert int(r1.count) == 1
    for k in range(3):
        np.testing.assert_array_equal(np.asarray(r1.obs[k]), np.asarray(w1.obs))
    r2 = agent._replay_window(r1, w2)
    assert int(r2.count) == 2
    np.testing.assert_array_equal(np.asarray(r2.reward[0]), np.asarray(w2.reward))
    np.testing.assert_array_equal(np.asarray(r2.next_obs[1]), np.asarray(w1.next_obs))
    # The windows follow each other: window 2 starts where window 1 ended (no episode ended in 8 steps).
    assert not np.any(np.asarray(w1.done)) and not np.any(np.asarray(w2.done))
    np.testing.assert_allclose(np.asarray(r2.obs[0][0]), np.asarray(r2.next_obs[1][-1]), rtol=1e-6)
    targets, weights = agent.replay_targets(ts.critic, ts.stats, r2)
    np.testing.assert_array_equal(np.asarray(weights[:, 0, 0]), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(np.asarray(targets[0]), np.asarray(agent.critic_targets(w2.reward, w2.v_next, w2.done)),
                               rtol=1e-5, atol=1e-6)
    stitched = agent.critic_targets(*(jnp.concatenate([getattr(w1, f), getattr(w2, f)]) for f in ("reward", "v_next", "done")))
    np.testing.assert_allclose(np.asarray(targets[1]), np.asarray(stitched[:4]), rtol=1e-5, atol=1e-6)
    alone = np.asarray(agent.critic_targets(w1.reward, w1.v_next, w1.done))  # window 1's targets cut at its own end
    assert np.abs(np.asarray(targets[1]) - alone).max() > 1e-3
    out, metrics = agent.iterate(ts)
    assert int(out.replay.count) == 1 and np.isfinite(float(metrics["value_loss"]))
