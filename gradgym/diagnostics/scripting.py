"""Small helpers shared by the figure scripts in ``scripts/`` (argument parsing, outputs, timing)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gradgym.diagnostics.io import save_json, save_npz


def figure_parser(description: str, name: str) -> argparse.ArgumentParser:
    """Parser with ``--quick``, ``--out`` (default ``runs/<name>``) and ``--seed``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny budget: a smoke test that runs in well under a minute")
    p.add_argument("--out", type=Path, default=Path("runs") / name, help=f"output folder (default runs/{name})")
    p.add_argument("--seed", type=int, default=0, help="master PRNG seed")
    return p


def sweep_parser(description: str, name: str, updates: int) -> argparse.ArgumentParser:
    """:func:`figure_parser` plus the budget of a truncated-BPTT sweep on Ant (``--episode-length``, ``--envs``,
    ``--updates``; ``--quick`` shrinks them to 8, 2, 2 in :func:`parse_sweep_args`)."""
    p = figure_parser(description, name)
    p.add_argument("--episode-length", type=int, default=200)
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--updates", type=int, default=updates)
    return p


def parse_sweep_args(p: argparse.ArgumentParser, argv: list[str] | None, **quick: Any) -> argparse.Namespace:
    """Parses ``argv``; with ``--quick`` the budget becomes 8-step episodes, 2 envs, 2 updates, plus ``quick``."""
    args = p.parse_args(argv)
    if args.quick:
        for k, v in {"episode_length": 8, "envs": 2, "updates": 2, **quick}.items():
            setattr(args, k, v)
    return args


def comma_list(text: str, convert: Callable[[str], Any], option: str) -> list:
    """``"1,5,10"`` -> ``[1, 5, 10]``; a ``ValueError`` naming ``option`` otherwise."""
    try:
        return [convert(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated {convert.__name__} values, got {text!r}") from None


def finish(out: Path, name: str, res: dict, plot: Callable[[Path], Any], summary: Sequence[str] = (),
           **arrays: Any) -> int:
    """A figure script's last step; returns its exit code, 0.

    Writes ``<name>.json`` (``res``), ``<name>.npz`` (``arrays``, if any) and
    ``<name>.png`` (``plot(path)``) into ``out``, then prints the ``summary``
    lines and where the figure went.
    """
    save_json(out / f"{name}.json", res)
    if arrays:
        save_npz(out / f"{name}.npz", **arrays)
    png = out / f"{name}.png"
    plot(png)
    for line in summary:
        print(line)
    print(f"wrote {png}")
    return 0


class Progress:
    """Periodic progress lines: ``[name] i/n  elapsed  rate  message``."""

    def __init__(self, name: str, total: int):
        self.name, self.total, self.t0 = name, total, time.time()

    def __call__(self, i: int, msg: str = "") -> None:
        el = time.time() - self.t0
        rate = i / el if el > 0 else float("nan")
        print(f"[{self.name}] {i}/{self.total}  {el:6.1f}s  {rate:.2f}/s  {msg}", flush=True)
