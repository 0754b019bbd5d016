"""JAX's persistent compilation cache, so a second process skips XLA compiles."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gradgym" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turns on JAX's persistent compilation cache at ``path``.

    Opt-in: the ``gradgym`` command calls this only when ``GRADGYM_JAX_CACHE``
    names a directory (``GRADGYM_JAX_CACHE=~/.cache/gradgym/jax``). It is off
    by default because jaxlib 0.10.2 on CPU was seen to segfault while writing
    a cache entry in a long process (our test suite). Returns the directory used.
    """
    import jax

    cache = Path(path or os.environ.get("GRADGYM_JAX_CACHE") or DEFAULT_CACHE_DIR).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache
