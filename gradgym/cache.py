"""JAX's persistent compilation cache, so a second process skips XLA compiles."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gradgym" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turns on JAX's persistent compilation cache at ``path``.

    Defaults to ``$GRADGYM_JAX_CACHE`` or ``~/.cache/gradgym/jax``. Set
    ``GRADGYM_JAX_CACHE=off`` to leave it disabled. Returns the directory used.
    """
    import jax

    env = os.environ.get("GRADGYM_JAX_CACHE")
    if path is None and env == "off":
        return Path()
    cache = Path(path or env or DEFAULT_CACHE_DIR).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache
