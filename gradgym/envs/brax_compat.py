"""Shims that let brax 0.14.2 and mujoco-mjx run quietly on the JAX we use.

* :func:`load_brax_env` builds a ``brax.envs`` robot with brax's loader notice
  ("... not actively being maintained ...") filtered by its exact text and
  brax's fluid model patched for JAX 0.10 (``jnp.clip`` lost ``a_min``/``a_max``).
* :func:`quiet_missing_warp` drops the two lines mujoco-mjx **prints** on
  stdout when the optional NVIDIA Warp backend is not installed
  (``Failed to import warp: No module named 'warp'`` and the same for
  ``mujoco_warp``). They come from bare ``print`` calls in the body of
  ``mujoco/mjx/warp/__init__.py``, so no logging or warnings filter reaches
  them: an import hook runs exactly that module with stdout passed through a
  filter that removes only lines matching :data:`MISSING_WARP`. Every other
  line, and a warp that is installed but fails to load, still prints.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import re
import sys
import warnings
from typing import Any

import jax.numpy as jnp

WARP_MODULE = "mujoco.mjx.warp"
MISSING_WARP = re.compile(r"Failed to import (?:warp|mujoco_warp): No module named 'warp(?:\.[\w.]+)?'")
"""A line printed by ``mujoco.mjx.warp`` when Warp is simply not installed (dropped)."""


class _DropLines(io.TextIOBase):
    """A text stream that forwards whole lines to ``target`` except those matching ``pattern``."""

    def __init__(self, target: Any, pattern: re.Pattern[str]):
        self._target, self._pattern, self._partial = target, pattern, ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        *lines, self._partial = (self._partial + s).split("\n")
        for line in lines:
            if not self._pattern.fullmatch(line):
                self._target.write(line + "\n")
        return len(s)

    def flush(self) -> None:
        if self._partial and not self._pattern.fullmatch(self._partial):
            self._target.write(self._partial)
        self._partial = ""
        self._target.flush()


class _QuietLoader(importlib.abc.Loader):
    """Executes one module with its stdout passed through :class:`_DropLines`."""

    def __init__(self, loader: Any):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        out = _DropLines(sys.stdout, MISSING_WARP)
        try:
            with contextlib.redirect_stdout(out):
                self._loader.exec_module(module)
        finally:
            out.flush()
            module.__loader__ = self._loader  # leave no trace on the imported module
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader


class _QuietWarpFinder(importlib.abc.MetaPathFinder):
    """Finds ``mujoco.mjx.warp`` with the other finders and wraps its loader in :class:`_QuietLoader`."""

    gradgym_quiet_warp = True

    def find_spec(self, fullname, path, target=None):
        if fullname != WARP_MODULE:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "gradgym_quiet_warp", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def quiet_missing_warp() -> None:
    """Installs the import hook (idempotent; a no-op once ``mujoco.mjx.warp`` is imported)."""
    if WARP_MODULE in sys.modules or any(getattr(f, "gradgym_quiet_warp", False) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietWarpFinder())


class _JnpClipCompat:
    """``jax.numpy`` whose ``clip`` still takes ``a_min``/``a_max`` (removed in JAX 0.10).

    brax 0.14.2's fluid model (used by swimmer) calls ``jp.clip(x, a_min=...)``.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    @staticmethod
    def clip(x, min=None, max=None, *, a_min=None, a_max=None):  # noqa: A002 - jnp.clip's names
        return jnp.clip(x, a_min if min is None else min, a_max if max is None else max)


def patch_brax_fluid() -> None:
    """Makes ``brax.fluid`` use :class:`_JnpClipCompat` (idempotent)."""
    from brax import fluid

    if not isinstance(fluid.jp, _JnpClipCompat):
        fluid.jp = _JnpClipCompat()


class _LocalMjx:
    """``mujoco.mjx`` whose ``put_model`` defaults to this process's first device.

    MJX places a model on ``jax.devices()[0]``; in a multi-process run
    (``gradgym.distributed``) that device belongs to process 0, so every other
    process would hold its robot's constants on a device it cannot address.
    Single-process runs are unchanged (MJX's own default).
    """

    def __init__(self, mjx: Any):
        self._mjx = mjx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mjx, name)

    def put_model(self, m: Any, device: Any = None, **kwargs: Any) -> Any:
        import jax

        if device is None and jax.process_count() > 1:
            device = jax.local_devices()[0]
        return self._mjx.put_model(m, device, **kwargs)


def patch_brax_mjcf() -> None:
    """Makes ``brax.io.mjcf`` use :class:`_LocalMjx` (idempotent)."""
    from brax.io import mjcf

    if not isinstance(mjcf.mjx, _LocalMjx):
        mjcf.mjx = _LocalMjx(mjcf.mjx)


def load_brax_env(robot: str, **kwargs: Any) -> Any:
    """``brax.envs.get_environment(robot, **kwargs)`` with the shims above applied."""
    quiet_missing_warp()
    from brax import envs as brax_envs

    patch_brax_fluid()
    patch_brax_mjcf()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not actively being maintained.*")
        return brax_envs.get_environment(robot, **kwargs)
