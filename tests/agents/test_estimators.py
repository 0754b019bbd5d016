"""Numbers a wrong implementation would miss: GAE, the observation normaliser, the ES estimator
(APG's truncation: tests/agents/test_window_gradients.py)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms import algorithms as EVOSAX_ALGORITHMS
from evosax.core.fitness_shaping import identity_fitness_shaping_fn

from gradgym.agents.normalize import init_stats, normalize, update_stats
from gradgym.agents.ppo import compute_gae


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


def es_gradient(fn: Callable[[jax.Array], jax.Array], x: jax.Array, key: jax.Array, sigma: float,
                population_size: int) -> jax.Array:
    """evosax's antithetic OpenAI-ES (the es agent's default), no fitness shaping: an estimate of grad ``fn`` at ``x``.

    One ``ask``/``tell`` with SGD(lr=1) moves the mean by minus the estimate.
    """
    es = EVOSAX_ALGORITHMS["Open_ES"](population_size, x, use_antithetic_sampling=True, optimizer=optax.sgd(1.0),
                                      std_schedule=optax.constant_schedule(sigma),
                                      fitness_shaping_fn=identity_fitness_shaping_fn)
    k_init, k_ask, k_tell = jax.random.split(key, 3)
    state = es.init(k_init, x, es.default_params)
    pop, state = es.ask(k_ask, state, es.default_params)
    state, _ = es.tell(k_tell, pop, jax.vmap(fn)(pop), state, es.default_params)
    return x - es.get_mean(state)


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
