"""Shared fixtures. Compiled functions are cached by gradgym itself (per env
options), so tests that make the same env reuse the same compiled code."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ["GRADGYM_JAX_CACHE"] = "off"  # no persistent compilation cache inside the test process

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drops JAX's compiled executables after each test module.

    A single process that compiles hundreds of XLA CPU executables runs into the
    kernel's memory-map limit (vm.max_map_count = 65530) and segfaults inside
    XLA's compiler; tests share compiled code within a module, not across.
    """
    yield
    jax.clear_caches()
