"""Brax robots as a pure differentiable JAX core, with Gymnasium and SB3 shells."""

from gradgym.envs.core import GRAD_PATHS, NOISE_OPTIONS, BraxEnv, NoiseConfig, PhysicsParams, State, make
from gradgym.envs.functional import Trajectory, open_loop_rollout, rollout, step_jacobian
from gradgym.envs.robots import BACKENDS, DEFAULT_BACKEND, ROBOTS, RobotSpec, get_robot

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "GRAD_PATHS",
    "NOISE_OPTIONS",
    "ROBOTS",
    "BraxEnv",
    "NoiseConfig",
    "PhysicsParams",
    "RobotSpec",
    "State",
    "Trajectory",
    "get_robot",
    "make",
    "open_loop_rollout",
    "rollout",
    "step_jacobian",
]
