"""What the Gymnasium and SB3 shells share: option validation, the cached core env, action checks.

``GradGymEnv`` (:mod:`gradgym.envs.gym_env`), ``GradGymVectorEnv``
(:mod:`gradgym.envs.vector_env`) and the SB3 ``VecEnv``
(:mod:`gradgym.envs.sb3_vec_env`) all build their core with
:func:`make_core` and check what callers pass with :func:`check_action`.
"""

from __future__ import annotations

import numbers
import reprlib
from typing import Any

import numpy as np

from gradgym.envs.core import NOISE_OPTIONS, BraxEnv, make
from gradgym.envs.robots import get_robot

ENV_OPTIONS: tuple[str, ...] = (*NOISE_OPTIONS, "noise")
"""Keyword options accepted by the shells (passed through ``gym.make``/``make_vec``)."""


def make_core(robot: str, backend: str | None, options: dict[str, Any]) -> BraxEnv:
    """Validates shell options and returns the cached float32 core env."""
    unknown = sorted(set(options) - set(ENV_OPTIONS))
    if unknown:
        raise ValueError(
            f"Unknown env option(s) {', '.join(map(repr, unknown))} for robot {robot!r}; "
            f"valid options: backend, {', '.join(ENV_OPTIONS)} "
            "(and max_episode_steps through gymnasium.make / make_vec)."
        )
    get_robot(robot)
    return make(robot, backend, **options)


F32_MAX = float(np.finfo(np.float32).max)


def check_action(action: Any, shape: tuple[int, ...], what: str = "action") -> np.ndarray:
    """``action`` as a float32 array of exactly ``shape`` with finite entries, else ValueError.

    Accepts real numbers (floats, ints, lists of them, numpy/JAX arrays). Rejects,
    naming the value: anything that is not an array of real numbers (strings, even
    numeric ones; bools; complex numbers; ``None``; other objects), the wrong
    shape, NaN/inf, and values that do not fit in float32 (which would become inf).
    """

    def fail(why: str) -> ValueError:
        return ValueError(
            f"{what} must be a real-valued numeric array of shape {shape}, got {reprlib.repr(action)}: {why}."
        )

    try:
        a = np.asarray(action)
    except (TypeError, ValueError) as e:  # e.g. ragged nested lists
        raise fail(str(e)) from None
    if a.dtype.kind == "O":  # Python ints beyond int64, lists mixing numbers and None, arbitrary objects
        odd = next((x for x in a.flat if not isinstance(x, numbers.Real) or isinstance(x, (bool, np.bool_))), a)
        if odd is not a:
            raise fail(f"it contains {reprlib.repr(odd)}, which is not a real number")
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError, OverflowError) as e:
            raise fail(str(e)) from None
    if a.dtype.kind not in "fiu":
        raise fail(f"dtype {a.dtype} is not a real number type")
    if a.shape != shape:
        raise ValueError(
            f"{what} has shape {a.shape}, expected {shape}; pass a float32 array of shape {shape} (see action_space)."
        )
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a)).tolist()
        raise ValueError(
            f"{what} contains non-finite values (NaN/inf at indices {bad}): {a.tolist()}; pass finite numbers."
        )
    if a.dtype.itemsize > 4 or a.dtype.kind in "iu":
        big = np.abs(a.astype(np.float64)) > F32_MAX
        if big.any():
            raise ValueError(
                f"{what} has values beyond the float32 range (|x| > {F32_MAX:.4g}) at indices "
                f"{np.argwhere(big).tolist()}: {a[big].tolist()}; pass float32-sized numbers."
            )
    return a.astype(np.float32)
