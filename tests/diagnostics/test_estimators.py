"""Estimators on the Fig. 1 toy, whose smoothed gradient is known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.diagnostics import combine, es_antithetic, estimate_all, pathwise, score_function
from gradgym.diagnostics.toy import toy_estimator_variance, toy_loss, toy_smoothed, toy_smoothed_grad

SIGMA = 0.3


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("w", [1.0, 10.0])
def test_estimators_match_exact_smoothed_gradient(w):
    x = jnp.asarray(2.0)
    exact = toy_smoothed_grad(2.0, w, SIGMA)
    loss = lambda th, k: toy_loss(th, w)  # noqa: E731
    ests = estimate_all(loss, x, jax.random.PRNGKey(0), SIGMA, 20000)
    for name, e in ests.items():
        se = np.sqrt(float(e.variance) / e.num_samples)
        assert abs(float(e.mean) - exact) < 5 * se + 1e-6, (name, float(e.mean), exact, se)


def test_smoothed_loss_formula_matches_monte_carlo():
    eps = SIGMA * jax.random.normal(jax.random.PRNGKey(1), (200000,), jnp.float64)
    mc = jnp.mean(toy_loss(1.3 + eps, 4.0))
    assert abs(float(mc) - toy_smoothed(1.3, 4.0, SIGMA)) < 1e-3


def test_pytree_theta_and_score_function_on_quadratic():
    # l(theta) = |a|^2 + 3 b ; smoothed gradient = (2a, 3) exactly.
    theta = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    loss = lambda th, k: jnp.sum(th["a"] ** 2) + 3 * th["b"]  # noqa: E731
    key = jax.random.PRNGKey(2)
    rp = pathwise(loss, theta, key, 0.1, 500)
    np.testing.assert_allclose(rp.mean["a"], [2.0, -4.0], atol=0.05)
    np.testing.assert_allclose(rp.mean["b"], 3.0, atol=1e-9)
    assert float(rp.variance["b"]) < 1e-12  # linear term: no pathwise noise
    es = es_antithetic(loss, theta, key, 0.1, 20000)
    np.testing.assert_allclose(es.mean["b"], 3.0, atol=0.1)
    sf = score_function(loss, theta, key, 0.1, 20000)
    np.testing.assert_allclose(sf.mean["a"], [2.0, -4.0], atol=0.3)
    # Antithetic pairs cancel the even part of the loss: lower variance than plain REINFORCE.
    assert float(es.total_variance) < float(sf.total_variance)


def test_variance_ordering_low_vs_high_frequency():
    xs = np.linspace(-10, 10, 41)
    out = toy_estimator_variance(xs, [0.05, 100.0], SIGMA, 2000, jax.random.PRNGKey(3))
    rp, es = out["pathwise_var"].max(1), out["es_var"].max(1)
    assert rp[0] < es[0] / 10  # low frequency: reparameterised wins
    assert es[1] < rp[1] / 10  # high frequency: ES wins
    # ES variance is bounded (depends on the loss range, not on w); pathwise grows ~ w^2.
    assert es[1] < 10 * es[0]
    assert rp[1] > 1e4 * rp[0]


def test_combination_has_lower_variance_than_either():
    loss = lambda th, k: toy_loss(th, 4.0)  # noqa: E731
    x = jnp.asarray(3.0)
    rp = pathwise(loss, x, jax.random.PRNGKey(4), SIGMA, 4000)
    es = es_antithetic(loss, x, jax.random.PRNGKey(5), SIGMA, 4000)
    c = combine(rp, es)
    assert float(c.variance) < min(float(rp.variance), float(es.variance))
    expected_var = 1.0 / (1.0 / float(rp.variance) + 1.0 / float(es.variance))
    np.testing.assert_allclose(float(c.variance), expected_var, rtol=1e-9)
    exact = toy_smoothed_grad(3.0, 4.0, SIGMA)
    assert abs(float(c.mean) - exact) < 5 * np.sqrt(float(c.variance) / 4000)


@pytest.mark.parametrize(("kwargs", "match"), [({"num_samples": 1}, "num_samples"), ({"sigma": 0.0}, "sigma")])
def test_bad_arguments_raise(kwargs, match):
    args = {"sigma": 0.1, "num_samples": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        pathwise(lambda th, k: th**2, jnp.asarray(1.0), jax.random.PRNGKey(0), **args)
