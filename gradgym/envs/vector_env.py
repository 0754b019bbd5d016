"""``GradGymVectorEnv``: a batch of one Brax robot behind ``gymnasium.vector.VectorEnv``.

Every step is one jitted, vmapped call of the functional core for the whole
batch: stepping, per-env truncation at ``max_episode_steps`` and autoreset all
happen inside it (a ``needs_reset`` mask lives in the jitted state), with no
Python loop over envs. Finished episodes restart from a freshly sampled initial
state whose key is split off the episode key (never a cached first state).

The batched kernel (:func:`batched`) is shared with the SB3 shell
(:mod:`gradgym.envs.sb3_vec_env`) and cached per core env object in the
shells' one compiled-function cache (:mod:`gradgym.envs.compiled`).
"""

from __future__ import annotations

import reprlib
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gradgym.checks import is_int
from gradgym.envs import render as _render
from gradgym.envs.compiled import compiled
from gradgym.envs.core import BraxEnv, State, time_limit_truncated
from gradgym.envs.robots import get_robot
from gradgym.envs.shell import check_action, make_core
from gradgym.jax_utils import strong_types
from gradgym.sharding import BatchPlacer

NO_LIMIT = np.iinfo(np.int32).max
COLS = ("reward", "terminated", "truncated", "diverged")
"""Leading columns of the per-env float32 scalar block returned by the kernel; metrics follow."""


MODES = {AutoresetMode.NEXT_STEP: 0, AutoresetMode.SAME_STEP: 1, AutoresetMode.DISABLED: 2}
"""Autoreset mode codes passed to the batched step as a runtime argument (one compiled program for all)."""


class Batched:
    """Jitted batched kernels for one core env; build with :func:`batched`.

    Attributes:
        reset: ``(seeds[n] uint32) -> (state, obs, scal)``.
        select: ``(mask[n], new_state, state) -> (state, obs, scal)``: ``new_state`` where ``mask``.
        step: ``(state, needs_reset, actions, max_steps, mode) -> (state, needs_reset, obs, final_obs,
            scal, final_scal)``. ``scal[:, :4]`` are reward, terminated, truncated, diverged, then the
            metrics (:attr:`metrics`); ``final_*`` are the raw step results before any autoreset.
        metrics: sorted metric names (known once a kernel has been traced).
    """

    def __init__(self, env: BraxEnv):
        self.metrics: tuple[str, ...] = ()

        def scal(reward, terminated, truncated, diverged, metrics) -> jax.Array:
            self.metrics = tuple(sorted(metrics))
            parts = [reward, terminated, truncated, diverged] + [metrics[k] for k in self.metrics]
            return jnp.stack([jnp.asarray(p, jnp.float32) for p in parts], axis=-1)

        def state_scal(s: State) -> jax.Array:
            return scal(s.reward, s.terminated, s.truncated, s.diverged, s.metrics)

        def step_one(s: State, a, max_steps):
            """Core step + truncation at ``max_steps``; splits off a key for this env's next reset."""
            nxt = env.step(s, a)
            trunc = time_limit_truncated(nxt.terminated, nxt.steps, max_steps)
            k_next, k_reset = jax.random.split(nxt.key)
            return nxt.replace(truncated=trunc, key=k_next), k_reset

        def where(mask, a, b):
            return jax.tree.map(lambda x, y: jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y), a, b)

        def reset(seeds):
            st = strong_types(jax.vmap(lambda seed: env.reset(jax.random.PRNGKey(seed)))(seeds))
            return st, st.obs, state_scal(st)

        def select(mask, new, state):
            st = strong_types(where(mask, new, state))
            return st, st.obs, state_scal(st)

        def step(state, needs_reset, actions, max_steps, mode):
            nxt, reset_keys = jax.vmap(step_one, in_axes=(0, 0, None))(state, actions, max_steps)
            nxt = strong_types(nxt)
            live = ~needs_reset  # NEXT_STEP: envs that finished last step only reset now
            term, trunc = live & nxt.terminated, live & nxt.truncated
            done = term | trunc
            reset_now = needs_reset | ((mode == 1) & done)
            # Fresh initial states (new physics, new noise) only on steps where some env restarts.
            fresh = jax.lax.cond(jnp.any(reset_now), lambda: strong_types(jax.vmap(env.reset)(reset_keys)), lambda: nxt)
            out = where(reset_now, fresh, nxt)
            reward = jnp.where(live, nxt.reward, 0.0)
            sc = scal(reward, term, trunc, live & nxt.diverged, out.metrics)
            return out, (mode == 0) & done, out.obs, nxt.obs, sc, state_scal(nxt)

        self.reset, self.select, self.step = jax.jit(reset), jax.jit(select), jax.jit(step)


def batched(env: BraxEnv) -> Batched:
    """The jitted batched kernels of ``env``, built once per core env object."""
    return compiled(env, Batched)


