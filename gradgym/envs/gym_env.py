"""``GradGymEnv``: one Brax robot behind the ``gymnasium.Env`` API.

A thin stateful shell over the functional core (:mod:`gradgym.envs.core`): it
owns the RNG (``self.np_random``), converts JAX outputs to numpy float32
copies / Python ``float`` / Python ``bool``, validates actions, and renders.
Compiled ``reset``/``step`` are cached per core env object (the shells' one
cache, :mod:`gradgym.envs.compiled`), and the core env is cached per options,
so a second instance with the same options (or Gymnasium's checker re-making
the env) does not recompile.
"""

from __future__ import annotations

import collections
import os
import reprlib
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from gradgym.envs import render as _render
from gradgym.envs.compiled import compiled
from gradgym.envs.core import BraxEnv, State
from gradgym.envs.robots import get_robot
from gradgym.envs.shell import check_action, make_core
from gradgym.jax_utils import strong_types

MAX_RECORDED_STEPS = 10_000
"""The Env keeps the states of at most this many latest steps for :meth:`GradGymEnv.save_html`."""


class Single:
    """Jitted single-env ``reset(seed)``/``step(state, action)`` of one core env.

    Build with ``compiled(env, Single)`` (:mod:`gradgym.envs.compiled`) so it is made once per core env.

    Both return ``(state, packed)``: one float32 vector holding the
    observation, then reward, terminated, diverged and the metrics (sorted
    names in :attr:`metrics`, set when a function is first traced), so each
    call costs a single host transfer.
    """

    def __init__(self, env: BraxEnv):
        self.metrics: tuple[str, ...] = ()

        def scalars(state: State) -> jax.Array:
            self.metrics = tuple(sorted(state.metrics))
            parts = [state.reward, state.terminated, state.diverged] + [state.metrics[k] for k in self.metrics]
            scal = jnp.stack([jnp.asarray(p, jnp.float32).reshape(()) for p in parts])
            return jnp.concatenate([state.obs.astype(jnp.float32), scal])

        def reset(seed: jax.Array):
            state = strong_types(env.reset(jax.random.PRNGKey(seed)))
            return state, scalars(state)

        def step(state: State, action: jax.Array):
            state = strong_types(env.step(state, action))
            return state, scalars(state)

        self.reset, self.step = jax.jit(reset), jax.jit(step)


