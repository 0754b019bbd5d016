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
