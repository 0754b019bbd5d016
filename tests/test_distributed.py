"""Multi-process scale-out (``gradgym.distributed``): two processes give the same run as one.

Two local processes join one JAX run over gloo CPU collectives
(``jax.distributed.initialize``), each with one CPU device; the trainer splits
the PPO env batch over the 2 global devices. The reference is one process with
2 CPU devices (``jax_num_cpu_devices=2``): the same global mesh shape, so the
same partitioned program, only the all-reduces cross a process boundary. What
is compared, and measured here: the learning curves and the final policy
parameters are bit-identical (an all-reduce over two devices adds the same two
partial sums either way). Checkpoints: only process 0 writes; a 2-process
checkpoint resumed by 1 process, and a 1-process checkpoint resumed by 2
processes, both end bit-identical to the uninterrupted run.

Compile time dominates (every process compiles the same programs); the children
use XLA's cheaper CPU code generation, as ``tests/test_sharding.py`` does, and
share a persistent compilation cache in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMEOUT_S = 600

CHILD = r"""
import json, os, sys
spec = json.loads(sys.argv[1])
import jax
if spec["num_processes"] > 1:
    from gradgym import distributed
    distributed.initialize(spec["coordinator"], spec["num_processes"], spec["process_id"])
else:
    jax.config.update("jax_num_cpu_devices", 2)
from gradgym.cache import enable_compilation_cache
enable_compilation_cache(spec["cache"])
import numpy as np
from gradgym.agents import train
from gradgym.envs import make

env = make("inverted_pendulum", episode_length=100)
cfg = {"num_envs": 8, "rollout_steps": 8, "epochs": 1, "minibatches": 2, "hidden": [16], "total_steps": 4 * 64,
       "num_evals": 2, "eval_episodes": 4, "eval_horizon": 20}
out = {"process_index": jax.process_index(), "process_count": jax.process_count(),
       "devices": len(jax.devices()), "local_devices": len(jax.local_devices())}
try:
    for name, run in spec["runs"].items():
        r = train("ppo", env, cfg, seed=0, progress=True, devices=None, checkpoint_dir=run["dir"],
                  resume=run["resume"])
        out[name] = {"curve": r.curve.returns, "steps": r.curve.env_steps,
                     "params": [np.asarray(x).tolist() for x in jax.tree.leaves(r.params)],
                     "history": {k: v for k, v in r.history.items()}}
except BaseException:
    import traceback
    traceback.print_exc()
    sys.stdout.flush()
    os._exit(1)  # at once: a normal exit would wait minutes at the distributed shutdown barrier
with open(spec["out"], "w") as f:
    json.dump(out, f)
print("DONE", flush=True)
"""

XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp: Path, tag: str, num_processes: int, runs: dict) -> list[dict]:
    """Starts ``num_processes`` children (one JAX run), waits for all; returns each one's JSON."""
    env = {**os.environ, "XLA_FLAGS": XLA_FLAGS, "JAX_PLATFORMS": "cpu", "GRADGYM_JAX_CACHE": "off",
           "JAX_TRACEBACK_FILTERING": "off"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    coordinator = f"127.0.0.1:{_free_port()}"
    procs, outs = [], []
    try:
        for pid in range(num_processes):
            out = tmp / f"{tag}-{pid}.json"
            spec = {"num_processes": num_processes, "process_id": pid, "coordinator": coordinator,
                    "cache": str(tmp / "jax-cache"), "runs": runs, "out": str(out)}
            log = open(tmp / f"{tag}-{pid}.log", "w")  # a file, not a pipe: a full pipe would block the child
            procs.append((subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec)], stdout=log,
                                           stderr=subprocess.STDOUT, env=env), log, out))
        deadline = time.monotonic() + TIMEOUT_S
        failed = None
        while failed is None and any(proc.poll() is None for proc, _, _ in procs):
            # A process that dies leaves the others waiting in a collective: stop them all at the first failure.
            failed = next(((i, proc.returncode) for i, (proc, _, _) in enumerate(procs) if proc.poll() not in (None, 0)),
                          None)
            if failed is None and time.monotonic() > deadline:
                failed = (0, f"timed out after {TIMEOUT_S} s")
            time.sleep(0.2)
        failed = failed or next(((i, proc.returncode) for i, (proc, _, _) in enumerate(procs) if proc.returncode),
                                None)
        if failed is not None:
            for proc, _, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            report = "\n".join(f"--- {tag} process {i} ---\n{(tmp / f'{tag}-{i}.log').read_text()[-4000:]}"
                               for i in range(num_processes))
            pytest.fail(f"{tag}: process {failed[0]} failed ({failed[1]}):\n{report}")
        for _, _, out in procs:
            outs.append(json.loads(out.read_text()))
    finally:
        for proc, log, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    return outs


