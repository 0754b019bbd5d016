"""The functional core: a Brax robot as pure ``reset(key)`` / ``step(state, action)``.

Everything here is a pure JAX function over pytrees, safe under ``jit``, ``vmap``
and ``grad``. The Gymnasium and SB3 shells (``gym_env.py``, ``vector_env.py``,
``sb3_vec_env.py``) wrap this core; nothing here does I/O or owns an RNG.

Stochasticity is explicit. :class:`NoiseConfig` (``noise.py``) describes reset
noise, action noise, observation noise and physics randomisation (friction and
mass scales, :class:`PhysicsParams` in ``physics.py``). ``reset(key)`` draws
the episode's physics and a per-episode noise key from ``key``; ``step`` splits
that key for action/observation noise. Holding ``key`` fixed holds every noise
source fixed (pathwise gradients); resampling it resamples them
(score-function / ES estimates). The brax/mujoco shims live in
``brax_compat.py``.

Which reward terms carry useful gradients: forward-velocity and control-cost
terms are smooth functions of the state and action; healthy/survive bonuses are
piecewise constant (zero gradient almost everywhere); contact terms are
non-smooth at contact onset.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from contextlib import nullcontext
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from gradgym.checks import is_int
from gradgym.envs.brax_compat import load_brax_env
from gradgym.envs.noise import NOISE_OPTIONS, NoiseConfig
from gradgym.envs.physics import PhysicsParams, cast_sys, sample_physics, scaled_sys
from gradgym.envs.robots import RobotSpec, get_robot, resolve_backend
from gradgym.envs.spring_grad import GRAD_PATHS, resolve_grad_path, spring_pipeline_step
from gradgym.jax_utils import DTYPES, float_dtype

__all__ = ["GRAD_PATHS", "NOISE_OPTIONS", "BraxEnv", "NoiseConfig", "PhysicsParams", "State", "make"]


@struct.dataclass
class State:
    """State of one robot (batch it with ``jax.vmap``).

    Attributes:
        inner: the wrapped ``brax.envs.State`` (physics, clean obs, metrics).
        obs: observation as the agent sees it (with observation noise).
        reward: reward of the last transition (0 after reset, 0 when diverged).
        terminated: the MDP reached a terminal state (unhealthy, or diverged).
        truncated: the episode hit ``episode_length`` without terminating.
        diverged: the physics state became non-finite on the last step.
        steps: environment steps taken in this episode (int32).
        key: the episode's noise key; split by every step.
        physics: this episode's :class:`PhysicsParams`.
    """

    inner: Any
    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    diverged: jax.Array
    steps: jax.Array
    key: jax.Array
    physics: PhysicsParams

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)

    @property
    def metrics(self) -> dict[str, jax.Array]:
        return self.inner.metrics


def _check_episode_length(episode_length: Any) -> int | None:
    if episode_length is not None and not is_int(episode_length):
        raise ValueError(f"episode_length must be a positive int or None, got {episode_length!r}.")
    return episode_length


def time_limit_truncated(terminated: jax.Array, steps: jax.Array, limit: Any) -> jax.Array:
    """``truncated``: the episode reached ``limit`` steps without terminating (``limit=None``: never).

    The core applies it at ``episode_length``; the Gymnasium vector env at its
    ``max_episode_steps`` (a traced limit).
    """
    if limit is None:
        return jnp.zeros_like(terminated)
    return ~terminated & (steps >= limit)


def _check_dtype(dtype: Any) -> str:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
    return dtype


class BraxEnv:
    """A Brax robot as a pure functional environment.

    Build one with :func:`make` (cached: the same options return the same
    object, so compiled functions are shared). All methods are pure.
    """

    def __init__(
        self,
        robot: str = "ant",
        backend: str | None = None,
        noise: NoiseConfig = NoiseConfig(),
        episode_length: int | None = None,
        dtype: str = "float32",
        grad_path: str | None = None,
    ):
        self.spec: RobotSpec = get_robot(robot)
        self.robot = robot
        self.backend = resolve_backend(self.spec, backend)
        self.grad_path = resolve_grad_path(self.backend, grad_path)
        if not isinstance(noise, NoiseConfig):
            raise TypeError(f"noise must be a gradgym.envs.NoiseConfig, got {type(noise).__name__}.")
        self.noise = noise
        self.episode_length = _check_episode_length(episode_length)
        self.dtype = _check_dtype(dtype)

        kwargs: dict[str, Any] = {"backend": self.backend}
        if noise.reset_noise_scale is not None and self.spec.native_reset_noise:
            kwargs["reset_noise_scale"] = noise.reset_noise_scale
        self.brax_env = load_brax_env(robot, **kwargs)
        if self.dtype == "float32" and any(getattr(x, "dtype", None) == jnp.float64
                                           for x in jax.tree.leaves(self.brax_env.sys)):
            # Loaded while JAX's 64-bit mode was on (inside jax.enable_x64): make() caches this env, and a
            # float64 system would then meet float32 arrays once the mode is off again.
            self.brax_env.sys = cast_sys(self.brax_env.sys, jnp.float32)
        self._sys = self.brax_env.sys
        step = spring_pipeline_step(self.brax_env, self.grad_path) if self.backend == "spring" else None
        if step is not None:
            self.brax_env.pipeline_step = step  # this instance only; Brax's class is untouched
        self._obs_needs_action = "action" in inspect.signature(self.brax_env._get_obs).parameters

    # -- static facts -----------------------------------------------------
    @property
    def action_size(self) -> int:
        return int(self.brax_env.action_size)

    @functools.cached_property
    def observation_size(self) -> int:
        # Brax computes this by running an eager reset on every access: ~150 one-op XLA compiles (seconds) the
        # first time in a process. The shape of a traced reset needs no compile.
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        return int(jax.eval_shape(self.brax_env.reset, key).obs.shape[-1])

    @property
    def dt(self) -> float:
        return float(self.brax_env.dt)

    @property
    def action_bounds(self) -> tuple[Any, Any]:
        """(low, high) numpy arrays: [-1, 1] for every robot.

        Brax's convention: humanoid, humanoidstandup, inverted_pendulum and
        pusher rescale [-1, 1] to their actuators' control ranges inside
        ``step``; every other robot's control range is [-1, 1] itself.
        """
        import numpy as np

        return -np.ones(self.action_size, np.float32), np.ones(self.action_size, np.float32)

    @property
    def state_size(self) -> int:
        """Length of the physics state vector (q, qd) used by Jacobians."""
        return int(self._sys.q_size() + self._sys.qd_size())

    def __repr__(self) -> str:
        return f"BraxEnv(robot={self.robot!r}, backend={self.backend!r}, noise={self.noise}, episode_length={self.episode_length}, dtype={self.dtype!r}, grad_path={self.grad_path!r})"

    # -- internals --------------------------------------------------------
    def _float(self):
        return float_dtype(self.dtype)

    def _call_with_physics(self, physics: PhysicsParams, fn, *args):
        """Runs ``fn`` with the brax env's system scaled by ``physics``.

        Brax envs read ``self.sys`` at trace time, so swapping it for the
        duration of the call threads traced physics parameters through the
        pipeline (the same device Brax's domain-randomisation wrapper uses).
        """
        sys = cast_sys(self._sys, jnp.float64) if self.dtype == "float64" else self._sys
        self.brax_env.sys = scaled_sys(sys, physics)
        try:
            return fn(*args)
        finally:
            self.brax_env.sys = self._sys

    def _sample_physics(self, key: jax.Array) -> PhysicsParams:
        return sample_physics(key, self.noise.friction_range, self.noise.mass_range, self._float())

    def _observe(self, clean_obs: jax.Array, key: jax.Array) -> jax.Array:
        if self.noise.obs_noise == 0.0:
            return clean_obs
        return clean_obs + self.noise.obs_noise * jax.random.normal(key, clean_obs.shape, clean_obs.dtype)

    def _wrap(self, inner, key, physics, obs_key) -> State:
        f = self._float()
        return State(
            inner=inner,
            obs=self._observe(inner.obs, obs_key),
            reward=jnp.zeros((), f),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
            diverged=jnp.zeros((), bool),
            steps=jnp.zeros((), jnp.int32),
            key=key,
            physics=physics,
        )

    def _inner_from_qqd(self, q, qd, template):
        ps = self.brax_env.pipeline_init(q, qd)
        if self._obs_needs_action:
            obs = self.brax_env._get_obs(ps, jnp.zeros(self.action_size, q.dtype))
        else:
            obs = self.brax_env._get_obs(ps)
        return template.replace(pipeline_state=ps, obs=obs.astype(template.obs.dtype))

    # -- public API ---------------------------------------------------------
    def reset(self, key: jax.Array, physics: PhysicsParams | None = None) -> State:
        """Samples an initial state (and, unless given, the episode's physics)."""
        with self._precision():
            return self._reset(key, physics)

    def _precision(self):
        """A float32 env computes in float32 even with 64-bit JAX on (Brax would otherwise promote parts of its
        state to float64, and a scan over steps would see its carry change dtype)."""
        return jax.enable_x64(False) if self.dtype == "float32" and jax.config.jax_enable_x64 else nullcontext()

    def _reset(self, key: jax.Array, physics: PhysicsParams | None) -> State:
        k_reset, k_phys, k_extra, k_obs, k_ep = jax.random.split(key, 5)
        physics = self._sample_physics(k_phys) if physics is None else physics

        def _reset():
            inner = self.brax_env.reset(k_reset)
            s = self.noise.reset_noise_scale
            if s is not None and not self.spec.native_reset_noise and s > 0:
                kq, kqd = jax.random.split(k_extra)
                ps = inner.pipeline_state
                q = ps.q + jax.random.uniform(kq, ps.q.shape, ps.q.dtype, -s, s)
                qd = ps.qd + s * jax.random.normal(kqd, ps.qd.shape, ps.qd.dtype)
                inner = self._inner_from_qqd(q, qd, inner)
            return inner

        inner = self._call_with_physics(physics, _reset)
        return self._wrap(inner, k_ep, physics, k_obs)

    def step(self, state: State, action: jax.Array) -> State:
        """Advances one control step. Pure; branch-free; differentiable.

        A non-finite physics state sets ``terminated`` and ``diverged``, zeroes
        the reward and keeps the last finite observation, so nothing non-finite
        reaches the caller (the next step of a diverged state is undefined;
        reset it, as autoreset does).
        """
        with self._precision():
            return self._step(state, action)

    def _step(self, state: State, action: jax.Array) -> State:
        key, k_act, k_obs = jax.random.split(state.key, 3)
        if self.noise.action_noise > 0.0:
            action = action + self.noise.action_noise * jax.random.normal(k_act, action.shape, action.dtype)
        inner = self._call_with_physics(state.physics, self.brax_env.step, state.inner, action)
        ps = inner.pipeline_state
        finite = jnp.all(jnp.isfinite(inner.obs)) & jnp.all(jnp.isfinite(ps.q)) & jnp.all(jnp.isfinite(ps.qd))
        finite = finite & jnp.isfinite(inner.reward)
        # The last observation may itself be non-finite (a state injected by
        # the caller); zero those entries so the caller never sees NaN/inf.
        last_obs = jnp.where(jnp.isfinite(state.inner.obs), state.inner.obs, 0.0)
        obs = jnp.where(finite, inner.obs, last_obs)
        inner = inner.replace(obs=obs, reward=jnp.where(finite, inner.reward, 0.0))
        # Brax returns weak-typed scalars (reward, done) after a step but strong
        # ones after reset; matching the input's dtypes keeps a jitted step from
        # retracing when it is fed its own output.
        inner = jax.tree.map(
            lambda new, old: jnp.asarray(new, old.dtype) if hasattr(old, "dtype") else new, inner, state.inner
        )
        steps = state.steps + 1
        terminated = (inner.done > 0) | ~finite
        truncated = time_limit_truncated(terminated, steps, self.episode_length)
        return State(
            inner=inner,
            obs=self._observe(obs, k_obs),
            reward=inner.reward.astype(self._float()),
            terminated=terminated,
            truncated=truncated,
            diverged=~finite,
            steps=steps,
            key=key,
            physics=state.physics,
        )

    def autoreset_step(self, state: State, action: jax.Array) -> tuple[State, State]:
        """Steps, and restarts finished episodes from a fresh initial state.

        Returns ``(next_state, final_state)``. ``final_state`` is the raw step
        result (true terminal observation, reward and flags). ``next_state``
        equals it, except where the episode ended: there it is a new episode
        whose initial state and physics are sampled from a key split off the
        episode key (never a cached first state). Gradients stop at the
        episode boundary.
        """
        final = self.step(state, action)
        key, reset_key = jax.random.split(final.key)
        fresh = jax.lax.stop_gradient(self.reset(reset_key))
        final = final.replace(key=key)
        nxt = jax.tree.map(lambda a, b: jnp.where(final.done, a, b), fresh, final)
        return nxt, final

    # -- physics state as a flat vector (for Jacobians) ---------------------
    def state_vector(self, state: State) -> jax.Array:
        """The physics state (q, qd) as one flat vector."""
        ps = state.inner.pipeline_state
        return jnp.concatenate([ps.q, ps.qd])

    def with_state_vector(self, state: State, vec: jax.Array) -> State:
        """``state`` with its physics rebuilt from a (q, qd) vector."""
        nq = self._sys.q_size()
        with self._precision():
            inner = self._call_with_physics(state.physics, self._inner_from_qqd, vec[:nq], vec[nq:], state.inner)
        return state.replace(inner=inner, obs=inner.obs)


@functools.lru_cache(maxsize=64)
def _make_cached(robot, backend, noise, episode_length, dtype, grad_path) -> BraxEnv:
    return BraxEnv(robot, backend, noise, episode_length, dtype, grad_path)


def make(
    robot: str = "ant",
    backend: str | None = None,
    *,
    episode_length: int | None = None,
    dtype: str = "float32",
    noise: NoiseConfig | None = None,
    grad_path: str | None = None,
    **noise_options: Any,
) -> BraxEnv:
    """Returns the (cached) functional env for these options.

    Args:
        robot: Brax robot name (see ``gradgym.envs.ROBOTS``).
        backend: physics backend; ``None`` = the robot's default (spring).
        episode_length: steps after which ``truncated`` is set; ``None`` = never.
        dtype: ``"float32"`` or ``"float64"`` (needs ``jax_enable_x64``).
        noise: a :class:`NoiseConfig`, or pass its fields as keyword options.
        grad_path: how reverse mode runs through the spring physics (see
            ``gradgym.envs.spring_grad``): ``"brax"`` (Brax's own step, bit for
            bit), ``"remat"`` (recompute each substep in the backward pass; same
            forward, gradient equal up to float rounding, ~1.3x faster) or
            ``"fast"`` (``"remat"`` plus joint coordinates computed once per
            control step; states and gradients equal up to float rounding,
            gradient ~1.6x and forward ~1.25x faster than ``"brax"``).
            ``None`` = ``"fast"`` on spring; other backends always use Brax's step.
    """
    unknown = sorted(set(noise_options) - set(NOISE_OPTIONS))
    if unknown:
        raise ValueError(
            f"Unknown env option(s) {', '.join(map(repr, unknown))}; valid options: backend, "
            f"episode_length, dtype, noise, grad_path, {', '.join(NOISE_OPTIONS)}."
        )
    if noise is None:
        noise = NoiseConfig(**noise_options)
    elif not isinstance(noise, NoiseConfig):
        raise TypeError(f"noise must be a gradgym.envs.NoiseConfig or None, got {type(noise).__name__}: {noise!r}.")
    elif noise_options:
        noise = dataclasses.replace(noise, **noise_options)
    if _check_dtype(dtype) == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype='float64' needs 64-bit JAX: run `jax.config.update('jax_enable_x64', True)` "
            "or use `with jax.enable_x64(True):` before making the env."
        )
    # Validate before the cache lookup: an unhashable value would otherwise fail there without naming itself.
    # Resolved first, so make("ant") and make("ant", "spring") are one env (and share compiled code).
    backend = resolve_backend(get_robot(robot), backend)  # fails early with the lists of names
    grad_path = resolve_grad_path(backend, grad_path)  # likewise: grad_path=None and its default are one env
    _check_episode_length(episode_length)
    return _make_cached(robot, backend, noise, episode_length, dtype, grad_path)
