"""The results page from the hand-made stored runs in tests/data/results_page/.

The data: hopper, one ``gradgym compare`` results.json (ppo with three identical
seeds, apg with final returns 100 / 200 / 300); reacher, one JSON per run (es,
final -10 / -12 / -11; shac with empty metrics, so everything comes from the
curve); a manifest that also plans reacher ppo, which is not stored.
"""

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gradgym.agents.results_page import ResultsError, load_results, write_results_page
from gradgym.agents.stats import bootstrap_ci
from tests.scripts_loader import SCRIPTS_DIR, load_script

DATA = Path(__file__).resolve().parents[1] / "data" / "results_page"
SCRIPT = SCRIPTS_DIR / "results_page.py"


def exact_percentile_ci(values: list[float]) -> tuple[float, float]:
    """The bootstrap interval with every resample enumerated: 2.5% and 97.5% quantiles of the resample means."""
    means = sorted(np.mean(c) for c in itertools.product(values, repeat=len(values)))
    n = len(means)
    low = next(m for i, m in enumerate(means) if (i + 1) / n > 0.025)
    high = next(m for i, m in reversed(list(enumerate(means))) if (n - i) / n > 0.025)
    return low, high


def table_rows(page: str, robot: str) -> dict[str, list[str]]:
    """The cells of each row of the robot's table, by agent name."""
    section = page.split(f"## {robot}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}


@pytest.fixture()
def page(tmp_path) -> tuple[str, Path]:
    written = write_results_page(DATA, tmp_path / "results.md", tmp_path / "fig")
    assert written[-1] == tmp_path / "results.md"
    return written[-1].read_text(), tmp_path


def test_bootstrap_ci_known_answers():
    assert bootstrap_ci([1234.5, 1234.5, 1234.5]) == (1234.5, 1234.5)  # identical seeds: zero width
    # Two seeds: the resample means are a, (a+b)/2, b with probability 1/4, 1/2, 1/4, so the interval is [a, b].
    assert bootstrap_ci([3.0, 7.0]) == exact_percentile_ci([3.0, 7.0]) == (3.0, 7.0)
    # Three seeds: three draws of the smallest has probability 1/27 > 2.5%, so the interval is the range.
    assert exact_percentile_ci([100.0, 200.0, 300.0]) == (100.0, 300.0)
    assert bootstrap_ci([100.0, 200.0, 300.0]) == (100.0, 300.0)
    # Five seeds: a proper interior interval, close to the exact one.
    vals = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert bootstrap_ci(vals) == pytest.approx(exact_percentile_ci(vals), abs=0.5)
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])


def test_page_numbers(page):
    text, _ = page
    hopper = table_rows(text, "hopper")
    assert set(hopper) == {"apg", "ppo"}
    # apg: final 100/200/300 -> mean 200, interval [100, 300]; best 100/250/350 -> mean 233.3, [100, 350].
    assert hopper["apg"][1:7] == ["3", "3k", "200.0 [100.0, 300.0]", "233.3 [100.0, 350.0]", "30", "100"]
    # ppo: identical seeds -> zero-width interval; 3,000 steps in 6 s.
    assert hopper["ppo"][1:7] == ["3", "3k", "500.0 [500.0, 500.0]", "600.0 [600.0, 600.0]", "6", "500"]
    assert hopper["ppo"][7] == "`gradgym compare --env hopper --agents ppo,apg --seeds 3 --budget 3000`"

    reacher = table_rows(text, "reacher")
    assert reacher["es"][3] == "-11.0 [-12.0, -10.0]"
    assert reacher["es"][7].startswith("`for S in 0 1 2; do gradgym train --agent es --env reacher --budget 2000 "
                                       "--seed $S --out res/es-reacher-s$S.json; done`")
    # shac stores no metrics: final, best, wall-clock and steps/s come from the curve (2,000 steps in 8 s).
    assert reacher["shac"][3:7] == ["-5.00 [-5.00, -5.00]", "-5.00 [-5.00, -5.00]", "8", "250"]
    # The planned ppo run has no JSON: the row says so and gives the command.
    assert reacher["ppo"][1] == "0 of 3" and reacher["ppo"][3] == "–"
    assert "not stored yet" in reacher["ppo"][7]
    assert ("run `for S in 0 1 2; do gradgym train --agent ppo --env reacher --budget 2000 --seed $S "
            "--out res/ppo-reacher-s$S.json; done` then `python scripts/results_page.py`") in reacher["ppo"][7]
    missing = text.split("## Missing runs", 1)[1]
    assert "- reacher, ppo, 2k: seeds 0, 1, 2" in missing and "hopper" not in missing


