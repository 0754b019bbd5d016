"""Every reproduction script and the ``gradgym diagnose`` command run in quick mode and write their outputs."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "scripts").glob("fig*.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"_gradgym_script_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scripts_found():
    assert {p.stem for p in SCRIPTS} >= {"fig1_toy", "fig2_ant_landscape", "fig5_ant_spectrum"}


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_quick_mode(path, tmp_path):
    mod = _load(path)
    assert mod.main(["--quick", "--out", str(tmp_path)]) == 0
    pngs = list(tmp_path.glob("*.png"))
    jsons = list(tmp_path.glob("*.json"))
    assert pngs and jsons, sorted(p.name for p in tmp_path.iterdir())
    for j in jsons:
        data = json.loads(j.read_text())
        assert data["quick"] is True
    assert all(p.stat().st_size > 5000 for p in pngs)


def test_diagnose_cli_quick(tmp_path):
    from gradgym.cli import main

    out = tmp_path / "report"
    assert main(["diagnose", "--env", "ant", "--quick", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["runs"]) == {"init x 1", "init x 0.01"}
    for run in rep["runs"].values():
        assert run["horizon"]["horizons"] == [1, 2, 4, 8]
        assert 1 <= run["recommendation"]["horizon"] <= 8
        assert len(run["spectrum"]["step_max_abs"]) == 12
    text = (out / "summary.md").read_text()
    assert "recommended truncation" in text and "Rule" in text
    for name in ("horizon.png", "spectrum.png", "slices.png"):
        assert (out / name).stat().st_size > 5000


def test_diagnose_cli_bad_input(capsys):
    from gradgym.cli import main

    assert main(["diagnose", "--env", "antt", "--quick"]) == 2
    assert "antt" in capsys.readouterr().err
    assert main(["diagnose", "--horizons", "4,2", "--quick"]) == 2
    assert "increasing" in capsys.readouterr().err
