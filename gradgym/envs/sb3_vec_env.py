"""``GradGymSB3VecEnv``: the batched Brax core as a Stable-Baselines3 ``VecEnv``.

SB3 rejects Gymnasium ``VectorEnv`` objects, so this shell speaks SB3's own
protocol over the same jitted batched kernel as
:class:`~gradgym.envs.vector_env.GradGymVectorEnv`: single-env spaces, actions
``(n, act)``, same-step autoreset with ``infos[i]["terminal_observation"]`` and
``infos[i]["TimeLimit.truncated"]``, seeds/options consumed on the next reset.
Any SB3 algorithm (PPO, SAC, ...) trains on it unchanged; wrap it in
``VecMonitor`` for episode statistics.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from gradgym.envs import render as _render
from gradgym.envs.core import State
from gradgym.envs.robots import get_robot
from gradgym.envs.shell import check_action, make_core
from gradgym.envs.vector_env import MODES, NO_LIMIT, SeedStreams, batched, check_max_steps, check_num_envs
from gradgym.sharding import BatchPlacer


class GradGymSB3VecEnv(VecEnv):
    """``num_envs`` copies of a Brax robot for Stable-Baselines3.

    Example::

        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import VecMonitor
        venv = VecMonitor(GradGymSB3VecEnv("ant", num_envs=8))
        PPO("MlpPolicy", venv).learn(100_000)

    Args:
        robot: Brax robot name.
        num_envs: batch size.
        backend: physics backend; ``None`` = the robot's default.
        max_episode_steps: per-env time limit; default = the robot's registered limit;
            ``None``/-1 = never truncate.
        render_mode: ``None`` or ``"rgb_array"`` (``get_images`` / ``render``).
        width: frame width.
        height: frame height.
        devices: ``None`` (default): the batch lives on JAX's default device. An int N (or
            ``"all"``): split it over the first N of ``jax.devices()`` (``num_envs`` must be
            divisible by N); see :mod:`gradgym.sharding`.
        **options: noise options of :func:`gradgym.envs.make`.
    """

    _DEFAULT = object()

    def __init__(
        self,
        robot: str = "ant",
        num_envs: int = 1,
        backend: str | None = None,
        max_episode_steps: Any = _DEFAULT,
        render_mode: str | None = None,
        width: int = _render.DEFAULT_WIDTH,
        height: int = _render.DEFAULT_HEIGHT,
        devices: int | str | None = None,
        **options: Any,
    ):
        self.core = make_core(robot, backend, options)
        if max_episode_steps is self._DEFAULT:
            max_episode_steps = get_robot(robot).max_episode_steps
        self._max_steps = np.int32(check_max_steps(max_episode_steps))
        self.max_episode_steps = None if self._max_steps == NO_LIMIT else int(self._max_steps)
        if render_mode is not None and render_mode != "rgb_array":
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
        self.render_mode = render_mode
        self.width, self.height = _render._check_size(width, height)
        low, high = self.core.action_bounds
        act_space = gymnasium.spaces.Box(low, high, dtype=np.float32)
        n_obs = self.core.observation_size
        obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self._fns = batched(self.core)
        self._streams = SeedStreams(check_num_envs(num_envs))
        self._place = BatchPlacer(devices, int(num_envs))
        self._state: State | None = None
        self._actions: np.ndarray | None = None
        self._renderer: _render.FrameRenderer | None = None
        super().__init__(int(num_envs), obs_space, act_space)
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.core.dt))}

    # -- core protocol ----------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seeds for the next ``reset``: ``seed + i`` for env ``i`` (SB3's convention); ``None`` draws one."""
        if seed is not None and (
            isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise ValueError(f"seed must be None or an int >= 0, got {reprlib.repr(seed)}.")
        return super().seed(None if seed is None else int(seed))

    def reset(self) -> np.ndarray:
        """Resets all envs with the seeds from ``seed()`` (then forgotten); reset infos in ``reset_infos``."""
        seeds = None
        if any(s is not None for s in self._seeds):
            seeds = [None if s is None else int(s) for s in self._seeds]
        if any(self._options):
            raise ValueError(f"GradGymSB3VecEnv takes no reset options, got {self._options}; call set_options(None).")
        self._state, obs, scal = self._place(self._fns.reset(self._streams.draw(seeds)))
        obs = np.array(jax.device_get(obs))
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Cannot step before reset(): call venv.reset() first.")
        self._actions = check_action(actions, (self.num_envs, *self.action_space.shape), "actions")

    def step_wait(self):
        """One jitted batched step with same-step autoreset (SB3's convention)."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions).")
        no_reset, same_step = np.zeros(self.num_envs, bool), np.int32(MODES[AutoresetMode.SAME_STEP])
        self._state, _, obs, final_obs, scal, _ = self._place(self._fns.step(
            self._state, no_reset, self._actions, self._max_steps, same_step
        ))
        self._actions = None
        obs, scal = jax.device_get((obs, scal))
        scal = np.asarray(scal)
        terminated, truncated = scal[:, 1] > 0, scal[:, 2] > 0
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs = jax.device_get(final_obs)
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = np.array(final_obs[i], dtype=np.float32)
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        for i in np.flatnonzero(scal[:, 3] > 0):
            infos[i]["diverged"] = True
        return np.array(obs), scal[:, 0].astype(np.float32), dones, infos

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.closed = True

    # -- attribute access (all sub-envs share one object) -----------------------
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if self._indices(indices) != list(range(self.num_envs)):
            raise ValueError(
                f"set_attr({attr_name!r}) must target all envs (indices=None): they share one batched core."
            )
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One uint8 (H, W, 3) frame per env (needs ``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            raise ValueError("get_images() needs render_mode='rgb_array' when making GradGymSB3VecEnv.")
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Cannot render before reset().")
        if self._renderer is None:
            self._renderer = _render.FrameRenderer(self.core.brax_env.sys, self.width, self.height)
        ps = jax.device_get(self._state.inner.pipeline_state)
        return [self._renderer.render(jax.tree.map(lambda x, i=i: x[i], ps)) for i in range(self.num_envs)]
