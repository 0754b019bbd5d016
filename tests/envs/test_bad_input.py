"""Every bad input raises the documented exception, with a message naming the value and the fix."""

import re

import gymnasium as gym
import numpy as np
import pytest

import gradgym  # noqa: F401
from gradgym.envs import ROBOTS
from gradgym.envs.gym_env import GradGymEnv
from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv
from gradgym.envs.vector_env import GradGymVectorEnv

ANT = ROBOTS["ant"].gym_id
PENDULUM = ROBOTS["inverted_pendulum"].gym_id


@pytest.fixture(scope="module")
def ant():
    env = gym.make(ANT)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize(
    "action, shape",
    [(np.zeros(7, np.float32), r"\(7,\)"), (np.zeros((1, 8), np.float32), r"\(1, 8\)"), (0.0, r"\(\)")],
)
def test_wrong_action_shape(ant, action, shape):
    with pytest.raises(ValueError, match=rf"shape {shape}, expected \(8,\)"):
        ant.step(action)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action(ant, bad):
    action = np.zeros(8, np.float32)
    action[3] = bad
    with pytest.raises(ValueError, match=r"non-finite.*\[\[3\]\].*finite numbers"):
        ant.step(action)
    ant.step(np.zeros(8, np.float32))  # the env is still usable afterwards


def test_non_numeric_action(ant):
    with pytest.raises(ValueError, match="'left'"):
        ant.step("left")


def test_convertible_actions_are_accepted(ant):
    for action in ([0.1] * 8, np.zeros(8, np.float64), np.zeros(8, np.int64)):
        obs, reward, *_ = ant.step(action)
        assert obs.dtype == np.float32 and isinstance(reward, float)


def test_step_before_reset():
    with pytest.raises(gym.error.ResetNeeded, match=r"reset"):
        gym.make(PENDULUM).unwrapped.step(np.zeros(1, np.float32))
    with pytest.raises(gym.error.ResetNeeded):
        gym.make(PENDULUM).step(np.zeros(1, np.float32))  # OrderEnforcing agrees
    with pytest.raises(gym.error.ResetNeeded, match=r"reset\(seed"):
        GradGymVectorEnv("inverted_pendulum", num_envs=2).step(np.zeros((2, 1), np.float32))
    with pytest.raises(gym.error.ResetNeeded, match=r"reset\(\)"):
        GradGymSB3VecEnv("inverted_pendulum", num_envs=2).step(np.zeros((2, 1), np.float32))


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: gym.make(PENDULUM, **kw),
        lambda **kw: gym.make_vec(PENDULUM, num_envs=2, vectorization_mode="vector_entry_point", **kw),
        lambda **kw: GradGymSB3VecEnv("inverted_pendulum", num_envs=2, **kw),
    ],
    ids=["make", "make_vec", "sb3"],
)
def test_unknown_option_and_backend_names(make):
    with pytest.raises(ValueError, match=r"'obs_nosie'.*valid options:.*obs_noise"):
        make(obs_nosie=0.1)
    with pytest.raises(ValueError, match=r"'sprong'.*available: generalized, positional, spring, mjx"):
        make(backend="sprong")
    with pytest.raises(ValueError, match=r"obs_noise must be a finite float >= 0, got -1"):
        make(obs_noise=-1.0)
    with pytest.raises(ValueError, match=r"friction_range must satisfy 0 < low <= high.*\(2.0, 1.0\)"):
        make(friction_range=(2.0, 1.0))


def test_unknown_robot_and_unsupported_backend():
    with pytest.raises(ValueError, match=r"Unknown robot 'antt'; available: ant, "):
        GradGymEnv("antt")
    with pytest.raises(ValueError, match=r"'antt'"):
        GradGymSB3VecEnv("antt")
    with pytest.raises(ValueError, match=r"'swimmer' has no 'spring' backend.*use one of: generalized"):
        GradGymEnv("swimmer", backend="spring")


def test_bad_constructor_values():
    with pytest.raises(ValueError, match=r"render_mode.*'human'"):
        GradGymEnv("inverted_pendulum", render_mode="human")
    with pytest.raises(ValueError, match=r"width must be an int in \[16, 4096\].*0"):
        GradGymEnv("inverted_pendulum", width=0)
    with pytest.raises(ValueError, match=r"num_envs must be a positive int, got 0"):
        GradGymVectorEnv("inverted_pendulum", num_envs=0)
    with pytest.raises(ValueError, match=r"max_episode_steps must be a positive int.*got 0"):
        GradGymVectorEnv("inverted_pendulum", num_envs=2, max_episode_steps=0)
    with pytest.raises(ValueError, match=r"Unknown autoreset_mode 'sometimes'.*NEXT_STEP, SAME_STEP, DISABLED"):
        GradGymVectorEnv("inverted_pendulum", num_envs=2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match=r"takes no options, got \['x'\]"):
        GradGymEnv("inverted_pendulum").reset(seed=0, options={"x": 1})


@pytest.fixture(scope="module")
def venv():
    envs = GradGymVectorEnv("inverted_pendulum", num_envs=4)
    envs.reset(seed=0)
    return envs


@pytest.mark.parametrize("shape", [(3, 1), (4,), (1, 4), (4, 2)])
def test_vector_wrong_batch_shape(venv, shape):
    with pytest.raises(ValueError, match=re.escape(f"actions has shape {shape}, expected (4, 1)")):
        venv.step(np.zeros(shape, np.float32))


def test_vector_non_finite_actions_and_bad_resets(venv):
    actions = np.zeros((4, 1), np.float32)
    actions[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*\[\[2, 0\]\]"):
        venv.step(actions)
    with pytest.raises(ValueError, match=r"list of 4 ints/None, got \[1, 2\]"):
        venv.reset(seed=[1, 2])
    with pytest.raises(ValueError, match=r"reset_mask.*shape \(4,\)"):
        venv.reset(options={"reset_mask": np.ones(3, bool)})
    with pytest.raises(ValueError, match=r"\['foo'\]; only 'reset_mask'"):
        venv.reset(options={"foo": 1})


def test_sb3_bad_actions_and_set_attr():
    sb3 = GradGymSB3VecEnv("inverted_pendulum", num_envs=4)
    sb3.reset()
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(4, 1\)"):
        sb3.step(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"non-finite"):
        sb3.step(np.full((4, 1), np.inf, np.float32))
    with pytest.raises(ValueError, match=r"must target all envs"):
        sb3.set_attr("width", 10, indices=[0])
