"""Diagnostics on Brax Ant (float64) at short horizons, and the quick modes that compile the same programs.

Every float64 Ant program here is compiled once for the whole module: the policy gradient at 8 keys and
unrolls up to 8 (``gradient_samples`` and both estimators of ``policy_estimators``), the 21-point loss slice
with one key, and the 12-step closed-loop Jacobians. The quick modes of fig2, fig2x, fig5 and
``gradgym diagnose`` use these shapes, so they run here (conftest.py drops compiled code between modules);
the tests' shapes must stay equal to theirs. Shorter unrolls or fewer keys would not compile much faster
(scans compile their step once): on a loaded 2-core machine the gradient program took 53 s to compile for 2
keys and 2 steps against 51-83 s for 8 and 8, and the Jacobians 34 s for 1 step against 44 s for 12.
"""

import json

import jax
import numpy as np
import pytest

import gradgym
from gradgym.diagnostics import (
    closed_loop_jacobians,
    default_policy,
    fit_growth_rate,
    gradient_stats_vs_horizon,
    init_policy,
)
from tests.diagnostics.quick_scripts import ANT_FLOAT64, SCRIPTS, run_quick

HORIZONS = [1, 2, 4, 8]
SEEDS = 8
ANT_SCRIPTS = [p for p in SCRIPTS if p.stem in ANT_FLOAT64]


@pytest.fixture(scope="module")
def ant():
    with jax.enable_x64(True):
        env = gradgym.make("ant", dtype="float64")
        _, policy_fn = default_policy(env.action_size)
        params = init_policy(env, jax.random.PRNGKey(0))
    return env, policy_fn, params


def test_variance_grows_faster_for_random_init_than_scaled_init(ant):
    env, policy_fn, params = ant
    with jax.enable_x64(True):
        small = jax.tree.map(lambda p: 0.01 * p, params)
        big = gradient_stats_vs_horizon(env, policy_fn, params, HORIZONS, jax.random.PRNGKey(1), SEEDS)
        sml = gradient_stats_vs_horizon(env, policy_fn, small, HORIZONS, jax.random.PRNGKey(1), SEEDS)
    rate_big = fit_growth_rate(big["horizons"], big["variance"])["rate"]
    rate_small = fit_growth_rate(sml["horizons"], sml["variance"])["rate"]
    # Measured: variance growth 0.259/step (random init) vs 0.101/step (x 0.01), ratio 2.6; from T=1 to T=8 the
    # variance grows x8.8 vs x1.8.
    assert rate_big > 0.1, big  # clear exponential growth per step for the random init
    assert rate_big > 1.5 * rate_small, (rate_big, rate_small)
    assert big["variance"][-1] / big["variance"][0] > 2 * sml["variance"][-1] / sml["variance"][0]
    assert all(n == 0 for n in big["num_nonfinite"] + sml["num_nonfinite"])


def test_closed_loop_jacobian_matches_finite_differences(ant):
    env, policy_fn, params = ant
    with jax.enable_x64(True):
        out = closed_loop_jacobians(env, policy_fn, params, jax.random.PRNGKey(2), 12)
        jac = out["jacobians"]
        assert jac.shape == (12, env.state_size, env.state_size)
        assert np.all(np.isfinite(jac))
        # Column 20 (a joint velocity) of the first Jacobian by central differences of the closed-loop step
        # from the first state (the reset runs inside the compiled step: run eagerly it costs ~150 one-op compiles).
        k_reset, k_pol = jax.random.split(jax.random.PRNGKey(2))
        k0 = jax.random.split(k_pol, 12)[0]

        @jax.jit
        def f(vec):
            s = env.with_state_vector(env.reset(k_reset), vec)
            return env.state_vector(env.step(s, policy_fn(params, s.obs, k0)))

        v = out["states"][0]
        e = np.zeros(env.state_size)
        e[20] = 1e-6
        fd = (np.asarray(f(v + e)) - np.asarray(f(v - e))) / 2e-6
    np.testing.assert_allclose(jac[0][:, 20], fd, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("path", ANT_SCRIPTS, ids=[p.stem for p in ANT_SCRIPTS])
def test_script_quick_mode(path, tmp_path):
    run_quick(path, tmp_path)


def test_diagnose_cli_quick(tmp_path):
    from gradgym.cli import main

    out = tmp_path / "report"
    assert main(["diagnose", "--env", "ant", "--quick", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["runs"]) == {"init x 1", "init x 0.01"}
    for run in rep["runs"].values():
        assert run["horizon"]["horizons"] == [1, 2, 4, 8]
        assert 1 <= run["recommendation"]["horizon"] <= 8
        assert len(run["spectrum"]["step_max_abs"]) == 12
    text = (out / "summary.md").read_text()
    assert "recommended truncation" in text and "Rule" in text
    for name in ("horizon.png", "spectrum.png", "slices.png"):
        assert (out / name).stat().st_size > 5000
