"""Training logs: TensorBoard event files and a CSV of the same scalars, one folder per run.

``TrainLog(log_dir, run_name)`` writes to ``log_dir/run_name/``:

- ``events.out.tfevents.*``: TensorBoard scalars, written by
  ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard``
  package); view them with ``tensorboard --logdir log_dir``.
- ``scalars.csv``: one row ``tag,env_steps,value`` per scalar. Rows are
  appended and flushed at every ``record_*`` call, so a killed run leaves a
  valid file holding everything recorded before the kill (a partial last
  line, which only a kill inside the write itself can leave, is dropped when
  the next ``TrainLog`` opens the folder).

Tags: ``train/<metric>`` for per-update metrics (``train/loss``,
``train/grad_norm`` (before clipping), ``train/skipped``, ...), and
``eval/return``, ``eval/wall_s``, ``eval/steps_per_s`` at each evaluation
point. The x axis is always environment steps. A resumed run appends to the
same folder (TensorBoard opens a new event file beside the old ones).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

CSV_NAME = "scalars.csv"
CSV_HEADER = "tag,env_steps,value\n"


def _repair_csv(path: Path) -> None:
    """Drops a partial last line (a write killed midway); writes the header into a new or empty file."""
    if not path.exists() or path.stat().st_size == 0:
        with open(path, "w", newline="") as f:
            f.write(CSV_HEADER)
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


class TrainLog:
    """Scalars of one training run, as TensorBoard events and ``scalars.csv``.

    Use as a context manager, or call :meth:`close`::

        with TrainLog("logs", "ppo-hopper-seed0") as log:
            log.record_updates([512, 1024], {"loss": [0.5, 0.4], "grad_norm": [3.1, 2.7]})
            log.record_eval(1024, 12.5, 310.0, 81.9)

    Args:
        log_dir: parent folder of all runs (created if missing).
        run_name: this run's folder name inside ``log_dir`` (one path component,
            e.g. ``"ppo-hopper-seed0"``).

    Raises:
        ValueError: ``run_name`` is empty or not a single folder name, or
            ``log_dir/run_name`` exists and is not a folder.
    """

    def __init__(self, log_dir: str | os.PathLike, run_name: str):
        if not isinstance(run_name, str) or not run_name or run_name in (".", "..") or any(
                sep in run_name for sep in ("/", "\\", os.sep)):
            raise ValueError(f"run_name must be one folder name (no path separators), got {run_name!r}; "
                             "e.g. 'ppo-hopper-seed0'.")
        self.path = Path(log_dir) / run_name
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"log folder {str(self.path)!r} exists and is not a folder; pass another log_dir.")
        self.path.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(self.path))
        _repair_csv(self.path / CSV_NAME)
        self._csv = open(self.path / CSV_NAME, "a", newline="")  # noqa: SIM115 (closed in close())

    def _write(self, rows: list[tuple[str, int, float]]) -> None:
        if self._csv is None:
            raise ValueError(f"TrainLog {str(self.path)!r} is closed; open a new TrainLog to record more.")
        for tag, step, value in rows:
            self._writer.add_scalar(tag, value, step)
        # One write per call: a kill leaves whole rows (or, inside the write, a partial last line _repair_csv drops).
        self._csv.write("".join(f"{tag},{step},{value!r}\n" for tag, step, value in rows))
        self._csv.flush()
        self._writer.flush()

    def record_updates(self, env_steps: Sequence[int], metrics: Mapping[str, Sequence[float]]) -> None:
        """Per-update scalars, each at the env-step count after its update.

        Args:
            env_steps: env steps after each update (one per update, e.g. ``[512, 1024, ...]``).
            metrics: metric name -> one value per update (``loss``, ``grad_norm`` before
                clipping, ``skipped`` (cumulative), a hybrid agent's weight, ...); tagged ``train/<name>``.

        Raises:
            ValueError: a metric's length differs from ``len(env_steps)``.
        """
        steps = [int(s) for s in np.asarray(env_steps).reshape(-1)]
        rows = []
        for name, values in metrics.items():
            v = np.asarray(values, np.float64).reshape(-1)
            if v.size != len(steps):
                raise ValueError(f"record_updates: metric {name!r} has {v.size} values for {len(steps)} env_steps; "
                                 "pass one value per update.")
            rows += [(f"train/{name}", s, float(x)) for s, x in zip(steps, v, strict=True)]
        self._write(rows)

    def record_eval(self, env_steps: int, wall_s: float, ret: float, steps_per_s: float) -> None:
        """One evaluation point: tags ``eval/return``, ``eval/wall_s``, ``eval/steps_per_s`` at ``env_steps``.

        Args:
            env_steps: env steps trained so far.
            wall_s: training seconds so far (evaluation excluded).
            ret: mean evaluation return of the deterministic policy.
            steps_per_s: training throughput so far (env steps per training second; 0 at the start).
        """
        values = (("return", "ret", ret), ("wall_s", "wall_s", wall_s), ("steps_per_s", "steps_per_s", steps_per_s))
        for _, arg, v in values:
            a = np.asarray(v)
            if a.ndim != 0 or a.dtype.kind not in "iuf":
                raise ValueError(f"record_eval: {arg} must be a number, got {v!r}.")
        self._write([(f"eval/{tag}", int(env_steps), float(v)) for tag, _, v in values])

    def close(self) -> None:
        """Flushes and closes the event file and the CSV (idempotent)."""
        csv, self._csv = self._csv, None
        if csv is not None:
            csv.close()
            self._writer.close()

    def __enter__(self) -> TrainLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
