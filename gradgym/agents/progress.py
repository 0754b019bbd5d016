"""Training progress on stderr, shared by the JAX loop and the sb3 loop.

On a terminal: a rich progress bar with env steps, env steps/s, the latest
evaluation return and the ETA. Elsewhere (a log file, a pipe, CI): one plain
line every ``every_s`` seconds and at every evaluation point, so logs stay
readable. ``enabled=False`` prints nothing.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Column


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Progress of one training run: ``update(steps, wall_s, ret)`` after each iteration, then ``close()``.

    Steps/s and the ETA come from the training clock the caller passes
    (``wall_s``: training time, evaluation excluded), so they match the
    learning curve's numbers.

    Args:
        label: run name shown before the bar or line (e.g. ``"ppo hopper seed 0"``).
        total: env-step budget.
        enabled: ``False``: print nothing.
        every_s: seconds between plain lines (evaluation points always print).
        console: where to draw; default a rich ``Console`` on stderr. A bar is
            drawn when it is a terminal, plain lines otherwise.
    """

    def __init__(
        self, label: str, total: int, enabled: bool = True, every_s: float = 10.0, console: Console | None = None
    ):
        self.label, self.total, self.enabled, self.every_s = label, max(1, int(total)), enabled, every_s
        self._last = -math.inf
        self._bar: RichProgress | None = None
        self._console = console
        if enabled:
            self._console = console or Console(stderr=True)
            if self._console.is_terminal:
                # The numbers keep their room; the label, then the bar, give way on a narrow terminal.
                room = self._console.width - len(self._stats(self.total, 99_999.0, -9_999.0, 0.0)) - 2
                label_w = min(len(label), max(8, room - 6))
                self._bar = RichProgress(
                    TextColumn(
                        "[bold]{task.description}",
                        table_column=Column(width=label_w, no_wrap=True, overflow="ellipsis"),
                    ),
                    BarColumn(bar_width=max(4, min(40, room - label_w - 1))),
                    TextColumn("{task.fields[stats]}", table_column=Column(no_wrap=True)),
                    console=self._console,
                )
                self._task = self._bar.add_task(label, total=self.total, stats=self._stats(0, 0.0, None, math.inf))
                self._bar.start()

    def _stats(self, steps: int, rate: float, ret: float | None, eta: float) -> str:
        r = "n/a" if ret is None else f"{ret:.2f}"
        return f"{steps:,}/{self.total:,} · {rate:,.0f} steps/s · return {r} · ETA {_clock(eta)}"

    @property
    def is_bar(self) -> bool:
        """Whether a progress bar (rather than plain lines) is drawn."""
        return self._bar is not None

    def update(self, steps: int, wall_s: float, ret: float | None, force: bool = False) -> None:
        """Reports ``steps`` env steps done after ``wall_s`` training seconds; ``ret`` = latest return.

        ``force``: print a plain line now (evaluation points) instead of waiting ``every_s``.
        """
        if not self.enabled:
            return
        rate = steps / wall_s if wall_s > 0 else 0.0
        eta = max(0.0, (self.total - steps) / rate) if rate > 0 else math.inf
        if self._bar is not None:
            self._bar.update(self._task, completed=min(steps, self.total), stats=self._stats(steps, rate, ret, eta))
            return
        r = "n/a" if ret is None else f"{ret:.2f}"
        now = time.perf_counter()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        print(
            f"[{self.label}] {steps:,}/{self.total:,} env steps ({100 * steps / self.total:.0f}%) | "
            f"{rate:,.0f} steps/s | return {r} | {wall_s:.1f} s | ETA {_clock(eta)}",
            file=self._console.file if self._console is not None else sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        """Stops the bar (leaving its last state on screen); later updates print nothing."""
        self.enabled = False
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