def test_pngs_are_valid(page):
    import matplotlib.image

    text, tmp = page
    for robot in ("hopper", "reacher"):
        png = tmp / "fig" / f"{robot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = matplotlib.image.imread(png)
        assert img.ndim == 3 and img.shape[1] > 2 * img.shape[0]  # two panels side by side
        assert f"](fig/{robot}.png)" in text
    assert not list(tmp.rglob("*.tmp"))


def test_partly_stored_row_names_the_missing_seeds(tmp_path):
    shutil.copytree(DATA, tmp_path / "res")
    (tmp_path / "res" / "es-reacher-s2.json").unlink()
    write_results_page(tmp_path / "res", tmp_path / "results.md")
    text = (tmp_path / "results.md").read_text()
    es = table_rows(text, "reacher")["es"]
    assert es[1] == "2 of 3" and es[3] == "-11.0 [-12.0, -10.0]"  # mean of -10 and -12; two seeds: [a, b]
    assert "missing seeds 2: run `gradgym train --agent es --env reacher --budget 2000 --seed 2" in es[7]
    assert "- reacher, es, 2k: seeds 2" in text


def test_malformed_json_names_the_file(tmp_path, capsys):
    shutil.copytree(DATA, tmp_path / "res")
    bad = tmp_path / "res" / "broken-run.json"
    bad.write_text('{"agent": "ppo", "robot": ')
    with pytest.raises(ResultsError, match="broken-run.json: not valid JSON"):
        load_results(tmp_path / "res")
    script = load_script(SCRIPT)
    assert script.main(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "results.md")]) == 2
    assert "broken-run.json" in capsys.readouterr().err
    assert not (tmp_path / "results.md").exists()

    bad.write_text(json.dumps({"agent": "ppo", "robot": "hopper", "seed": 0}))
    with pytest.raises(ResultsError, match="broken-run.json: a run summary lacks 'config', 'curve', 'metrics'"):
        load_results(tmp_path / "res")


def test_duplicate_and_mixed_runs_are_refused(tmp_path):
    shutil.copytree(DATA, tmp_path / "res")
    shutil.copy(tmp_path / "res" / "es-reacher-s0.json", tmp_path / "res" / "es-reacher-copy.json")
    with pytest.raises(ResultsError, match="es-reacher-s0.json.*also stored in .*es-reacher-copy.json"):
        load_results(tmp_path / "res")
    (tmp_path / "res" / "es-reacher-copy.json").unlink()
    run = json.loads((tmp_path / "res" / "es-reacher-s2.json").read_text())
    run["config"]["learning_rate"] = 0.5
    (tmp_path / "res" / "es-reacher-s2.json").write_text(json.dumps(run))
    with pytest.raises(ResultsError, match="another config.*learning_rate.*label"):
        write_results_page(tmp_path / "res", tmp_path / "results.md")
    run["label"] = "lr 0.5"
    (tmp_path / "res" / "es-reacher-s2.json").write_text(json.dumps(run))
    write_results_page(tmp_path / "res", tmp_path / "results.md")
    assert table_rows((tmp_path / "results.md").read_text(), "reacher")["es (lr 0.5)"][3] == "-11.0 (1 seed, no interval)"


def test_variants_from_another_folder_sit_beside_the_main_runs(tmp_path):
    """``also``: runs of another folder join the robot's table as their own rows (by label); the page names the
    whole command; a run stored in both folders is refused, naming both files."""
    shutil.copytree(DATA, tmp_path / "res")
    (tmp_path / "var").mkdir()
    run = json.loads((tmp_path / "res" / "es-reacher-s0.json").read_text())
    run.update(label="lr 0.5", command="gradgym train --agent es --env reacher --seed 0")
    run["config"]["learning_rate"] = 0.5
    (tmp_path / "var" / "es-lr-s0.json").write_text(json.dumps(run))
    write_results_page(tmp_path / "res", tmp_path / "v.md", tmp_path / "fig", also=[tmp_path / "var"],
                       title="ES variants")
    text = (tmp_path / "v.md").read_text()
    assert text.startswith("# ES variants\n")
    rows = table_rows(text, "reacher")
    assert rows["es (lr 0.5)"][3] == "-10.0 (1 seed, no interval)" and rows["es"][1] == "3"
    assert f"--also {(tmp_path / 'var').as_posix()} --figures {(tmp_path / 'fig').as_posix()} --title 'ES variants'" \
        in text
    shutil.copy(tmp_path / "res" / "es-reacher-s1.json", tmp_path / "var")
    with pytest.raises(ResultsError, match="es-reacher-s1.json.*also stored in"):
        write_results_page(tmp_path / "res", tmp_path / "v.md", also=[tmp_path / "var"])
