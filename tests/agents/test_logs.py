"""TrainLog: TensorBoard events and scalars.csv with the recorded values, a killed run's files, bad input."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradgym.agents.logs import CSV_NAME, TrainLog


def read_events(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in ``folder``'s event files -> [(step, value)]."""
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def read_csv(folder) -> list[tuple[str, int, float]]:
    with open(folder / CSV_NAME, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["tag", "env_steps", "value"]
    return [(tag, int(step), float(value)) for tag, step, value in rows[1:]]


def test_events_and_csv_hold_the_recorded_values(tmp_path):
    with TrainLog(tmp_path / "logs", "ppo-hopper-seed0") as log:
        log.record_eval(0, 0.0, 12.5, 0.0)
        log.record_updates([512, 1024], {"loss": [0.5, 0.25], "grad_norm": np.array([3.0, 1e9]),
                                         "skipped": [0, 1]})
        log.record_eval(1024, 2.0, 30.125, 512.0)
    run = tmp_path / "logs" / "ppo-hopper-seed0"
    events = read_events(run)
    assert events["train/loss"] == [(512, 0.5), (1024, 0.25)]
    assert events["train/grad_norm"] == [(512, 3.0), (1024, 1e9)]
    assert events["train/skipped"] == [(512, 0.0), (1024, 1.0)]
    assert events["eval/return"] == [(0, 12.5), (1024, 30.125)]
    assert events["eval/steps_per_s"] == [(0, 0.0), (1024, 512.0)]
    assert events["eval/wall_s"] == [(0, 0.0), (1024, 2.0)]
    assert read_csv(run) == [
        ("eval/return", 0, 12.5), ("eval/wall_s", 0, 0.0), ("eval/steps_per_s", 0, 0.0),
        ("train/loss", 512, 0.5), ("train/loss", 1024, 0.25),
        ("train/grad_norm", 512, 3.0), ("train/grad_norm", 1024, 1e9),
        ("train/skipped", 512, 0.0), ("train/skipped", 1024, 1.0),
        ("eval/return", 1024, 30.125), ("eval/wall_s", 1024, 2.0), ("eval/steps_per_s", 1024, 512.0),
    ]
    # CSV values round-trip exactly (repr), not rounded to float32 as TensorBoard stores them.
    with TrainLog(tmp_path / "logs", "ppo-hopper-seed0") as log:  # a resumed run appends, header once
        log.record_eval(2048, 4.0, 1 / 3, 512.0)
    assert read_csv(run)[-3] == ("eval/return", 2048, 1 / 3)
    assert (run / CSV_NAME).read_text().count("tag,env_steps,value") == 1


def test_a_killed_run_leaves_readable_files(tmp_path):
    code = (
        "import os\n"
        "from gradgym.agents.logs import TrainLog\n"
        f"log = TrainLog({str(tmp_path)!r}, 'run')\n"
        "log.record_updates([1, 2, 3], {'loss': [3.0, 2.0, 1.0]})\n"
        "log.record_eval(3, 0.5, 7.0, 6.0)\n"
        "os._exit(1)  # killed: no close(), no interpreter shutdown\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    rows = read_csv(tmp_path / "run")
    assert rows == [("train/loss", 1, 3.0), ("train/loss", 2, 2.0), ("train/loss", 3, 1.0),
                    ("eval/return", 3, 7.0), ("eval/wall_s", 3, 0.5), ("eval/steps_per_s", 3, 6.0)]
    assert read_events(tmp_path / "run")["eval/return"] == [(3, 7.0)]
    # A kill inside a write leaves a partial last line: the next TrainLog drops it and appends whole rows.
    with open(tmp_path / "run" / CSV_NAME, "a") as f:
        f.write("train/loss,4,0.")
    with TrainLog(tmp_path, "run") as log:
        log.record_eval(5, 1.0, 8.0, 5.0)
    assert read_csv(tmp_path / "run")[6:] == [("eval/return", 5, 8.0), ("eval/wall_s", 5, 1.0),
                                              ("eval/steps_per_s", 5, 5.0)]


def test_bad_input_raises_named_errors(tmp_path):
    for name in ("", "a/b", "..", 3):
        with pytest.raises(ValueError, match="run_name must be one folder name"):
            TrainLog(tmp_path, name)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        TrainLog(tmp_path, "file")
    log = TrainLog(tmp_path, "run")
    with pytest.raises(ValueError, match="metric 'loss' has 1 values for 2 env_steps"):
        log.record_updates([1, 2], {"loss": [0.5]})
    with pytest.raises(ValueError, match="ret must be a number, got 'high'"):
        log.record_eval(1, 0.0, "high", 0.0)
    log.close()
    log.close()  # idempotent
    with pytest.raises(ValueError, match="is closed"):
        log.record_eval(1, 0.0, 1.0, 0.0)
    assert read_csv(tmp_path / "run") == []
