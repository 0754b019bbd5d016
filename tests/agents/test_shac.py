"""SHAC: TD(lambda) targets vs a plain loop, learning, checkpoints, bad configs (gradients: test_window_gradients.py)."""

import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import get_agent, train
from gradgym.agents.checkpoint import read_header
from gradgym.agents.shac import Shac, ShacConfig, td_lambda_targets
from tests.agents.conftest import assert_same_as_plain_loop

# One config for the learning and checkpoint tests: they share the compiled program.
SHAC_CFG = {"num_envs": 16, "horizon": 16, "total_steps": 20_480, "eval_episodes": 8, "num_evals": 4}



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


def test_shac_fused_loop_equals_plain_loop(shac_run, pend):
    """Measured (2026-11-29): the fused run's curve and actor losses equal the plain loop's bit for bit; the
    critic's loss first differs at update 17 in its last bits (XLA rounds the critic's minibatch loop differently
    inside the fused loop): per-update metrics within 5e-4 relative, parameters within 1e-5."""
    _, result = shac_run
    assert_same_as_plain_loop(result, pend, exact_updates=16)


def test_default_critic_options_leave_shac_as_it_was(shac_run):
    """With the critic options at their defaults (one critic, no LayerNorm, a target network, fixed epochs) the
    run logs the metrics it always did and writes the checkpoint header older versions wrote, so their
    checkpoints resume into it (test_shac_resume_is_bit_identical resumes one)."""
    d, result = shac_run
    assert set(result.history) == {"loss", "grad_norm", "value_loss", "skipped"}
    header = read_header(sorted(d.iterdir())[0])[0]
    assert not set(ShacConfig.RECORDED_IF_SET) & set(header["config"])
    assert header["config"] == result.config.to_dict()


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
        ("critic_ensemble", 0),
        ("critic_layernorm", "yes"),
        ("critic_reduce", "max"),
        ("target_network", 1),
        ("critic_early_stop", None),
        ("critic_stop_tol", -0.1),
        ("critic_stop_tol", float("nan")),
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
