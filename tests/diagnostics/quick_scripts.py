"""Runs a ``scripts/fig*.py`` in quick mode in this process and checks what it wrote (test_scripts.py, test_ant.py)."""

import json
from pathlib import Path

from tests.scripts_loader import SCRIPTS_DIR, load_script

SCRIPTS = sorted(SCRIPTS_DIR.glob("fig*.py"))

ANT_FLOAT64 = ("fig2_ant_landscape", "fig2x_ant_estimators", "fig5_ant_spectrum")
"""Scripts whose quick modes compile the same float64 Ant programs as test_ant.py and ``gradgym diagnose
--quick`` (the policy gradient at 8 keys and unrolls up to 8, the 21-point loss slice, the 12-step closed-loop
Jacobians). They run in test_ant.py, so that each of those programs compiles once: with ``--dist loadfile``
two modules may run on different workers, which share no compiled code."""


def run_quick(path: Path, out: Path) -> None:
    """``main(["--quick", "--out", out])`` returns 0 and writes JSON (with ``"quick": true``) and non-trivial PNGs."""
    mod = load_script(path)
    assert mod.main(["--quick", "--out", str(out)]) == 0
    pngs = list(out.glob("*.png"))
    jsons = list(out.glob("*.json"))
    assert pngs and jsons, sorted(p.name for p in out.iterdir())
    for j in jsons:
        data = json.loads(j.read_text())
        assert data["quick"] is True
    assert all(p.stat().st_size > 5000 for p in pngs)
