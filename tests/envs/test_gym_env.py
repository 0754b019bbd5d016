"""GradGymEnv: both checkers for every registered id, determinism, types, options, no recompiles."""

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import gradgym
from gradgym.envs import ROBOTS
from gradgym.jax_utils import strong_types

ANT = ROBOTS["ant"].gym_id
PENDULUM = ROBOTS["inverted_pendulum"].gym_id


@pytest.mark.parametrize("robot", list(ROBOTS))
def test_both_checkers_pass_for_every_id(robot):
    gym_id = ROBOTS[robot].gym_id
    gym_check_env(gym.make(gym_id).unwrapped, skip_render_check=True)  # .unwrapped keeps the spec
    sb3_check_env(gym.make(gym_id), warn=True)
    env = gym.make(gym_id)
    assert env.spec.max_episode_steps == ROBOTS[robot].max_episode_steps
    assert env.observation_space.dtype == np.float32 and env.action_space.dtype == np.float32
    assert env.unwrapped.metadata["render_fps"] == round(1 / env.unwrapped.core.dt)


def test_module_prefixed_id_imports_gradgym():
    env = gym.make("gradgym:gradgym/Ant-v0")
    assert env.unwrapped.core.robot == "ant"


def test_bit_identical_reruns_across_instances():
    a, b = gym.make(ANT), gym.make(ANT)
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    assert np.array_equal(oa, ob)
    acts = np.random.default_rng(0).uniform(-1, 1, (100, 8)).astype(np.float32)
    for act in acts:
        ra, rb = a.step(act), b.step(act)
        assert np.array_equal(ra[0], rb[0]) and ra[1] == rb[1] and ra[2] == rb[2] and ra[4] == rb[4]
    assert not np.allclose(ra[0], oa)  # it moved


def test_reset_seed_determinism_and_key_from_np_random():
    env = gym.make(PENDULUM).unwrapped
    o1, _ = env.reset(seed=3)
    o2, _ = env.reset(seed=3)
    o3, _ = env.reset(seed=4)
    o4, _ = env.reset()
    assert np.array_equal(o1, o2) and not np.allclose(o1, o3) and not np.allclose(o3, o4)
    # The JAX key is the np_random draw: the core's reset from that key gives the same obs.
    rng, _ = seeding.np_random(3)
    key_seed = rng.integers(0, 2**32 - 1, dtype=np.uint32)
    core_obs = np.asarray(jax.jit(env.core.reset)(jax.random.PRNGKey(key_seed)).obs)
    assert np.array_equal(core_obs, o1)


def test_outputs_are_fresh_writeable_numpy_and_python_scalars():
    env = gym.make(ANT)
    obs, info = env.reset(seed=0)
    assert type(obs) is np.ndarray and obs.dtype == np.float32 and obs.flags.writeable
    a = np.full(8, 0.3, np.float32)
    o1, r, te, tr, i1 = env.step(a)
    assert type(r) is float and type(te) is bool and type(tr) is bool and type(i1["diverged"]) is bool
    assert all(type(v) in (float, bool) for v in i1.values())
    o1_copy = o1.copy()
    o1[:] = 1e6  # mutating a returned obs must not touch the env
    o2, *_ = env.step(a)
    assert not np.shares_memory(o1, o2) and np.all(np.abs(o2) < 1e3)
    env.reset(seed=0)
    assert np.array_equal(env.step(a)[0], o1_copy)


def test_reward_terms_and_unclipped_actions_match_ant_v5():
    env = gym.make(ANT).unwrapped
    a = np.full(8, 0.5, np.float32)
    env.reset(seed=1)
    _, r, _, _, info = env.step(a)
    assert info["reward_ctrl"] == pytest.approx(-0.5 * float(np.sum(a**2)), rel=1e-5)
    parts = info["reward_forward"] + info["reward_survive"] + info["reward_ctrl"] + info["reward_contact"]
    assert r == pytest.approx(parts, rel=1e-5, abs=1e-6)
    # Out-of-range actions: physics clamps to the ctrl range, the ctrl cost uses the raw action.
    env.reset(seed=1)
    o_in, r_in, *_ = env.step(np.ones(8, np.float32))
    env.reset(seed=1)
    o_out, r_out, _, _, i_out = env.step(np.full(8, 10.0, np.float32))
    assert np.array_equal(o_in, o_out)
    assert i_out["reward_ctrl"] == pytest.approx(-0.5 * 8 * 100.0, rel=1e-5) and r_out < r_in - 390


def test_time_limit_through_make():
    env = gym.make(PENDULUM, max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_options_pass_through_make():
    clean, _ = gym.make(PENDULUM).reset(seed=5)
    noisy, _ = gym.make(PENDULUM, obs_noise=0.5).reset(seed=5)
    assert np.all(np.abs(clean) < 0.05) and np.max(np.abs(noisy - clean)) > 0.1  # obs noise of std 0.5
    env = gym.make(PENDULUM, friction_range=(0.5, 0.6), mass_range=(2.0, 2.5))
    frictions = []
    for seed in range(3):
        env.reset(seed=seed)
        phys = env.unwrapped._state.physics
        frictions.append(float(phys.friction))
        assert 0.5 <= float(phys.friction) <= 0.6 and 2.0 <= float(phys.mass) <= 2.5
    assert len(set(frictions)) == 3  # drawn per episode
    assert gym.make(PENDULUM, reset_noise_scale=0.0).unwrapped.core.noise.reset_noise_scale == 0.0
    assert gym.make(PENDULUM, backend="generalized").unwrapped.core.backend == "generalized"
    assert gym.make(ROBOTS["swimmer"].gym_id).unwrapped.core.backend == "generalized"  # its only backend


def test_diverged_step_terminates_then_needs_reset():
    env = gym.make(PENDULUM).unwrapped
    env.reset(seed=0)
    core, good = env.core, env._state
    vec = np.asarray(core.state_vector(good)).copy()
    vec[core.brax_env.sys.q_size()] = np.nan  # a non-finite joint velocity
    bad = core.with_state_vector(good, vec)
    env._state = strong_types(bad.replace(inner=bad.inner.replace(obs=good.inner.obs), obs=good.obs))
    obs, r, te, tr, info = env.step(np.zeros(1, np.float32))
    assert info["diverged"] is True and te is True and tr is False and r == 0.0
    assert np.array_equal(obs, np.asarray(good.obs))  # the last finite observation is kept
    with pytest.raises(gym.error.ResetNeeded, match="diverged.*reset"):
        env.step(np.zeros(1, np.float32))
    env.reset(seed=0)
    assert env.step(np.zeros(1, np.float32))[4]["diverged"] is False


def test_no_recompilation_after_first_step_or_for_second_instance():
    env = gym.make(PENDULUM)
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(1, np.float32))
    fns = env.unwrapped._fns
    sizes = (fns.reset._cache_size(), fns.step._cache_size())
    assert sizes == (1, 1)
    other = gym.make(PENDULUM)
    assert other.unwrapped._fns is fns and other.unwrapped.core is env.unwrapped.core
    other.reset(seed=1)
    for _ in range(3):
        other.step([0.5])  # a list action: converted, still no retrace
    assert (fns.reset._cache_size(), fns.step._cache_size()) == sizes


def test_close_is_idempotent_and_register_is_repeatable():
    env = gym.make(PENDULUM)
    env.close()
    env.close()
    gradgym.register_envs()
    assert PENDULUM in gym.registry