class GradGymEnv(gymnasium.Env):
    """A differentiable Brax robot as a Gymnasium environment.

    Made by ``gymnasium.make("gradgym/Ant-v0", **options)`` (after ``import
    gradgym``, or ``gymnasium.make("gradgym:gradgym/Ant-v0")``). Observations
    are float32 numpy copies; rewards are Python floats; ``terminated`` is set
    when the robot is unhealthy or the physics diverged; ``truncated`` is always
    ``False`` here (``gymnasium.make`` adds ``TimeLimit`` with the robot's
    ``max_episode_steps``).

    Actions are **not clipped**, as in Gymnasium's Ant-v5: the physics clamps
    controls to the actuators' ranges, while the control cost uses the raw
    action. Actions of the wrong shape or with NaN/inf raise ``ValueError``.
    After a diverged step (``info["diverged"]``) the next ``step`` raises
    ``gymnasium.error.ResetNeeded``.

    Args:
        robot: Brax robot name (``gradgym.envs.ROBOTS``).
        backend: physics backend; ``None`` = the robot's default.
        render_mode: ``None`` or ``"rgb_array"``.
        width: frame width in pixels for ``render``.
        height: frame height in pixels for ``render``.
        record: keep the states since reset for :meth:`save_html` (costs ~25% of
            step speed); ``None`` = record when ``render_mode`` is set.
        **options: noise options of :func:`gradgym.envs.make`: ``reset_noise_scale``,
            ``action_noise``, ``obs_noise``, ``friction_range``, ``mass_range``
            (or ``noise=NoiseConfig(...)``).

    ## Version History
    * v0: initial release (Brax 0.14.2 robots; float32 observations; Ant-v5-style
      unclipped actions; ``info["diverged"]``).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        robot: str = "ant",
        backend: str | None = None,
        render_mode: str | None = None,
        width: int = _render.DEFAULT_WIDTH,
        height: int = _render.DEFAULT_HEIGHT,
        record: bool | None = None,
        **options: Any,
    ):
        self.core = make_core(robot, backend, options)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}."
            )
        self.render_mode = render_mode
        self.width, self.height = _render._check_size(width, height)
        self.metadata = {**type(self).metadata, "render_fps": int(round(1.0 / self.core.dt))}
        low, high = self.core.action_bounds
        self.action_space = gymnasium.spaces.Box(low=low, high=high, dtype=np.float32)
        n_obs = self.core.observation_size
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self._fns = compiled(self.core, Single)
        self._state: State | None = None
        self._diverged = False
        self.record = render_mode is not None if record is None else bool(record)
        self._states: collections.deque = collections.deque(maxlen=MAX_RECORDED_STEPS + 1)
        self._renderer: _render.FrameRenderer | None = None

    # -- conversion -----------------------------------------------------------
    def _outputs(self, state: State, packed: jax.Array):
        self._state = state
        if self.record:
            self._states.append(state.inner.pipeline_state)
        packed = np.asarray(packed)
        n = self.observation_space.shape[0]
        vals = packed[n:].tolist()
        info: dict[str, Any] = dict(zip(self._fns.metrics, vals[3:], strict=True))
        info["diverged"] = self._diverged = bool(vals[2])
        return packed[:n].copy(), float(vals[0]), bool(vals[1]), info

    # -- gymnasium API ------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Starts an episode; the JAX key is drawn from ``self.np_random``."""
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"reset options must be None or a dict, got {reprlib.repr(options)}; pass options=None.")
        if options:
            raise ValueError(f"GradGymEnv.reset takes no options, got {sorted(options, key=repr)}; pass options=None.")
        key_seed = self.np_random.integers(0, 2**32 - 1, dtype=np.uint32)
        self._states.clear()
        obs, _, _, info = self._outputs(*self._fns.reset(key_seed))
        return obs, info

    def step(self, action: Any):
        """Advances one control step; returns (obs, reward, terminated, truncated=False, info)."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Cannot call step() before reset(): call env.reset(seed=...) first.")
        if self._diverged:
            raise gymnasium.error.ResetNeeded(
                "The physics diverged (non-finite state) on the last step, so the episode is over: call reset()."
            )
        a = check_action(action, self.action_space.shape)
        obs, reward, terminated, info = self._outputs(*self._fns.step(self._state, a))
        return obs, reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """With ``render_mode="rgb_array"``: the current frame as a uint8 (H, W, 3) array."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called without a render_mode; make the env with render_mode='rgb_array', "
                f'e.g. gymnasium.make("{get_robot(self.core.robot).gym_id}", render_mode="rgb_array").'
            )
            return None
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Cannot call render() before reset(): call env.reset() first.")
        if self._renderer is None:
            self._renderer = _render.FrameRenderer(self.core.brax_env.sys, self.width, self.height)
        return self._renderer.render(self._state.inner.pipeline_state)

    def save_html(self, path: str | os.PathLike) -> str:
        """Writes the trajectory since the last reset as brax's interactive HTML viewer (atomic)."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Nothing to export: call reset() and step() before save_html().")
        if not self.record:
            raise ValueError(
                "This env does not record its trajectory: make it with record=True "
                "(or render_mode='rgb_array') before calling save_html()."
            )
        return str(_render.save_html(path, self.core.brax_env.sys, list(self._states)))

    @property
    def recorded_states(self) -> list[Any]:
        """Brax pipeline states since the last reset (the reset state first)."""
        return list(self._states)

    def close(self) -> None:
        """Releases the renderer; safe to call more than once."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._states.clear()
        super().close()
