"""One in-process cache of compiled (jitted) functions for the shells.

The Gymnasium env, the Gymnasium vector env and the SB3 vec env each need a
set of jitted functions built around one core env (:class:`~gradgym.envs.core.BraxEnv`).
Core envs are themselves cached per options by :func:`gradgym.envs.core.make`,
so keying compiled functions by the core env *object* makes a second shell with
the same options (or Gymnasium's checker re-making the env) reuse the already
compiled XLA programs instead of retracing. The entries go away with their core
env (weak keys). ``gradgym.cache`` is the other, on-disk layer: JAX's
persistent compilation cache across processes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from gradgym.envs.core import BraxEnv

T = TypeVar("T")

_CACHE: weakref.WeakKeyDictionary[BraxEnv, dict[Callable[[BraxEnv], Any], Any]] = weakref.WeakKeyDictionary()


def compiled(env: BraxEnv, build: Callable[[BraxEnv], T]) -> T:
    """``build(env)``, built once per (core env object, ``build``) and shared by every shell.

    Args:
        env: the core env the functions close over.
        build: a callable (usually a class whose ``__init__`` jits its methods)
            returning the compiled functions for ``env``.
    """
    per_env = _CACHE.setdefault(env, {})
    fns = per_env.get(build)
    if fns is None:
        fns = per_env[build] = build(env)
    return fns

