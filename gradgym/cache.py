"""JAX's persistent compilation cache, so a second process skips XLA compiles."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gradgym" / "jax"


#: Size limit of the cache. Any limit makes JAX hold a file lock around every cache read and write
#: (``jax._src.lru_cache.LRUCache``); without one (JAX's default, -1) entries are written with a plain
#: ``write_bytes``, so a second process can read an entry that is still being written.
MAX_CACHE_BYTES = 4 << 30


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turns on JAX's persistent compilation cache at ``path``, safe for concurrent processes.

    The ``gradgym`` command calls this unless ``GRADGYM_JAX_CACHE=off``; the
    directory is ``GRADGYM_JAX_CACHE`` or ``~/.cache/gradgym/jax``. The cache
    is size-limited (:data:`MAX_CACHE_BYTES`, least recently used entries
    evicted), which makes JAX lock the folder around every read and write: two
    processes sharing it (``compare``'s workers, pytest-xdist) never see a
    half-written entry (``scripts/stress_compile_cache.py``). Returns the directory used.
    """
    import jax

    cache = Path(path or os.environ.get("GRADGYM_JAX_CACHE") or DEFAULT_CACHE_DIR).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache
