"""Spectra and Lyapunov exponents on systems with known answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.diagnostics import eigenvalues, lyapunov_of_map, lyapunov_spectrum, map_jacobians, spectrum_stats
from gradgym.diagnostics.horizon import fit_growth_rate, recommend_truncation


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _linear_system():
    rng = np.random.default_rng(0)
    lam = np.array([1.5, -0.9, 0.5 + 0.5j, 0.5 - 0.5j, 0.1])
    block = np.diag([1.5, -0.9, 0.0, 0.0, 0.1]).astype(float)
    block[2:4, 2:4] = [[0.5, 0.5], [-0.5, 0.5]]
    basis = rng.normal(size=(5, 5))
    return basis @ block @ np.linalg.inv(basis), lam


def test_eigenvalues_of_linear_system():
    a, lam = _linear_system()
    ev = eigenvalues(a)
    np.testing.assert_allclose(np.abs(ev), np.sort(np.abs(lam))[::-1], rtol=1e-8)
    for want in lam:
        assert np.min(np.abs(ev - want)) < 1e-8


def test_product_growth_and_lyapunov_of_constant_linear_map():
    a, lam = _linear_system()
    jacs = np.repeat(a[None], 400, axis=0)
    stats = spectrum_stats(jacs)
    np.testing.assert_allclose(stats["step_max_abs"], 1.5, rtol=1e-8)
    # max |eig(A^i)| = 1.5^i, tracked in logs far beyond float range.
    np.testing.assert_allclose(stats["product_log_max_abs"], np.arange(1, 401) * math.log(1.5), rtol=1e-6)
    assert stats["product_log_max_abs"][-1] > math.log(1e70)
    exps = lyapunov_spectrum(jacs)["exponents"]
    want = np.sort(np.log(np.abs(lam)))[::-1]
    np.testing.assert_allclose(exps, want, atol=0.02)
    # The fitted growth rate of the product gain is the top exponent.
    fit = fit_growth_rate(np.arange(1, 401), np.exp(stats["product_log_sv"] - stats["product_log_sv"][0]))
    np.testing.assert_allclose(fit["rate"], math.log(1.5), rtol=1e-3)


def test_logistic_map_lyapunov_is_ln2():
    exps = lyapunov_of_map(lambda x: 4.0 * x * (1.0 - x), jnp.asarray(0.1234), 20000, discard=100)
    assert abs(exps[0] - math.log(2)) < 0.02
    # r = 2.5 has a stable fixed point x* = 0.6 with f'(x*) = -0.5: exponent ln 0.5.
    exps = lyapunov_of_map(lambda x: 2.5 * x * (1.0 - x), jnp.asarray(0.3), 2000, discard=500)
    assert abs(exps[0] - math.log(0.5)) < 1e-6


def test_henon_map_lyapunov_spectrum():
    # Known values for the Henon map (a=1.4, b=0.3): 0.419 and ln(0.3) - 0.419.
    def henon(v):
        return jnp.stack([1.0 - 1.4 * v[0] ** 2 + v[1], 0.3 * v[0]])

    jacs = map_jacobians(henon, jnp.array([0.1, 0.1]), 30000)
    exps = lyapunov_spectrum(jacs[1000:])["exponents"]
    assert abs(exps[0] - 0.419) < 0.01
    assert abs(exps.sum() - math.log(0.3)) < 1e-6  # sum = ln |det J| exactly


def test_recommend_truncation_on_exponential_variance():
    h = np.arange(1, 41)
    v = 0.5 * np.exp(0.25 * h)
    rec = recommend_truncation(h, v, max_ratio=100.0)
    # 0.25 (T - 1) <= ln 100  ->  T <= 19.4
    assert rec["horizon"] == 19
    assert not rec["limited_by_grid"]
    np.testing.assert_allclose(rec["growth"]["rate"], 0.25, rtol=1e-9)
    flat = recommend_truncation(h, np.ones_like(h, float))
    assert flat["horizon"] == 40 and flat["limited_by_grid"]
    with pytest.raises(ValueError, match="max_ratio"):
        recommend_truncation(h, v, max_ratio=0.5)
