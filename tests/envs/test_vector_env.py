"""GradGymVectorEnv: make_vec, seeding, NEXT_STEP / SAME_STEP / DISABLED autoreset, options, no recompiles."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import gradgym  # noqa: F401  (registers the ids)
from gradgym.envs import ROBOTS
from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv

PENDULUM = ROBOTS["inverted_pendulum"].gym_id
N = 4
ZERO = np.zeros((N, 1), np.float32)


def make_vec(**kwargs):
    return gym.make_vec(PENDULUM, num_envs=N, vectorization_mode="vector_entry_point", **kwargs)


def test_make_vec_spaces_metadata_and_types():
    envs = make_vec()
    assert type(envs.metadata["autoreset_mode"]) is AutoresetMode
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert envs.unwrapped.max_episode_steps == ROBOTS["inverted_pendulum"].max_episode_steps  # from make_vec
    assert envs.observation_space.shape == (N, *envs.single_observation_space.shape)
    assert envs.action_space.shape == (N, 1)
    obs, info = envs.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (N, 4) and obs.flags.writeable
    assert info["_diverged"].all() and info["diverged"].dtype == bool
    obs, rew, term, trunc, info = envs.step(ZERO)
    assert rew.shape == (N,) and rew.dtype == np.float64 and term.dtype == bool and trunc.dtype == bool
    np.testing.assert_array_equal(rew, 1.0)  # inverted pendulum: +1 per step alive


def test_int_and_list_seeds_match_single_envs_seeded_with_seed_plus_i():
    envs = make_vec()
    obs, _ = envs.reset(seed=10)
    single = gym.make(PENDULUM)
    expected = np.stack([single.reset(seed=10 + i)[0] for i in range(N)])
    np.testing.assert_array_equal(obs, expected)
    obs_list, _ = envs.reset(seed=[10, 11, 12, 13])
    np.testing.assert_array_equal(obs_list, expected)
    # Same actions: the batched step agrees with the single env (vmap vs not: tiny float differences allowed).
    acts = np.array([[0.3], [-0.2], [0.1], [0.0]], np.float32)
    singles = []
    for i in range(N):
        single.reset(seed=10 + i)
        singles.append(single.step(acts[i])[0])
    np.testing.assert_allclose(envs.step(acts)[0], np.stack(singles), rtol=1e-5, atol=1e-6)
    assert not np.allclose(envs.reset()[0], expected)  # unseeded reset continues the streams


def run(envs, steps, action=ZERO):
    return [envs.step(action) for _ in range(steps)]


def test_next_step_autoreset_is_fresh_and_ignores_actions():
    envs = make_vec(max_episode_steps=3)
    first, _ = envs.reset(seed=0)
    out = run(envs, 3)
    assert [o[3].all() for o in out] == [False, False, True] and not any(o[2].any() for o in out)
    terminal_obs = out[2][0]
    # The step after done: reset obs, reward 0, flags False, and the action is ignored.
    twin = make_vec(max_episode_steps=3)
    twin.reset(seed=0)
    run(twin, 3)
    obs, rew, term, trunc, _ = envs.step(ZERO)
    obs_twin, *_ = twin.step(np.full((N, 1), 3.0, np.float32))
    np.testing.assert_array_equal(rew, 0.0)
    assert not term.any() and not trunc.any()
    np.testing.assert_array_equal(obs, obs_twin)
    assert not np.allclose(obs, terminal_obs) and not np.allclose(obs, first)  # a fresh reset, not cached
    assert np.all(np.abs(obs) < 0.05)  # ... drawn from the reset distribution
    out = run(envs, 4)  # episode 2 ends at its 3rd step, then episode 3 starts
    assert out[2][3].all() and (out[3][1] == 0).all()
    third = out[3][0]
    assert not np.allclose(third, obs) and len({tuple(r) for r in np.round(third, 7)}) == N


def test_next_step_after_termination():
    envs = make_vec(max_episode_steps=1000)
    envs.reset(seed=1)
    push = np.full((N, 1), 3.0, np.float32)
    steps = 0
    term = np.zeros(N, bool)
    while not term.any() and steps < 200:
        _, _, term, trunc, _ = envs.step(push)
        steps += 1
    assert term.all() and not trunc.any() and steps > 2  # pole fell over: terminated, not truncated
    obs, rew, term2, _, _ = envs.step(push)
    assert (rew == 0).all() and not term2.any() and np.all(np.abs(obs) < 0.05)


def test_same_step_final_obs_matches_terminal_step():
    ref = make_vec(max_episode_steps=3)
    same = make_vec(max_episode_steps=3, autoreset_mode=AutoresetMode.SAME_STEP)
    assert same.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    ref.reset(seed=4)
    same.reset(seed=4)
    acts = np.random.default_rng(0).uniform(-1, 1, (3, N, 1)).astype(np.float32)
    for t in range(3):
        r_obs, r_rew, r_term, r_trunc, _ = ref.step(acts[t])
        obs, rew, term, trunc, info = same.step(acts[t])
        np.testing.assert_array_equal(rew, r_rew)
        np.testing.assert_array_equal(term, r_term)
        np.testing.assert_array_equal(trunc, r_trunc)
        if t < 2:
            assert "final_obs" not in info
            np.testing.assert_array_equal(obs, r_obs)
    assert trunc.all() and info["_final_obs"].all() and info["_final_info"].all()
    assert info["final_obs"].dtype == object and info["final_obs"].shape == (N,)
    np.testing.assert_array_equal(np.stack(info["final_obs"]), r_obs)  # the true terminal obs
    assert info["final_info"]["_diverged"].all()
    assert not np.allclose(obs, r_obs) and np.all(np.abs(obs) < 0.05)  # already reset this step
    obs2, rew2, *_ = same.step(acts[0])
    assert (rew2 == 1).all()  # no dummy step in SAME_STEP mode


def test_disabled_mode_reset_mask():
    envs = make_vec(max_episode_steps=2, autoreset_mode="DISABLED")
    envs.reset(seed=0)
    run(envs, 2)
    with pytest.raises(gym.error.ResetNeeded, match=r"Sub-envs \[0, 1, 2, 3\].*reset_mask"):
        envs.step(ZERO)
    before = envs.unwrapped._state.obs
    mask = np.array([True, False, True, False])
    obs, info = envs.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[~mask], np.asarray(before)[~mask])
    assert not np.allclose(obs[mask], np.asarray(before)[mask])
    np.testing.assert_array_equal(info["_diverged"], mask)
    with pytest.raises(gym.error.ResetNeeded, match=r"\[1, 3\]"):
        envs.step(ZERO)
    envs.reset(options={"reset_mask": ~mask})
    assert not envs.step(ZERO)[3].any()


def test_options_pass_through_make_vec():
    clean, _ = make_vec().reset(seed=3)
    noisy, _ = make_vec(obs_noise=0.5).reset(seed=3)
    assert np.max(np.abs(noisy - clean)) > 0.1
    envs = make_vec(friction_range=(0.5, 0.6))
    envs.reset(seed=0)
    friction = np.asarray(envs.unwrapped._state.physics.friction)
    assert friction.shape == (N,) and np.all((friction >= 0.5) & (friction <= 0.6)) and len(set(friction)) == N


def test_no_recompilation_across_steps_resets_and_instances():
    envs = make_vec(max_episode_steps=2)
    fns = envs.unwrapped._fns
    # The kernels are shared per core env within the process: a test run earlier on this worker may have compiled
    # them for another batch size already, so count what this batch size adds.
    before = (fns.reset._cache_size(), fns.step._cache_size())
    envs.reset(seed=0)
    run(envs, 5)
    sizes = (fns.reset._cache_size(), fns.step._cache_size())
    assert all(0 <= s - b <= 1 for s, b in zip(sizes, before, strict=True)), (before, sizes)
    other = make_vec(max_episode_steps=7)  # another limit is a runtime argument, not a new program
    assert other.unwrapped._fns is fns
    other.reset(seed=[1, 2, 3, 4])
    run(other, 3)
    same = make_vec(max_episode_steps=2, autoreset_mode=AutoresetMode.SAME_STEP)  # the mode is a runtime argument
    same.reset(seed=0)
    run(same, 3)
    sb3 = GradGymSB3VecEnv("inverted_pendulum", num_envs=N, max_episode_steps=2)  # SB3 shares the same kernel
    sb3.reset()
    for _ in range(3):
        sb3.step(ZERO)
    assert (fns.reset._cache_size(), fns.step._cache_size()) == sizes


def test_gymnasium_vector_wrappers_accept_it():
    envs = gym.wrappers.vector.RecordEpisodeStatistics(make_vec(max_episode_steps=3))
    envs.reset(seed=0)
    for _ in range(3):
        *_, info = envs.step(ZERO)
    assert info["_episode"].all() and (info["episode"]["l"] == 3).all() and (info["episode"]["r"] == 3.0).all()
