"""Registers ``gradgym/<Robot>-v0`` with Gymnasium (idempotent)."""

from __future__ import annotations

import gymnasium

from gradgym.envs.robots import ROBOTS


def register_envs() -> None:
    """Registers every robot; safe to call repeatedly."""
    for spec in ROBOTS.values():
        if spec.gym_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=spec.gym_id,
            entry_point="gradgym.envs.gym_env:GradGymEnv",
            vector_entry_point="gradgym.envs.vector_env:GradGymVectorEnv",
            max_episode_steps=spec.max_episode_steps,
            nondeterministic=False,
            kwargs={"robot": spec.name},
        )
