"""ES specifics: the ARS update against the paper's formula, the survive-bonus shift, linear policies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import get_agent, train
from gradgym.agents.es import Es, EsConfig, make_strategy
from tests.agents.conftest import FAST


def test_ars_update_is_the_papers_formula():
    """One ask/tell of ``strategy="ars"`` moves the mean by Mania et al.'s V1 step (their Algorithm 1):
    m += lr / (b * sigma_R) * sum over the b best directions of (r+ - r-) * delta, where the best are
    ranked by max(r+, r-) and sigma_R is the std of their 2b returns."""
    n_dir, b, lr, sigma = 8, 3, 0.05, 0.1
    cfg = EsConfig(strategy="ars", population_size=2 * n_dir, elite_ratio=b / n_dir, learning_rate=lr, sigma=sigma)
    mean0 = {"w": jnp.linspace(-1.0, 1.0, 5)}
    es, params = make_strategy(cfg, mean0)
    state = es.init(jax.random.PRNGKey(0), mean0, params)
    pop, state = es.ask(jax.random.PRNGKey(1), state, params)
    x = np.asarray(pop["w"], np.float64)
    returns = np.sin(3.0 * x).sum(axis=1) + x[:, 0]  # any function; ES maximises it, evosax minimises -it
    state, _ = es.tell(jax.random.PRNGKey(2), pop, -jnp.asarray(returns, jnp.float32), state, params)

    m = np.asarray(mean0["w"], np.float64)
    delta = (x[:n_dir] - m) / sigma
    r_plus, r_minus = returns[:n_dir], returns[n_dir:]
    np.testing.assert_allclose(x[n_dir:], m - sigma * delta, atol=1e-6)  # antithetic pairs
    best = np.argsort(-np.maximum(r_plus, r_minus))[:b]
    sigma_r = np.std(np.concatenate([r_plus[best], r_minus[best]]))
    expected = m + lr / (b * sigma_r) * ((r_plus[best] - r_minus[best]) @ delta[best])
    np.testing.assert_allclose(np.asarray(es.get_mean(state)["w"]), expected, rtol=1e-5, atol=1e-6)


def test_reward_shift_removes_a_bonus_per_alive_step(pend):
    """The fitness unroll subtracts ``reward_shift`` once per step the robot is alive, nothing after it falls."""
    es = Es(pend, EsConfig(hidden=(8,), horizon=100, reward_shift=0.75))
    plain = Es(pend, EsConfig(hidden=(8,), horizon=100))
    ts = plain.init(jax.random.PRNGKey(0))
    params, stats = plain.policy_params(ts)
    params = jax.tree.map(lambda p: p + 0.5, params)  # a policy that tips the pole over before step 100
    state = pend.reset(jax.random.PRNGKey(3))
    alive = jnp.ones(())
    r0, *_, mask = plain.unroll(params, stats, state, alive, None)
    r1, *_ = es.unroll(params, stats, state, alive, None)
    steps = float(jnp.sum(mask))
    assert 1 < steps < 100  # the episode ended inside the unroll, so the count matters
    np.testing.assert_allclose(float(r0) - float(r1), 0.75 * steps, rtol=1e-6)


def test_ars_linear_policy_learns_pendulum(pend):
    """ARS with a linear policy (``hidden=()``) balances the pendulum, as in Mania et al."""
    cfg = {**FAST, "strategy": "ars", "hidden": (), "population_size": 16, "elite_ratio": 0.5, "sigma": 0.1,
           "learning_rate": 0.05, "horizon": 100, "total_steps": 32_000}
    result = train("es", pend, cfg, seed=0, progress=False)
    w = result.params["params"]
    assert list(w) == ["MLP_0"] and list(w["MLP_0"]) == ["Dense_0"]  # one layer: linear
    r = result.curve.returns
    assert max(r[1:]) >= r[0] + 25.0 and result.final_return >= r[0] + 12.5, r


def test_es_config_errors_name_the_field():
    info = get_agent("es")
    with pytest.raises(ValueError, match="'elite_ratio'"):
        info.default_config("ant", {"elite_ratio": 0.0})
    with pytest.raises(ValueError, match="'elite_ratio'"):
        info.default_config("ant", {"elite_ratio": 1.5})
    with pytest.raises(ValueError, match="'reward_shift'"):
        info.default_config("ant", {"reward_shift": float("nan")})
    with pytest.raises(ValueError, match="'hidden'.*empty: a linear policy"):
        info.default_config("ant", {"hidden": "32"})
    assert info.default_config("ant", {"hidden": []}).hidden == ()
    with pytest.raises(ValueError, match="'value_hidden'.*non-empty"):
        get_agent("ppo").default_config("ant", {"value_hidden": ()})
