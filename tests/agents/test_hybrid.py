"""The hybrid agent: its alpha-order weights, both of its gradient estimates, learning, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import get_agent, train
from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.hybrid import Hybrid, HybridConfig, leave_one_out, reward_to_go
from gradgym.diagnostics.estimators import alpha_order
from gradgym.envs import make

# ---------------------------------------------------------------- the weights on toys with known variances


def _toy(n, d, sigma_fo, sigma_zo, bias=0.0, seed=0):
    """Paired samples of the gradient g = 1: fo = g + bias + sigma_fo * noise, zo = g + sigma_zo * (other noise)."""
    r = np.random.default_rng(seed)
    g = np.ones(d)
    fo = g + bias + sigma_fo * r.standard_normal((n, d))
    zo = g + sigma_zo * r.standard_normal((n, d))
    return fo, zo


def test_weight_is_the_inverse_variance_formula():
    """Independent samples: the weight is the minimum-variance one computed from the same samples, and it
    approaches sigma_zo^2 / (sigma_fo^2 + sigma_zo^2) for the known variances."""
    fo, zo = _toy(4000, 20, 0.5, 1.0)
    mix = alpha_order(jnp.asarray(fo), jnp.asarray(zo), bias_check=None)
    n = fo.shape[0]
    v_fo = np.sum((fo - fo.mean(0)) ** 2) / ((n - 1) * n)
    v_zo = np.sum((zo - zo.mean(0)) ** 2) / ((n - 1) * n)
    cov = np.sum((fo - fo.mean(0)) * (zo - zo.mean(0))) / ((n - 1) * n)
    expect = (v_zo - cov) / (v_zo + v_fo - 2 * cov)
    np.testing.assert_allclose(float(mix.alpha), expect, rtol=1e-5)
    np.testing.assert_allclose(float(mix.var_fo), v_fo, rtol=1e-5)
    np.testing.assert_allclose(float(mix.var_zo), v_zo, rtol=1e-5)
    assert abs(float(mix.alpha) - 1.0 / (0.25 + 1.0)) < 0.02  # the known variances' weight, 0.8
    np.testing.assert_allclose(np.asarray(mix.grad), expect * fo.mean(0) + (1 - expect) * zo.mean(0), rtol=1e-5)
    # An unbiased first-order mean passes the bias check untouched.
    assert float(alpha_order(jnp.asarray(fo), jnp.asarray(zo), bias_check=2.0).alpha) == float(mix.alpha)


def test_correlated_samples_use_the_covariance():
    """zo = fo + independent noise: the zeroth-order estimate adds only noise, so all weight goes to fo."""
    r = np.random.default_rng(1)
    fo = 1.0 + r.standard_normal((4000, 20))
    zo = fo + 0.5 * r.standard_normal((4000, 20))
    # Treated as independent, the weight would be v_zo / (v_fo + v_zo) = 1.25 / 2.25 = 0.56.
    assert float(alpha_order(jnp.asarray(fo), jnp.asarray(zo), bias_check=None).alpha) > 0.95


def test_bias_check_falls_back_to_zeroth_order():
    """A first-order gradient with a bias far beyond the zeroth-order noise: IVW alone would trust it (its
    variance is tiny); the check caps its weight so the mix stays within 2 standard errors of the zo mean."""
    fo, zo = _toy(400, 20, 0.01, 1.0, bias=1.0)
    fo, zo = jnp.asarray(fo), jnp.asarray(zo)
    plain = alpha_order(fo, zo, bias_check=None)
    checked = alpha_order(fo, zo, bias_check=2.0)
    assert float(plain.alpha) > 0.99
    se = float(jnp.sqrt(checked.var_zo))
    np.testing.assert_allclose(float(checked.alpha), 2.0 * se / float(checked.gap), rtol=1e-5)
    assert float(checked.alpha) < 0.15
    assert float(jnp.linalg.norm(checked.grad - zo.mean(0))) <= 2.0 * se * (1 + 1e-5)
    # The mix's error against the true gradient (ones) is far below the biased first-order mean's.
    truth = jnp.ones(20)
    assert float(jnp.linalg.norm(checked.grad - truth)) < 0.3 * float(jnp.linalg.norm(fo.mean(0) - truth))


def test_non_finite_first_order_and_fixed_weights():
    fo, zo = _toy(8, 5, 0.1, 1.0)
    bad = fo.copy()
    bad[3, 2] = np.inf
    mix = alpha_order(jnp.asarray(bad), jnp.asarray(zo))
    assert float(mix.alpha) == 0.0
    np.testing.assert_allclose(np.asarray(mix.grad), zo.mean(0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(alpha_order(jnp.asarray(fo), jnp.asarray(zo), alpha=1.0).grad),
                               fo.mean(0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(alpha_order(jnp.asarray(fo), jnp.asarray(zo), alpha=0.0).grad),
                               zo.mean(0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[N, D\] with N >= 2"):
        alpha_order(jnp.ones((1, 3)), jnp.ones((1, 3)))


def test_reward_to_go_and_leave_one_out():
    rew = jnp.asarray([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # [steps, envs]
    done = jnp.asarray([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # env 0's episode ends at step 1
    np.testing.assert_array_equal(np.asarray(reward_to_go(rew, done)), [[3.0, 60.0], [2.0, 50.0], [3.0, 30.0]])
    np.testing.assert_allclose(np.asarray(leave_one_out(jnp.asarray([1.0, 2.0, 6.0]))), [4.0, 3.5, 1.5])


# ---------------------------------------------------------------- the two estimates on a robot (float64)


@pytest.fixture(scope="module")
def reacher_estimates():
    """Both estimates of one 2-step window gradient on 1,024 reachers, float64, plus APG's gradient."""
    with jax.enable_x64(True):
        env = make("reacher", episode_length=50, dtype="float64")
        small = {"num_envs": 1024, "horizon": 2, "hidden": (8,), "dtype": "float64", "obs_norm": False}
        hybrid = Hybrid(env, HybridConfig(**small))
        ts = hybrid.init(jax.random.PRNGKey(0))
        key = jax.random.PRNGKey(1)
        fo, zo, loss, _, _ = hybrid.estimates(ts.params, ts.stats, ts.env_state, key)
        apg = Apg(env, ApgConfig(**small))
        apg_loss, apg_grad, _ = apg.window_grad(ts.params, ts.stats, ts.env_state, key)
        flat_apg = jax.flatten_util.ravel_pytree(apg_grad)[0]
        return tuple(np.asarray(x) for x in (fo, zo, loss, apg_loss, flat_apg))