def check_max_steps(max_episode_steps: int | None) -> int:
    """``None``/-1 -> no limit; an int in [1, 2**31 - 1] -> itself; anything else -> ValueError."""
    if max_episode_steps is None:
        return int(NO_LIMIT)
    if (
        isinstance(max_episode_steps, (bool, np.bool_))
        or not isinstance(max_episode_steps, (int, np.integer))
        or not (max_episode_steps == -1 or 1 <= max_episode_steps <= NO_LIMIT)
    ):
        raise ValueError(
            f"max_episode_steps must be a positive int (at most {NO_LIMIT}), None or -1 (no limit), got {max_episode_steps!r}."
        )
    return int(NO_LIMIT) if max_episode_steps == -1 else int(max_episode_steps)


def parse_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An ``AutoresetMode`` from the enum, its value ("NextStep") or its name ("NEXT_STEP", any case)."""
    if isinstance(mode, AutoresetMode):
        return mode
    for m in AutoresetMode:
        if isinstance(mode, str) and mode.lower().replace("_", "") in (
            m.value.lower(),
            m.name.lower().replace("_", ""),
        ):
            return m
    raise ValueError(
        f"Unknown autoreset_mode {mode!r}; use a gymnasium.vector.AutoresetMode: "
        f"{', '.join(m.name for m in AutoresetMode)}."
    )


def check_num_envs(num_envs: int) -> int:
    if not is_int(num_envs, numpy_ok=True):
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}.")
    return int(num_envs)


def info_block(names: tuple[str, ...], scal: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Gymnasium vector infos (arrays + ``_key`` masks) from a host scalar block."""
    info: dict[str, Any] = {}
    for j, k in enumerate(names):
        info[k], info[f"_{k}"] = scal[:, len(COLS) + j].astype(np.float64), mask.copy()
    info["diverged"], info["_diverged"] = scal[:, 3] > 0, mask.copy()
    return info


class SeedStreams:
    """One numpy Generator per sub-env (``seed + i`` like ``SyncVectorEnv``); draws uint32 JAX seeds."""

    def __init__(self, num_envs: int):
        self.rngs: list[np.random.Generator] | None = None
        self.n = num_envs

    def draw(self, seed: int | list[int | None] | None, mask: np.ndarray | None = None) -> np.ndarray:
        if seed is None:
            seeds: list[int | None] = [None] * self.n
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.n)]
        elif isinstance(seed, (list, tuple)) and len(seed) == self.n:
            seeds = list(seed)
        else:
            raise ValueError(f"seed must be None, an int or a list of {self.n} ints/None, got {reprlib.repr(seed)}.")
        for i, s in enumerate(seeds):
            if s is not None and (isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0):
                raise ValueError(
                    f"seed for sub-env {i} must be None or an int >= 0, got {s!r} (from seed={reprlib.repr(seed)})."
                )
        seeds = [None if s is None else int(s) for s in seeds]
        if self.rngs is None:
            self.rngs = [seeding.np_random(s)[0] for s in seeds]
        else:
            self.rngs = [r if s is None else seeding.np_random(s)[0] for r, s in zip(self.rngs, seeds, strict=True)]
        idx = range(self.n) if mask is None else np.flatnonzero(mask)
        out = np.zeros(self.n, np.uint32)
        for i in idx:
            out[i] = self.rngs[i].integers(0, 2**32 - 1, dtype=np.uint32)
        return out


