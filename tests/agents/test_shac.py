"""SHAC: TD(lambda) targets vs a plain loop, the actor gradient vs APG's, learning, checkpoints, bad configs."""

import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import get_agent, train
from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.shac import Shac, ShacConfig, td_lambda_targets
from gradgym.envs import make

# One config for the learning and checkpoint tests: they share the compiled program.
SHAC_CFG = {"num_envs": 16, "horizon": 16, "total_steps": 20_480, "eval_episodes": 8, "num_evals": 4}


@pytest.fixture(scope="module")
def reacher():
    return make("reacher", episode_length=50)


def lambda_return_loop(r, v, ends, gamma, lam):
    """Reference: the lambda-return as the weighted sum of n-step returns, one step at a time."""
    T = len(r)
    out = np.zeros(T)
    for t in range(T):
        e = next(k for k in range(t, T) if ends[k])  # last step of t's segment
        N = e - t + 1
        n_step = []
        for n in range(1, N + 1):
            g = sum(gamma**k * r[t + k] for k in range(n)) + gamma**n * v[t + n - 1]
            n_step.append(g)
        out[t] = (1 - lam) * sum(lam ** (n - 1) * n_step[n - 1] for n in range(1, N)) + lam ** (N - 1) * n_step[-1]
    return out


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (0.97, 1.0), (0.5, 0.5)])
def test_td_lambda_targets_match_plain_loop(gamma, lam):
    rng = np.random.default_rng(0)
    T, n = 12, 5
    r = rng.normal(size=(T, n))
    v = rng.normal(size=(T, n))
    ends = (rng.random((T, n)) < 0.2).astype(np.float64)
    ends[-1] = 1.0
    with jax.enable_x64(True):
        got = np.asarray(td_lambda_targets(jnp.asarray(r), jnp.asarray(v), jnp.asarray(ends), gamma, lam))
    want = np.stack([lambda_return_loop(r[:, i], v[:, i], ends[:, i], gamma, lam) for i in range(n)], 1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_critic_targets_end_the_window(reacher):
    """The window's last step bootstraps from v (a segment end) even when no episode ended."""
    agent = Shac(reacher, ShacConfig(num_envs=2, horizon=3, critic_minibatches=1))
    r = jnp.ones((3, 2))
    v = jnp.full((3, 2), 10.0)
    g = np.asarray(agent.critic_targets(r, v, jnp.zeros((3, 2))))
    np.testing.assert_allclose(g[-1], 1.0 + 0.99 * 10.0, rtol=1e-6)
    lam = 0.95
    np.testing.assert_allclose(g[-2], 1.0 + 0.99 * ((1 - lam) * 10.0 + lam * g[-1]), rtol=1e-6)


def test_horizon_one_zero_critic_gradient_equals_apg(reacher):
    n = 8
    apg = Apg(reacher, ApgConfig(num_envs=n, horizon=1, hidden=(16, 16)))
    shac = Shac(reacher, ShacConfig(num_envs=n, horizon=1, hidden=(16, 16), critic_minibatches=1))
    ts = apg.init(jax.random.PRNGKey(0))
    # Observation statistics that are not the identity, so normalisation is part of both gradients.
    from gradgym.agents.normalize import update_stats

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
    """A 4-step SHAC (gamma 1, 3 critic windows) and its jitted window gradient, shared by two tests."""
    agent = Shac(reacher, ShacConfig(num_envs=4, horizon=4, gamma=1.0, hidden=(16, 16), critic_minibatches=1,
                                     critic_windows=3))
    return agent, jax.jit(jax.grad(agent.actor_loss, has_aux=True))


def test_truncated_window_gradient_equals_truncated_apg(reacher, shac_h4):
    """gamma=1 and a zero critic make SHAC's window loss APG's mean reward; with truncation 2 of a 4-step
    window both stop the gradient at the same steps, so the gradients agree, and differ from the
    untruncated one."""
    agent, grad = shac_h4
    apg = Apg(reacher, ApgConfig(num_envs=4, horizon=4, truncation=2, hidden=(16, 16)))
    ts = apg.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(3)
    _, g_apg, _ = apg.window_grad(ts.params, ts.stats, ts.env_state, key)
    truncated = Shac(reacher, dataclasses.replace(agent.config, truncation=2))
    zero = jax.tree.map(jnp.zeros_like, agent.init(jax.random.PRNGKey(1)).critic)
    g_trunc = jax.grad(truncated.actor_loss, has_aux=True)(ts.params, zero, ts.stats, ts.env_state, key)[0]
    g_full = grad(ts.params, zero, ts.stats, ts.env_state, key)[0]
    for a, b in zip(jax.tree.leaves(g_apg), jax.tree.leaves(g_trunc), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(g_trunc), jax.tree.leaves(g_full),
                                                     strict=True))