def test_first_order_mean_is_apgs_gradient(reacher_estimates):
    """Per-robot pathwise samples average to APG's window gradient with the same key (same action noise)."""
    fo, _, loss, apg_loss, apg_grad = reacher_estimates
    np.testing.assert_allclose(loss, apg_loss, rtol=1e-12)
    np.testing.assert_allclose(fo.mean(0), apg_grad, rtol=1e-9, atol=1e-12)


def test_likelihood_ratio_estimate_is_unbiased(reacher_estimates):
    """The zeroth-order mean (no simulator derivative) agrees with the pathwise mean on a smooth robot to within
    its own standard error: cos 0.996 measured; a sign error, a missing log-prob term or a baseline that
    depended on the sample would not."""
    fo, zo, *_ = reacher_estimates
    mf, mz = fo.mean(0), zo.mean(0)
    se = np.sqrt(zo.var(0, ddof=1).sum() / zo.shape[0])
    assert np.linalg.norm(mf - mz) < 2.5 * se
    assert mf @ mz / (np.linalg.norm(mf) * np.linalg.norm(mz)) > 0.98
    assert se < 0.2 * np.linalg.norm(mf)  # the test has power: the noise is small next to the gradient


# ---------------------------------------------------------------- learning and configs


@pytest.fixture(scope="module")
def hybrid_run():
    env = make("inverted_double_pendulum", episode_length=1000)
    return train("hybrid", env, {"total_steps": 40_960, "num_evals": 4, "eval_episodes": 4}, seed=0, progress=False)


def test_hybrid_learns_double_pendulum(hybrid_run):
    m = hybrid_run.metrics
    assert m["best_return"] - m["initial_return"] > 100.0
    assert m["final_return"] - m["initial_return"] > 50.0
    alpha = np.asarray(hybrid_run.history["alpha"])
    assert alpha.shape == (80,) and np.all((alpha >= 0) & (alpha <= 1))
    assert 0.5 < m["alpha_mean"] <= 1.0  # a smooth robot: the analytic gradient carries most of the weight
    assert m["skipped_updates"] == 0.0


def test_bad_hybrid_configs_name_the_field():
    info = get_agent("hybrid")
    for field, value in (("bias_check", -1.0), ("alpha", 1.5), ("alpha", float("nan")), ("num_envs", 1)):
        with pytest.raises(ValueError, match=f"'{field}'"):
            info.default_config("hopper", {field: value})
