"""Every reproduction script and the ``gradgym diagnose`` command run in quick mode and write their outputs.

The float64 Ant scripts (``quick_scripts.ANT_FLOAT64``) and ``gradgym diagnose --quick`` run in test_ant.py,
which compiles their programs anyway; the others run here."""

import pytest

from tests.diagnostics.quick_scripts import ANT_FLOAT64, SCRIPTS, run_quick

HERE = [p for p in SCRIPTS if p.stem not in ANT_FLOAT64]


def test_scripts_found():
    stems = {p.stem for p in SCRIPTS}
    assert stems >= {"fig1_toy", "fig2_ant_landscape", "fig5_ant_spectrum"}
    assert stems >= set(ANT_FLOAT64)  # every script runs in one of the two modules


@pytest.mark.parametrize("path", HERE, ids=[p.stem for p in HERE])
def test_script_quick_mode(path, tmp_path):
    run_quick(path, tmp_path)


def test_diagnose_cli_bad_input(capsys):
    from gradgym.cli import main

    assert main(["diagnose", "--env", "antt", "--quick"]) == 2
    assert "antt" in capsys.readouterr().err
    assert main(["diagnose", "--horizons", "4,2", "--quick"]) == 2
    assert "increasing" in capsys.readouterr().err
