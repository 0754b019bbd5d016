"""Small helpers shared by the figure scripts in ``scripts/`` (argument parsing, output folder, timing)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def figure_parser(description: str, name: str) -> argparse.ArgumentParser:
    """Parser with ``--quick``, ``--out`` (default ``runs/<name>``) and ``--seed``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny budget: a smoke test that runs in well under a minute")
    p.add_argument("--out", type=Path, default=Path("runs") / name, help=f"output folder (default runs/{name})")
    p.add_argument("--seed", type=int, default=0, help="master PRNG seed")
    return p


class Progress:
    """Periodic progress lines: ``[name] i/n  elapsed  rate  message``."""

    def __init__(self, name: str, total: int):
        self.name, self.total, self.t0 = name, total, time.time()

    def __call__(self, i: int, msg: str = "") -> None:
        el = time.time() - self.t0
        rate = i / el if el > 0 else float("nan")
        print(f"[{self.name}] {i}/{self.total}  {el:6.1f}s  {rate:.2f}/s  {msg}", flush=True)
