"""SHAC's critic options (ensemble, LayerNorm, no target network, fit until the loss plateaus) against plain loops.

The default options leave SHAC as it was: test_shac.py's fused-loop, resume and learning tests run the defaults.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents.checkpoint import load_checkpoint, read_header, save_checkpoint
from gradgym.agents.config import from_dict
from gradgym.agents.normalize import normalize
from gradgym.agents.shac import Shac, ShacConfig
from tests.agents.test_shac import lambda_return_loop

TINY = {"num_envs": 2, "horizon": 4, "critic_minibatches": 2, "hidden": (16, 16), "value_hidden": (16, 16),
        "lr_schedule": "constant"}
RECIPE = {"critic_ensemble": 3, "critic_layernorm": True, "target_network": False, "critic_early_stop": True,
          "critic_iterations": 8}
NEW_FIELDS = ShacConfig.RECORDED_IF_SET


@pytest.fixture(scope="module")
def recipe(pend):
    """The whole recipe on the pendulum, tiny: the agent, its initial state and the state after one iteration."""
    agent = Shac(pend, ShacConfig(**TINY, **RECIPE))
    ts0 = agent.init(jax.random.PRNGKey(0))
    ts1, metrics = agent.iterate(ts0)
    return agent, ts0, ts1, jax.device_get(metrics)


def member(params, e):
    return jax.tree.map(lambda x: x[e], params)


def test_ensemble_members_are_layernormed_mlps_of_their_own(recipe):
    agent, ts0, _, _ = recipe
    shapes = jax.tree.map(np.shape, ts0.critic)["params"]
    assert set(shapes) == {"Dense_0", "Dense_1", "Dense_2", "LayerNorm_0", "LayerNorm_1"}
    assert shapes["Dense_0"]["kernel"] == (3, agent.env.observation_size, 16)
    k = np.asarray(ts0.critic["params"]["Dense_0"]["kernel"])
    assert not np.array_equal(k[0], k[1]) and not np.array_equal(k[1], k[2])  # each member its own init


def test_ensemble_bootstrap_and_targets_match_plain_loop(recipe):
    """The actor pass's bootstrap v_next is the minimum over the members (zero after a termination), and the
    critic's targets are TD(lambda) of it; both against loops over members, envs and steps."""
    agent, ts0, _, _ = recipe
    _, (_, window) = jax.jit(agent.actor_loss)(ts0.actor, ts0.target, ts0.stats, ts0.env_state,
                                               jax.random.PRNGKey(1))
    w = jax.device_get(window)
    N = w.reward.shape[1]
    obs_n = normalize(ts0.stats, w.next_obs)
    values = np.stack([np.asarray(agent.value.apply(member(ts0.target, e), obs_n))[..., 0] for e in range(3)])
    want_v = np.minimum(np.minimum(values[0], values[1]), values[2]) * w.alive
    np.testing.assert_allclose(w.v_next, want_v, rtol=1e-5, atol=1e-6)
    assert np.all(values.min(0) < values.max(0))  # the members disagree everywhere, so the minimum matters
    got = np.asarray(agent.critic_targets(window.reward, window.v_next, window.done))
    ends = np.asarray(w.done, np.float64)
    ends[-1] = 1.0
    want = np.stack([lambda_return_loop(w.reward[:, i], want_v[:, i], ends[:, i], 0.99, 0.95) for i in range(N)], 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    mean = Shac(agent.env, ShacConfig(**TINY, **RECIPE, critic_reduce="mean"))  # the members' average instead
    np.testing.assert_allclose(np.asarray(mean.value_apply(ts0.target, obs_n))[..., 0], values.mean(0), rtol=1e-5,
                               atol=1e-6)


def test_ensemble_loss_is_the_members_mean(recipe):
    agent, ts0, _, _ = recipe
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(6, agent.env.observation_size)), jnp.float32)
    target = jnp.asarray(rng.normal(size=6), jnp.float32)
    want = np.mean([np.mean((np.asarray(agent.value.apply(member(ts0.critic, e), obs))[:, 0] - np.asarray(target)) ** 2)
                    for e in range(3)])
    np.testing.assert_allclose(float(agent.critic_loss(ts0.critic, obs, target)), want, rtol=1e-5)


