"""GradGymSB3VecEnv: SB3's VecEnv contract (same-step autoreset, seeds, infos) and PPO/SAC on it."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from gradgym.envs import ROBOTS
from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv

PENDULUM = ROBOTS["inverted_pendulum"].gym_id
N = 4
ZERO = np.zeros((N, 1), np.float32)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only add contention on small CI machines
    yield
    torch.set_num_threads(threads)


def test_is_a_vecenv_with_single_env_spaces_and_defaults():
    venv = GradGymSB3VecEnv("inverted_pendulum", num_envs=N)
    assert isinstance(venv, VecEnv) and venv.num_envs == N
    assert venv.observation_space.shape == (4,) and venv.action_space.shape == (1,)
    assert venv.max_episode_steps == ROBOTS["inverted_pendulum"].max_episode_steps
    assert venv.get_attr("render_mode") == [None] * N and venv.get_attr("num_envs", [0, 2]) == [N, N]
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * N
    assert venv.env_method("get_attr", "max_episode_steps", indices=[1]) == [[1000] * N]
    venv.set_attr("width", 320)
    assert venv.width == 320


def test_seed_is_consumed_on_next_reset():
    venv = GradGymSB3VecEnv("inverted_pendulum", num_envs=N)
    venv.seed(5)
    obs = venv.reset()
    assert venv._seeds == [None] * N and len(venv.reset_infos) == N
    # seed(s) means seed s + i per env, as gymnasium make_vec(...).reset(seed=s)
    ref, _ = gym.make_vec(PENDULUM, num_envs=N, vectorization_mode="vector_entry_point").reset(seed=5)
    np.testing.assert_array_equal(obs, ref)
    assert obs.dtype == np.float32 and obs.flags.writeable
    assert not np.allclose(venv.reset(), obs)  # no seed: fresh draws
    venv.seed(5)
    np.testing.assert_array_equal(venv.reset(), obs)
    venv.set_options({"foo": 1})
    with pytest.raises(ValueError, match=r"'foo'.*set_options\(None\)"):
        venv.reset()
    venv.set_options(None)
    venv.reset()


def test_time_limit_same_step_autoreset_and_terminal_observation():
    venv = GradGymSB3VecEnv("inverted_pendulum", num_envs=N, max_episode_steps=3)
    ref = gym.make_vec(PENDULUM, num_envs=N, vectorization_mode="vector_entry_point", max_episode_steps=3)
    venv.seed(0)
    venv.reset()
    ref.reset(seed=0)
    for t in range(3):
        obs, rew, dones, infos = venv.step(ZERO)
        r_obs, r_rew, *_ = ref.step(ZERO)
        assert rew.dtype == np.float32 and dones.dtype == bool and rew.shape == dones.shape == (N,)
        np.testing.assert_array_equal(rew, r_rew.astype(np.float32))
        assert dones.all() == (t == 2) and isinstance(infos, list) and len(infos) == N
    for i in range(N):
        term = infos[i]["terminal_observation"]
        assert term.dtype == np.float32 and term.shape == (4,)
        np.testing.assert_array_equal(term, r_obs[i])  # the true last obs
        assert infos[i]["TimeLimit.truncated"] is True
    assert not np.allclose(obs, r_obs) and np.all(np.abs(obs) < 0.05)  # already the next episode's obs


def test_termination_is_not_a_timeout():
    venv = GradGymSB3VecEnv("inverted_pendulum", num_envs=N)
    venv.seed(1)
    venv.reset()
    push = np.full((N, 1), 3.0, np.float32)
    dones = np.zeros(N, bool)
    while not dones.any():
        _, _, dones, infos = venv.step(push)
    assert dones.all() and all(info["TimeLimit.truncated"] is False for info in infos)


def test_vecmonitor_episode_statistics():
    venv = VecMonitor(GradGymSB3VecEnv("inverted_pendulum", num_envs=N, max_episode_steps=3))
    venv.seed(0)
    venv.reset()
    for _ in range(3):
        _, _, dones, infos = venv.step(ZERO)
    assert dones.all() and [info["episode"]["l"] for info in infos] == [3] * N
    assert [info["episode"]["r"] for info in infos] == [3.0] * N


def test_ppo_and_sac_train_unchanged():
    venv = VecMonitor(GradGymSB3VecEnv("inverted_pendulum", num_envs=N, max_episode_steps=50))
    ppo = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=2, seed=0, device="cpu")
    ppo.learn(128)
    assert ppo.num_timesteps == 128 and len(ppo.ep_info_buffer) > 0
    sac = SAC("MlpPolicy", venv, learning_starts=32, batch_size=32, seed=0, device="cpu")
    sac.learn(64)
    assert sac.num_timesteps == 64 and sac.replay_buffer.size() == 64 // N
    for model in (ppo, sac):
        assert all(torch.isfinite(p).all() for p in model.policy.parameters())
