"""Shared fixtures. Compiled functions are cached by gradgym itself (per env
options), so tests that make the same env reuse the same compiled code."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ["GRADGYM_JAX_CACHE"] = "off"  # no persistent compilation cache inside the test process