class GradGymVectorEnv(VectorEnv):
    """``num_envs`` copies of one Brax robot, stepped by one jitted batched call.

    Made by ``gymnasium.make_vec("gradgym/Ant-v0", num_envs=n, **options)`` (its
    ``vector_entry_point``). Options are those of :class:`~gradgym.envs.gym_env.GradGymEnv`.

    Args:
        robot: Brax robot name.
        num_envs: batch size.
        backend: physics backend; ``None`` = the robot's default.
        max_episode_steps: per-env truncation (``make_vec`` passes the registered value);
            ``None``/-1 = never.
        autoreset_mode: ``AutoresetMode`` (or its string value): ``NEXT_STEP`` (default),
            ``SAME_STEP`` (``info["final_obs"]``/``info["final_info"]`` hold the terminal
            data, as ``SyncVectorEnv``) or ``DISABLED`` (use ``reset(options={"reset_mask": m})``).
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns a tuple of frames).
        width: frame width.
        height: frame height.
        devices: ``None`` (default): the batch lives on JAX's default device. An int N (or
            ``"all"``): split it over the first N of ``jax.devices()`` (``num_envs`` must be
            divisible by N); each device steps its share (see :mod:`gradgym.sharding`).
        **options: noise options of :func:`gradgym.envs.make`.

    ## Version History
    * v0: initial release.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        robot: str = "ant",
        num_envs: int = 1,
        backend: str | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        width: int = _render.DEFAULT_WIDTH,
        height: int = _render.DEFAULT_HEIGHT,
        devices: int | str | None = None,
        **options: Any,
    ):
        self.core = make_core(robot, backend, options)
        self.num_envs = check_num_envs(num_envs)
        self._place = BatchPlacer(devices, self.num_envs)
        self.max_episode_steps = None if check_max_steps(max_episode_steps) == NO_LIMIT else int(max_episode_steps)
        self._max_steps = np.int32(check_max_steps(max_episode_steps))
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}.")
        self.render_mode = render_mode
        self.width, self.height = _render._check_size(width, height)
        self.metadata = {
            **type(self).metadata,
            "autoreset_mode": self.autoreset_mode,
            "render_fps": int(round(1.0 / self.core.dt)),
        }
        low, high = self.core.action_bounds
        self.single_action_space = gymnasium.spaces.Box(low, high, dtype=np.float32)
        n_obs = self.core.observation_size
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._fns = batched(self.core)
        self._seeds = SeedStreams(self.num_envs)
        self._state: State | None = None
        self._needs_reset = np.zeros(self.num_envs, bool)
        self._renderer: _render.FrameRenderer | None = None
        self.gym_id = get_robot(robot).gym_id

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Resets all sub-envs (or those in ``options["reset_mask"]``); int seeds become ``seed + i``."""
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"reset options must be None or a dict, got {reprlib.repr(options)}.")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise ValueError(f"Unknown reset option(s) {sorted(options, key=repr)}; only 'reset_mask' is supported.")
        if mask is None:
            self._state, obs, scal = self._place(self._fns.reset(self._seeds.draw(seed)))
            mask = np.ones(self.num_envs, bool)
        else:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must be a bool np.ndarray of shape ({self.num_envs},), got {mask!r}."
                )
            if self._state is None:
                raise gymnasium.error.ResetNeeded("reset_mask needs a full reset() first: call reset(seed=...).")
            fresh, _, _ = self._place(self._fns.reset(self._seeds.draw(seed, mask)))
            self._state, obs, scal = self._place(self._fns.select(mask, fresh, self._state))
        self._needs_reset[mask] = False
        obs, scal = jax.device_get((obs, scal))
        return np.array(obs), info_block(self._fns.metrics, np.asarray(scal), mask)

    def step(self, actions: Any):
        """Steps every sub-env; autoreset per ``self.autoreset_mode``."""
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Cannot call step() before reset(): call envs.reset(seed=...) first.")
        a = check_action(actions, self.action_space.shape, "actions")
        mode = self.autoreset_mode
        if mode == AutoresetMode.DISABLED and self._needs_reset.any():
            idx = np.flatnonzero(self._needs_reset).tolist()
            raise gymnasium.error.ResetNeeded(
                f"Sub-envs {idx} have finished (autoreset_mode=DISABLED): call "
                "reset(options={'reset_mask': mask}) for them before step()."
            )
        needs = self._needs_reset if mode == AutoresetMode.NEXT_STEP else np.zeros(self.num_envs, bool)
        self._state, needs, obs, final_obs, scal, final_scal = self._place(self._fns.step(
            self._state, needs, a, self._max_steps, np.int32(MODES[mode])
        ))
        needs, obs, scal = jax.device_get((needs, obs, scal))
        scal, names = np.asarray(scal), self._fns.metrics
        done = (scal[:, 1] > 0) | (scal[:, 2] > 0)
        self._needs_reset = (
            np.array(needs) if mode == AutoresetMode.NEXT_STEP else done & (mode == AutoresetMode.DISABLED)
        )
        infos = info_block(names, scal, np.ones(self.num_envs, bool))
        if mode == AutoresetMode.SAME_STEP and done.any():
            final_obs, final_scal = jax.device_get((final_obs, final_scal))
            fo = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                fo[i] = np.array(final_obs[i])
            infos["final_obs"], infos["_final_obs"] = fo, done.copy()
            infos["final_info"], infos["_final_info"] = info_block(names, np.asarray(final_scal), done), done.copy()
        rewards = scal[:, 0].astype(np.float64)
        return np.array(obs), rewards, scal[:, 1] > 0, scal[:, 2] > 0, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """With ``render_mode="rgb_array"``: one uint8 (H, W, 3) frame per sub-env."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() needs render_mode='rgb_array' (pass it to make_vec).")
            return None
        if self._state is None:
            raise gymnasium.error.ResetNeeded("Cannot call render() before reset().")
        if self._renderer is None:
            self._renderer = _render.FrameRenderer(self.core.brax_env.sys, self.width, self.height)
        ps = jax.device_get(self._state.inner.pipeline_state)
        return tuple(self._renderer.render(jax.tree.map(lambda x, i=i: x[i], ps)) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