def _checkpoints(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("ckpt_*"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    import jax

    if not hasattr(jax.config, "jax_cpu_collectives_implementation"):
        pytest.skip(f"this JAX ({jax.__version__}) has no CPU collectives option (gloo) for multi-process runs")
    tmp = tmp_path_factory.mktemp("distributed")
    # 1 process, 2 devices: the reference run; its first checkpoint is resumed by 2 processes below.
    single = tmp / "single"
    (one,) = _launch(tmp, "one", 1, {"full": {"dir": str(single), "resume": False}})
    first_single = _checkpoints(single)[0]
    resume2 = tmp / "resume2"
    resume2.mkdir()
    shutil.copy(single / first_single, resume2 / first_single)
    # 2 processes, 1 device each: a fresh run, and the resumption of the 1-process checkpoint.
    double = tmp / "double"
    two = _launch(tmp, "two", 2, {"full": {"dir": str(double), "resume": False},
                                  "resumed": {"dir": str(resume2), "resume": True}})
    first_double = _checkpoints(double)[0]
    resume1 = tmp / "resume1"
    resume1.mkdir()
    shutil.copy(double / first_double, resume1 / first_double)
    (back,) = _launch(tmp, "back", 1, {"resumed": {"dir": str(resume1), "resume": True}})
    return {"one": one, "two": two, "back": back, "dirs": {"single": single, "double": double},
            "firsts": (first_single, first_double)}


def test_two_processes_see_two_global_devices(runs):
    p0, p1 = runs["two"]
    assert (p0["process_index"], p1["process_index"]) == (0, 1)
    assert p0["process_count"] == 2 and p0["devices"] == 2 and p0["local_devices"] == 1
    assert runs["one"]["process_count"] == 1 and runs["one"]["devices"] == 2


def test_two_processes_equal_one_bit_for_bit(runs):
    one, (p0, p1) = runs["one"]["full"], (r["full"] for r in runs["two"])
    assert len(one["curve"]) == 3 and one["steps"][-1] == 4 * 64
    for p in (p0, p1):  # both processes return the whole result
        assert p["steps"] == one["steps"]
        assert p["curve"] == one["curve"]
        assert p["params"] == one["params"], "final policy parameters differ between 2 processes and 1"
        assert p["history"] == one["history"], "per-update metrics differ between 2 processes and 1"


def test_checkpoints_written_once_and_equal(runs):
    single, double = runs["dirs"]["single"], runs["dirs"]["double"]
    assert _checkpoints(double) == _checkpoints(single) and len(_checkpoints(double)) == 2
    assert not [p.name for p in double.iterdir() if not p.name.startswith("ckpt_")], "stray files"
    from gradgym.agents.checkpoint import read_header

    for name in _checkpoints(single):
        (h1, b1), (h2, b2) = read_header(single / name), read_header(double / name)
        assert b1 == b2, f"{name}: the 2-process checkpoint's state differs from the 1-process one"
        assert h1["curve"]["returns"] == h2["curve"]["returns"] and h1["history"] == h2["history"]


def test_resume_across_layouts(runs):
    full = runs["one"]["full"]
    for resumed in (runs["back"]["resumed"], *(r["resumed"] for r in runs["two"])):
        assert resumed["curve"] == full["curve"]
        assert resumed["params"] == full["params"], "a run resumed in the other layout ended elsewhere"
        assert resumed["history"] == full["history"]


@pytest.mark.parametrize("kwargs,match", [
    ({"coordinator": "localhost", "num_processes": 2, "process_id": 0}, "HOST:PORT"),
    ({"coordinator": "h:0", "num_processes": 2, "process_id": 0}, "port"),
    ({"coordinator": "h:70000", "num_processes": 2, "process_id": 0}, "port"),
    ({"coordinator": "h:1234", "num_processes": 0, "process_id": 0}, "num_processes"),
    ({"coordinator": "h:1234", "num_processes": 2, "process_id": 2}, "process_id must be an int from 0 to 1"),
    ({"coordinator": "h:1234", "num_processes": 2, "process_id": -1}, "process_id"),
    ({"coordinator": "h:1234", "num_processes": True, "process_id": 0}, "num_processes"),
])
def test_initialize_rejects_bad_values_before_touching_jax(kwargs, match):
    from gradgym import distributed

    with pytest.raises(ValueError, match=match):
        distributed.initialize(**kwargs)


def test_from_env(monkeypatch):
    from gradgym import distributed

    for k in (distributed.ENV_COORDINATOR, distributed.ENV_NUM_PROCESSES, distributed.ENV_PROCESS_ID):
        monkeypatch.delenv(k, raising=False)
    assert distributed.from_env() is None
    monkeypatch.setenv(distributed.ENV_COORDINATOR, "10.0.0.1:12355")
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "4")
    with pytest.raises(ValueError, match="missing process_id"):
        distributed.from_env()
    assert distributed.from_env(process_id=3) == ("10.0.0.1:12355", 4, 3)
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "x")
    with pytest.raises(ValueError, match="GRADGYM_PROCESS_ID must be an int"):
        distributed.from_env()
