"""Shared fixtures. Compiled functions are cached by gradgym itself (per env
options), so tests that make the same env reuse the same compiled code."""

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
#: One persistent compilation cache for the whole run, in a fresh temporary folder that the controlling process
#: makes and removes: the two xdist workers and the subprocesses that tests start (``gradgym`` CLI runs,
#: ``compare``'s workers, the example scripts) then compile a program once between them instead of once each.
#: Nothing outside the run is read or written. ``GRADGYM_TEST_SHARED_CACHE=0`` turns it off.
_SHARED_CACHE = os.environ.get("GRADGYM_TEST_SHARED_CACHE", "1") != "0"
_OWNS_CACHE = _SHARED_CACHE and not os.environ.get("GRADGYM_TEST_CACHE_DIR")  # the controller; workers inherit it
if _OWNS_CACHE:
    import tempfile

    os.environ["GRADGYM_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="gradgym-test-jax-cache-")
os.environ["GRADGYM_JAX_CACHE"] = os.environ["GRADGYM_TEST_CACHE_DIR"] if _SHARED_CACHE else "off"

#: The suite is compile-bound (XLA CPU compiles of gradient programs through Brax). XLA's cheaper CPU code
#: generation cuts the compile seconds of a test by 30-65% and slows the execution of the longest test
#: programs by about 20% (measured on the agent tests, 2026-12-06); every
#: assertion compares computations made under the same flags, finite differences or thresholds, none depends
#: on the code generator's optimisation level. Users and the benchmarks run XLA's defaults.
#: Set ``GRADGYM_TEST_XLA_DEFAULTS=1`` to run the suite with XLA's default code generation instead.
FAST_COMPILE_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if not os.environ.get("GRADGYM_TEST_XLA_DEFAULTS"):  # read when JAX starts its CPU backend; inherited by subprocesses
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_XLA_FLAGS}".strip()

import jax  # noqa: E402
import pytest  # noqa: E402

if _SHARED_CACHE:
    from gradgym.cache import enable_compilation_cache  # noqa: E402

    enable_compilation_cache(os.environ["GRADGYM_JAX_CACHE"])


def pytest_unconfigure(config):
    if _OWNS_CACHE:
        import shutil

        shutil.rmtree(os.environ["GRADGYM_TEST_CACHE_DIR"], ignore_errors=True)

#: Drop compiled code once the process holds this many memory maps (each XLA CPU executable takes ~3).
MAX_MAPS = 30_000


def _memory_maps() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux: no such limit to watch, and no count
        return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drops JAX's compiled executables after a test module once the process holds many memory maps.

    A single process that compiles hundreds of XLA CPU executables runs into the
    kernel's memory-map limit (vm.max_map_count = 65530) and segfaults inside
    XLA's compiler. Below :data:`MAX_MAPS` the executables are kept, so a module
    reuses what an earlier module on the same worker compiled (the agent tests
    share the pendulum's programs).
    """
    yield
    if _memory_maps() > MAX_MAPS:
        jax.clear_caches()


# ``GRADGYM_COMPILE_LOG=file.jsonl pytest ...`` appends one line per test: the number of XLA compiles it caused
# and the seconds spent tracing, lowering and compiling them (JAX's monitoring events). The suite's time is
# mostly compile time; this says which tests pay it.
_COMPILE_LOG = os.environ.get("GRADGYM_COMPILE_LOG")
_compile_stats = {"n": 0, "trace": 0.0, "lower": 0.0, "compile": 0.0}

if _COMPILE_LOG:
    import jax.monitoring

    _EVENTS = {
        "/jax/core/compile/jaxpr_trace_duration": "trace",
        "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
        "/jax/core/compile/backend_compile_duration": "compile",
    }

    def _on_duration(event: str, duration: float, **_) -> None:
        name = _EVENTS.get(event)
        if name is not None:
            _compile_stats[name] += duration
            _compile_stats["n"] += name == "compile"

    jax.monitoring.register_event_duration_secs_listener(_on_duration)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        import json
        import time

        for k in _compile_stats:
            _compile_stats[k] = 0 if k == "n" else 0.0
        start = time.perf_counter()
        yield
        line = {"test": item.nodeid, "seconds": round(time.perf_counter() - start, 2)}
        line.update({k: round(v, 2) for k, v in _compile_stats.items()})
        with open(_COMPILE_LOG, "a") as f:
            f.write(json.dumps(line) + "\n")
