"""SHAC's actor gradient against APG's (horizon 1, truncated windows) and its critic replay.

Apart from tests/agents/test_shac.py so that pytest-xdist's ``--dist loadfile`` can run the two
files' compiles on different workers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.normalize import update_stats
from gradgym.agents.shac import Shac, ShacConfig


def test_horizon_one_zero_critic_gradient_equals_apg(reacher):
    n = 8
    apg = Apg(reacher, ApgConfig(num_envs=n, horizon=1, hidden=(16, 16)))
    shac = Shac(reacher, ShacConfig(num_envs=n, horizon=1, hidden=(16, 16), critic_minibatches=1))
    ts = apg.init(jax.random.PRNGKey(0))
    # Observation statistics that are not the identity, so normalisation is part of both gradients.
    stats = update_stats(ts.stats, ts.env_state.obs * 3.0 + 1.0)
    critic = shac.init(jax.random.PRNGKey(1)).critic
    zero = jax.tree.map(jnp.zeros_like, critic)
    key = jax.random.PRNGKey(7)
    _, g_apg, _ = apg.window_grad(ts.params, stats, ts.env_state, key)
    shac_grad = jax.jit(jax.grad(shac.actor_loss, has_aux=True))
    g_shac, _ = shac_grad(ts.params, zero, stats, ts.env_state, key)
    leaves_apg, leaves_shac = jax.tree.leaves(g_apg), jax.tree.leaves(g_shac)
    assert sum(float(jnp.sum(jnp.abs(x))) for x in leaves_apg) > 0
    for a, b in zip(leaves_apg, leaves_shac, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
    # A non-zero critic changes the gradient (the bootstrap term is differentiated through the state).
    g_crit, _ = shac_grad(ts.params, critic, stats, ts.env_state, key)
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(g_crit), leaves_shac, strict=True))


@pytest.fixture(scope="module")
def shac_h4(reacher):
    """A 4-step SHAC (truncation 2, gamma 1, 3 critic windows) and its jitted window gradient, shared by
    two tests (one compile)."""
    agent = Shac(reacher, ShacConfig(num_envs=4, horizon=4, truncation=2, gamma=1.0, hidden=(16, 16),
                                     critic_minibatches=1, critic_windows=3))
    return agent, jax.jit(jax.grad(agent.actor_loss, has_aux=True))


def test_truncated_window_gradient_equals_truncated_apg(reacher, shac_h4):
    """gamma=1 and a zero critic make SHAC's window loss APG's mean reward; with truncation 2 of a 4-step
    window both stop the gradient at the same steps, so the gradients agree."""
    agent, grad = shac_h4
    apg = Apg(reacher, ApgConfig(num_envs=4, horizon=4, truncation=2, hidden=(16, 16)))
    ts = apg.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(3)
    _, g_apg, _ = apg.window_grad(ts.params, ts.stats, ts.env_state, key)
    zero = jax.tree.map(jnp.zeros_like, agent.init(jax.random.PRNGKey(1)).critic)
    g_trunc = grad(ts.params, zero, ts.stats, ts.env_state, key)[0]
    assert sum(float(jnp.sum(jnp.abs(x))) for x in jax.tree.leaves(g_apg)) > 0
    for a, b in zip(jax.tree.leaves(g_apg), jax.tree.leaves(g_trunc), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)


def test_critic_replay_stores_windows_and_recomputes_their_targets(shac_h4):
    """critic_windows=3: the newest window goes to the front, the first fills every slot (weight 0 until a
    real window replaces it), and the stored windows' targets are TD(lambda) over the windows stitched into
    one trajectory: the newest window's equal the actor pass's, an older window's look ahead into the next."""
    agent, grad = shac_h4
    ts = agent.init(jax.random.PRNGKey(0))
    _, (state1, w1) = grad(ts.actor, ts.critic, ts.stats, ts.env_state, jax.random.PRNGKey(1))
    _, (_, w2) = grad(ts.actor, ts.critic, ts.stats, state1, jax.random.PRNGKey(2))
    r1 = agent._replay_window(ts.replay, w1)
    assert int(r1["count"]) == 1
    for k in range(3):
        np.testing.assert_array_equal(np.asarray(r1["obs"][k]), np.asarray(w1[0]))
    r2 = agent._replay_window(r1, w2)
    assert int(r2["count"]) == 2
    np.testing.assert_array_equal(np.asarray(r2["reward"][0]), np.asarray(w2[2]))
    np.testing.assert_array_equal(np.asarray(r2["next_obs"][1]), np.asarray(w1[1]))
    # The windows follow each other: window 2 starts where window 1 ended (no episode ended in 8 steps).
    np.testing.assert_allclose(np.asarray(r2["obs"][0][0]), np.asarray(r2["next_obs"][1][-1]), rtol=1e-6)
    targets, weights = agent.replay_targets(ts.critic, ts.stats, r2)
    np.testing.assert_array_equal(np.asarray(weights[:, 0, 0]), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(np.asarray(targets[0]), np.asarray(agent.critic_targets(w2[2], w2[4], w2[5])),
                               rtol=1e-5, atol=1e-6)
    stitched = agent.critic_targets(*(jnp.concatenate([w1[i], w2[i]]) for i in (2, 4, 5)))
    np.testing.assert_allclose(np.asarray(targets[1]), np.asarray(stitched[:4]), rtol=1e-5, atol=1e-6)
    alone = np.asarray(agent.critic_targets(w1[2], w1[4], w1[5]))  # window 1's targets cut at its own end
    assert np.abs(np.asarray(targets[1]) - alone).max() > 1e-3
    out, metrics = agent.iterate(ts)
    assert int(out.replay["count"]) == 1 and np.isfinite(float(metrics["value_loss"]))
