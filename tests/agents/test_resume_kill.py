"""Kill-and-resume: a run SIGKILLed while writing a checkpoint resumes to the uninterrupted run's curve, bit for bit.

A child process trains PPO on the pendulum with a checkpoint at every
evaluation point. Its ``os.fsync`` is patched to stand in for a slow disk: on
the second checkpoint write it cuts the temp file to half and hangs, so the
parent can SIGKILL it mid-write deterministically. The parent then checks
that the half-written temp file is never picked up, resumes from the first
checkpoint, and compares with an uninterrupted run of the same seed (JAX
agents are deterministic). A damaged newest checkpoint makes ``resume`` fall
back to the previous one with a warning.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from gradgym.agents import train
from gradgym.agents.checkpoint import CheckpointError, latest_checkpoint
from tests.agents.conftest import FAST, PEND_EPISODE

CFG = {**FAST, "total_steps": 4 * 512}  # ppo on the pendulum: 4 iterations of 512 steps, an evaluation after each
SEED = 5
REPO = Path(__file__).resolve().parents[2]

CHILD = f"""
import os, sys, time

real_fsync = os.fsync
writes = 0


def slow_disk_fsync(fd):
    global writes
    if ".ckpt_" in os.readlink(f"/proc/self/fd/{{fd}}"):  # a checkpoint's temp file
        writes += 1
        if writes == 2:  # the second checkpoint: half of it on disk, then hang until killed
            os.ftruncate(fd, os.fstat(fd).st_size // 2)
            time.sleep(600)
    real_fsync(fd)


os.fsync = slow_disk_fsync
from gradgym.agents import train
from gradgym.envs import make

train("ppo", make("inverted_pendulum", episode_length={PEND_EPISODE}), {CFG!r}, seed={SEED},
      checkpoint_dir=sys.argv[1], progress=False)
sys.exit("the run finished: it was not killed mid-write")
"""


def _same_params(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """The run to be killed, started first so it compiles while this process runs the reference."""
    d = tmp_path_factory.mktemp("killed") / "ck"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(d)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    yield proc, d
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def full(pend, tmp_path_factory):
    """The uninterrupted run (with checkpoints: the last two stay)."""
    d = tmp_path_factory.mktemp("full")
    return train("ppo", pend, CFG, seed=SEED, checkpoint_dir=str(d), progress=False), d


def test_sigkill_mid_checkpoint_write_then_resume_is_bit_identical(child, full, pend):
    proc, ck = child
    deadline = time.monotonic() + 300
    while not (ck.is_dir() and list(ck.glob(".ckpt_00000002.gradgym.*.tmp"))):
        if proc.poll() is not None:
            pytest.fail(f"child exited with {proc.returncode} before the 2nd checkpoint: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, "the child never started its 2nd checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    # Killed mid-write: the first checkpoint and a partial temp file, which is never taken for a checkpoint.
    names = sorted(p.name for p in ck.iterdir())
    assert len(names) == 2 and names[0].startswith(".ckpt_00000002.gradgym.") and names[0].endswith(".tmp"), names
    assert names[1] == "ckpt_00000001.gradgym", names
    assert latest_checkpoint(ck).name == "ckpt_00000001.gradgym"

    result, _ = full
    resumed = train("ppo", pend, CFG, seed=SEED, checkpoint_dir=str(ck), resume=True, progress=False)
    assert resumed.curve.env_steps == result.curve.env_steps
    assert resumed.curve.returns == result.curve.returns  # bit-identical floats
    _same_params(resumed.params, result.params)
    assert resumed.metrics["skipped_updates"] == result.metrics["skipped_updates"]
    # The next save cleared the dead write's temp file; the newest two checkpoints remain.
    assert sorted(p.name for p in ck.iterdir()) == ["ckpt_00000003.gradgym", "ckpt_00000004.gradgym"]


@pytest.mark.parametrize("damage", ["truncated", "bit_flip"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(full, pend, tmp_path, damage):
    result, d = full
    ck = tmp_path / "ck"
    shutil.copytree(d, ck)
    newest = ck / "ckpt_00000004.gradgym"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    (ck / ".ckpt_00000005.gradgym.x.tmp").write_bytes(data)  # a dead write's temp file: never read
    assert latest_checkpoint(ck) == newest

    with pytest.warns(UserWarning, match=r"ckpt_00000004\.gradgym.*(truncated|corrupt).*resumed from .*ckpt_00000003"):
        resumed = train("ppo", pend, CFG, seed=SEED, checkpoint_dir=str(ck), resume=True, progress=False)
    assert resumed.curve.returns == result.curve.returns
    _same_params(resumed.params, result.params)
    # The damaged file is kept aside (never read again); iteration 4 was written afresh.
    assert sorted(p.name for p in ck.iterdir()) == [
        "ckpt_00000003.gradgym", "ckpt_00000004.gradgym", "ckpt_00000004.gradgym.corrupt"]


def test_every_checkpoint_damaged_raises_and_keeps_the_files(full, pend, tmp_path):
    _, d = full
    ck = tmp_path / "ck"
    shutil.copytree(d, ck)
    for p in ck.iterdir():
        p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"ckpt_00000004\.gradgym.*(truncated|corrupt)"):
        train("ppo", pend, CFG, seed=SEED, checkpoint_dir=str(ck), resume=True, progress=False)
    assert sorted(p.name for p in ck.iterdir()) == ["ckpt_00000003.gradgym", "ckpt_00000004.gradgym"]
