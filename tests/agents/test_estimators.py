"""Numbers a wrong implementation would miss: GAE, APG truncation, the ES estimator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.base import policy_net
from gradgym.agents.es import es_gradient
from gradgym.agents.normalize import init_stats, normalize, update_stats
from gradgym.agents.ppo import compute_gae
from gradgym.envs import make


def gae_loop(rewards, values, dones, last_value, gamma, lam):
    T = len(rewards)
    adv = np.zeros_like(rewards)
    gae = np.zeros_like(last_value)
    for t in reversed(range(T)):
        next_v = last_value if t == T - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_v * nonterminal - values[t]
        gae = delta + gamma * lam * nonterminal * gae
        adv[t] = gae
    return adv, adv + values


def test_gae_scan_equals_python_loop():
    rng = np.random.default_rng(0)
    T, N = 37, 5
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    dones = (rng.random((T, N)) < 0.1).astype(np.float32)
    last = rng.normal(size=N).astype(np.float32)
    adv, ret = compute_gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones), jnp.asarray(last), 0.97, 0.9)
    adv_ref, ret_ref = gae_loop(rewards, values, dones, last, 0.97, 0.9)
    np.testing.assert_allclose(np.asarray(adv), adv_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), ret_ref, rtol=1e-5, atol=1e-5)
    # A done flag cuts the recursion: the advantage before it ignores everything after.
    assert dones.sum() > 0


def test_normalizer_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(2.0, 3.0, (50, 4)), rng.normal(-1.0, 0.5, (70, 4))
    s = update_stats(update_stats(init_stats(4), jnp.asarray(a, jnp.float32)), jnp.asarray(b, jnp.float32))
    both = np.concatenate([a, b])
    np.testing.assert_allclose(np.asarray(s.mean), both.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(s.std), both.std(0), rtol=1e-4)
    # Gradients pass through the observation but not into the statistics.
    g = jax.grad(lambda st: jnp.sum(normalize(st, jnp.ones(4))))(s)
    assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(g))


@pytest.fixture(scope="module")
def apg_setup():
    env = make("reacher", episode_length=50)
    H, N = 4, 2
    key = jax.random.PRNGKey(0)
    agents = {t: Apg(env, ApgConfig(num_envs=N, horizon=H, truncation=t)) for t in (H, 1)}
    ts = agents[H].init(key)
    return env, H, N, agents, ts


def test_apg_truncation_equals_untruncated_gradient(apg_setup):
    env, H, N, agents, ts = apg_setup
    _, policy_fn = policy_net(env.action_size, (32, 32, 32, 32), "swish")
    key = jax.random.PRNGKey(7)

    def reference_loss(params):  # plain BPTT through one scan over the window, no truncation
        def one(s, k):
            obs = normalize(ts.stats, s.obs)
            a = jax.vmap(policy_fn, in_axes=(None, 0, 0))(params, obs, jax.random.split(k, N))
            s, final = jax.vmap(env.autoreset_step)(s, a)
            return s, final.reward

        _, rewards = jax.lax.scan(one, ts.env_state, jax.random.split(key, H))
        return -jnp.mean(rewards)

    ref = jax.jit(jax.grad(reference_loss))(ts.params)
    _, g_full, _ = agents[H].window_grad(ts.params, ts.stats, ts.env_state, key)
    _, g_t1, _ = agents[1].window_grad(ts.params, ts.stats, ts.env_state, key)
    flat = lambda g: np.concatenate([np.ravel(x) for x in jax.tree.leaves(g)])  # noqa: E731
    ref, g_full, g_t1 = flat(ref), flat(g_full), flat(g_t1)
    assert np.linalg.norm(ref) > 0
    np.testing.assert_allclose(g_full, ref, rtol=1e-3, atol=1e-6 * np.abs(ref).max())
    # Truncating every step drops the state-propagated terms: a different gradient, far above
    # float32 round-off (measured: ~2e-3 relative for this 4-step window).
    assert np.linalg.norm(g_full - ref) < 1e-5 * np.linalg.norm(ref)
    assert np.linalg.norm(g_t1 - ref) > 5e-4 * np.linalg.norm(ref)


def test_es_estimator_matches_quadratic_gradient():
    d = 16
    a = jnp.linspace(0.5, 2.0, d)
    c = jnp.linspace(-1.0, 1.0, d)
    f = lambda x: jnp.sum(a * (x - c) ** 2)  # noqa: E731
    x = jnp.zeros(d)
    true = jax.grad(f)(x)
    est = es_gradient(f, x, jax.random.PRNGKey(0), sigma=0.01, population_size=1024)
    cos = float(jnp.dot(est, true) / (jnp.linalg.norm(est) * jnp.linalg.norm(true)))
    assert cos > 0.95, cos
    assert abs(float(jnp.linalg.norm(est) / jnp.linalg.norm(true)) - 1.0) < 0.2