def test_critic_replay_stores_windows_and_recomputes_their_targets(shac_h4):
    """critic_windows=3: the newest window goes to the front, the first fills every slot, and a stored
    window's targets recomputed from its next observations equal the ones the actor pass computed."""
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
    from gradgym.agents.normalize import normalize

    v_old = agent.v(ts.critic, normalize(ts.stats, r2["next_obs"][1])) * r2["alive"][1]
    np.testing.assert_allclose(np.asarray(agent.critic_targets(r2["reward"][1], v_old, r2["done"][1])),
                               np.asarray(agent.critic_targets(w1[2], w1[4], w1[5])), rtol=1e-5, atol=1e-6)
    out, metrics = agent.iterate(ts)
    assert int(out.replay["count"]) == 1 and np.isfinite(float(metrics["value_loss"]))

@pytest.fixture(scope="module")
def shac_run(pend, tmp_path_factory):
    d = tmp_path_factory.mktemp("shac_ckpt")
    return d, train("shac", pend, SHAC_CFG, seed=0, checkpoint_dir=str(d), progress=False)


def test_shac_learns_pendulum_through_its_critic(shac_run):
    """The pendulum pays a constant 1 per upright step, so the reward's own gradient is zero (APG cannot
    learn it); SHAC's gradient flows through the critic's value of the window's last state. The initial
    policy balances ~63 of 100 steps (a random policy far fewer); SHAC must balance the whole episode."""
    _, result = shac_run
    r = result.curve.returns
    assert len(r) == SHAC_CFG["num_evals"] + 1
    assert r[0] < 80.0, f"initial return {r[0]} unexpectedly high"
    assert result.final_return >= 95.0, f"shac returns {r} did not reach 95 of 100"
    assert result.metrics["skipped_updates"] == 0
    assert result.metrics["grad_norm_mean"] > 0 and np.isfinite(result.metrics["grad_norm_max"])


def test_shac_resume_is_bit_identical(shac_run, pend, tmp_path):
    d, full = shac_run
    first = sorted(d.iterdir())[0]
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(first, half)
    resumed = train("shac", pend, SHAC_CFG, seed=0, checkpoint_dir=str(half), resume=True, progress=False)
    assert resumed.curve.env_steps == full.curve.env_steps
    assert resumed.curve.returns == full.curve.returns  # bit-identical floats
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(full.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "field,value",
    [
        ("horizon", 0),
        ("num_envs", -1),
        ("critic_minibatches", 7),
        ("actor_lr", 0.0),
        ("critic_lr", float("nan")),
        ("betas", (0.9,)),
        ("betas", (0.9, 1.5)),
        ("gamma", 1.2),
        ("lam", -0.1),
        ("target_alpha", 2.0),
        ("max_grad_norm", 0.0),
        ("reward_scale", -1.0),
        ("value_hidden", ()),
        ("obs_norm", "yes"),
        ("dtype", "float16"),
        ("critic_iterations", 1.5),
        ("critic_windows", 0),
        ("truncation", 3),
        ("lr_schedule", "cosine"),
    ],
)
def test_bad_configs_name_the_field(field, value):
    name = field.split("[")[0]
    with pytest.raises(ValueError, match=name):
        get_agent("shac").default_config("reacher", {field: value})


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match="'horizn'"):
        get_agent("shac").default_config("reacher", {"horizn": 8})


def test_auto_horizon_resolves_to_diagnose_recommendation(reacher, monkeypatch):
    import gradgym.agents.shac as shac_mod

    monkeypatch.setattr(shac_mod, "AUTO_HORIZONS", (1, 2, 4))  # a short grid: one small compile
    cfg = get_agent("shac").default_config("reacher", {"horizon": "auto", "num_envs": 4, "critic_minibatches": 1})
    with pytest.raises(ValueError, match="'auto' must be resolved first"):
        Shac(reacher, cfg)
    resolved = shac_mod.resolve_for_env(cfg, reacher, seed=0)
    assert resolved.horizon in (1, 2, 4) and dataclasses.replace(resolved, horizon="auto") == cfg
    rec = shac_mod.recommended_horizon(reacher, cfg, jax.random.PRNGKey(0))
    assert resolved.horizon == rec["horizon"]
    # The rule: every unroll up to the recommendation keeps its variance within 100x of the best shorter one.
    usable = [r <= 100.0 for r in rec["ratios"]]
    assert len(usable) == 3 and all(usable[: (1, 2, 4).index(rec["horizon"]) + 1])
    fixed = dataclasses.replace(cfg, horizon=8)
    assert shac_mod.resolve_for_env(fixed, reacher, seed=0) is fixed