def test_one_iteration_of_the_recipe(recipe):
    """No target network: V' is the fitted critic itself; the passes used are logged; nothing skipped."""
    _, ts0, ts1, metrics = recipe
    for a, b in zip(jax.tree.leaves(ts1.target), jax.tree.leaves(ts1.critic), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(ts1.critic["params"]["Dense_0"]["kernel"], ts0.critic["params"]["Dense_0"]["kernel"])
    assert 1 <= metrics["critic_passes"] <= RECIPE["critic_iterations"]
    assert np.isfinite(metrics["value_loss"]) and metrics["skipped"] == 0


def test_early_stop_matches_plain_loop(pend):
    """The while-loop fit stops at the same pass, with the same critic, as passes run one at a time from Python
    under the rule: stop after pass j >= 1 when L_{j-1} - L_j < tol |L_{j-1}|."""
    tol, max_passes = 0.05, 40
    agent = Shac(pend, ShacConfig(**{**TINY, "critic_iterations": max_passes, "critic_early_stop": True,
                                        "critic_stop_tol": tol}))
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(8, pend.observation_size)), jnp.float32)
    data = (obs, jnp.sum(obs[:, :3], axis=1) + 1.0)
    critic = agent.value.init(jax.random.PRNGKey(2), obs[0])
    carry = (critic, agent.critic_opt.init(critic), jnp.zeros((), jnp.int32))
    key = jax.random.PRNGKey(3)
    (got_critic, _, _), got_loss, metrics = jax.jit(agent.fit_critic)(carry, data, key)

    epoch = jax.jit(agent.critic_epoch)
    losses, c = [], carry
    for k in jax.random.split(key, max_passes):
        c, mb = epoch(data, c, k)
        losses.append(float(np.mean(np.asarray(mb))))
        if len(losses) > 1 and losses[-2] - losses[-1] < tol * abs(losses[-2]):
            break
    assert 1 < len(losses) < max_passes  # the rule fired, neither at once nor never
    assert int(metrics["critic_passes"]) == len(losses)
    np.testing.assert_allclose(float(got_loss), np.mean(losses), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(got_critic), jax.tree.leaves(c[0]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_checkpoint_round_trip_with_the_new_fields(recipe, tmp_path):
    agent, _, ts1, _ = recipe
    cfg = agent.config
    header = {"agent": "shac", "config": cfg.to_dict()}
    # the recipe's four are set and written; critic_stop_tol is at its default and left out
    assert {k: header["config"][k] for k in NEW_FIELDS if k in header["config"]} == {
        "critic_ensemble": 3, "critic_layernorm": True, "target_network": False, "critic_early_stop": True}
    path = save_checkpoint(tmp_path / "ckpt_00000001.gradgym", ts1, header)
    restored, got = load_checkpoint(path, agent.init(jax.random.PRNGKey(9)), header)
    assert from_dict(ShacConfig, got["config"]) == cfg
    for a, b in zip(jax.tree.leaves(ts1), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert read_header(path)[0]["config"] == header["config"]


def test_config_headers_record_the_new_fields_only_when_set():
    """A default config writes the header older checkpoints have (so they resume), and both rebuild the config."""
    default = ShacConfig(**TINY)
    assert not set(NEW_FIELDS) & set(default.to_dict())
    assert from_dict(ShacConfig, default.to_dict()) == default
    for name, value in {"critic_ensemble": 2, "critic_layernorm": True, "critic_reduce": "mean", "target_network": False,
                        "critic_early_stop": True, "critic_stop_tol": 0.1}.items():
        cfg = ShacConfig(**TINY, **{name: value})
        assert cfg.to_dict()[name] == value and not (set(NEW_FIELDS) - {name}) & set(cfg.to_dict())
        assert from_dict(ShacConfig, cfg.to_dict()) == cfg
