"""The compare report's statistics, verdict and curve helpers, on hand-made results with known answers
(no training)."""

import numpy as np
import pytest

from gradgym.agents import stats
from gradgym.agents.report import aggregate, render_markdown, return_at, time_to_reach, verdict


def _run(steps, wall, returns, **metrics):
    metrics = {"initial_return": returns[0], "final_return": returns[-1], "env_steps": steps[-1],
               "wall_s": wall[-1], "steps_per_s": 1.0, "skipped_updates": 0.0, **metrics}
    return {"curve": {"env_steps": steps, "wall_s": wall, "returns": returns}, "metrics": metrics}


def _results(agents, seeds):
    return {"robot": "halfcheetah", "budget": 100, "seeds": seeds, "total_wall_s": 220.0,
            "env": {"backend": "spring", "episode_length": 1000},
            "agents": {n: {"runs": runs, **aggregate(runs)} for n, runs in agents.items()}}


@pytest.fixture
def results():
    # shac: best per env step but slow; ppo: fast, ahead at the moment it has spent its budget.
    g = {"grad_norm_mean": 2.5, "grad_norm_median": 2.5, "grad_norm_max": 25.0, "skipped_updates": 3.0}
    shac = [_run([0, 50, 100], [0.0, 50.0, 100.0], [0.0, 40.0, 60.0 + i], **g) for i in range(3)]
    ppo = [_run([0, 50, 100], [0.0, 5.0, 10.0], [0.0, 15.0, 20.0 + i]) for i in range(3)]
    es = [_run([0, 50, 100], [0.0, 10.0, 20.0], [5.0, 5.0 - i, 4.0 + i]) for i in range(3)]
    return _results({"shac": shac, "ppo": ppo, "es": es}, 3)


def test_bootstrap_interval_known_answers():
    assert stats.bootstrap_ci([7.0, 7.0, 7.0]) == (7.0, 7.0)  # identical seeds: zero width
    # Means of 2 draws from {0, 10} are 0, 5, 10 with probability 1/4, 1/2, 1/4: the 2.5%/97.5% points are 0, 10.
    assert stats.bootstrap_ci([0.0, 10.0]) == (0.0, 10.0)
    # Means of 3 draws from {1, 2, 3}: P(mean = 1) = 1/27 > 2.5%, so the interval is the whole range.
    assert stats.bootstrap_ci([1.0, 2.0, 3.0]) == (1.0, 3.0)
    # Many seeds: the interval of the mean shrinks like 1/sqrt(n) around it.
    x = np.random.default_rng(1).normal(10.0, 1.0, 400)
    lo, hi = stats.bootstrap_ci(x)
    assert lo < x.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.15)
    assert stats.bootstrap_ci(x, seed=3) != (lo, hi) and stats.bootstrap_ci(x) == (lo, hi)  # seeded


def test_iqm_auc_and_estimate():
    assert stats.iqm([1.0, 2.0, 3.0, 4.0, 100.0, -100.0, 5.0, 6.0]) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert stats.auc([0, 50, 100], [0.0, 10.0, 30.0]) == pytest.approx((0.5 * 10 * 50 + 20 * 50) / 100)
    assert stats.auc([0], [3.0]) == 3.0
    assert stats.estimate([1.0, 2.0, 3.0])["stat"] == "mean"
    five = stats.estimate([1.0, 2.0, 3.0, 4.0, 100.0])
    assert five["stat"] == "iqm" and five["value"] == pytest.approx(3.0) and five["n"] == 5
    with pytest.raises(ValueError, match="at least one run"):
        stats.estimate([])
    with pytest.raises(ValueError, match="as many env_steps as returns"):
        stats.auc([0, 1], [1.0])


def test_rank_ties_and_winner():
    e = lambda v, lo, hi: {"value": v, "low": lo, "high": hi}  # noqa: E731
    assert stats.rank({"a": e(10, 9, 11), "b": e(5, 4, 6)}) == ("a", ["a"])
    assert stats.rank({"a": e(10, 7, 11), "b": e(8, 6, 9), "c": e(1, 0, 2)}) == (None, ["a", "b"])
    assert stats.learned([0, 0, 0], [1, 2, 3])["learned"] and not stats.learned([0, 0, 0], [-1, 0, 3])["learned"]


def test_curve_helpers(results):
    runs = results["agents"]["shac"]["runs"]
    assert return_at(runs, "wall_s", 10.0) == 0.0  # shac's first evaluation after t=0 is at 50 s
    assert return_at(runs, "wall_s", 60.0) == 40.0
    assert time_to_reach(runs, "env_steps", 40.0) == 50.0
    assert time_to_reach(runs, "env_steps", 99.0) is None


def test_verdict_names_a_clear_winner_and_who_did_not_learn(results):
    text = verdict(results)
    assert "per env step **shac** won (61.0 [60.0, 62.0], its interval clear of every other agent's)" in text
    # ppo finished in 10 s; at 10 s shac had only its initial evaluation (0.0), ppo its final 21 [20, 22].
    assert "per wall-clock second (return after 10 s, when the fastest agent had spent its budget) **ppo** won" in text
    assert "Did not learn at this budget (final - initial not clearly above 0): es." in text
    assert "shac's gradient norm (before clipping) median 2.5, max 25, 9 skipped updates" in text
    md = render_markdown(results)
    assert md.splitlines()[2] == text
    assert "| shac **(winner)** | 61.0 [60.0, 62.0] |" in md
    assert "| es | 5.0 [4.0, 6.0] |" in md and "| no |" in md


def test_verdict_calls_overlapping_intervals_a_tie():
    a = [_run([0, 100], [0.0, 10.0], [0.0, v]) for v in (10.0, 30.0, 50.0)]
    b = [_run([0, 100], [0.0, 10.0], [0.0, v]) for v in (20.0, 25.0, 30.0)]
    text = verdict(_results({"apg": a, "ppo": b}, 3))
    assert "per env step **apg and ppo** tie (intervals overlap: apg 30.0 [10.0, 50.0]; ppo 25.0 [20.0, 30.0])" in text
    assert "won" not in text.split("per wall-clock")[0]


def test_verdict_reports_the_hybrids_weight():
    """The hybrid's mean weight of the analytic gradient (over updates, then seeds) is part of the evidence."""
    g = {"grad_norm_mean": 1.0, "grad_norm_median": 1.0, "grad_norm_max": 4.0}
    hybrid = [_run([0, 100], [0.0, 10.0], [0.0, 30.0], alpha_mean=a, alpha_median=a + 0.1, **g) for a in (0.2, 0.4, 0.6)]
    text = verdict(_results({"hybrid": hybrid, "ppo": [_run([0, 100], [0.0, 10.0], [0.0, 20.0])] * 3}, 3))
    assert "hybrid's gradient norm (before clipping) median 1, max 4, 0 skipped updates" in text
    assert "hybrid weighted the analytic gradient by 0.40 on average (median 0.50;" in text


def test_verdict_reports_gippos_alpha():
    gippo = [_run([0, 100], [0.0, 10.0], [0.0, 30.0], gi_alpha_median=a, gi_alpha_max=3 * a) for a in (1e-3, 2e-3, 3e-3)]
    text = verdict(_results({"gippo": gippo, "ppo": [_run([0, 100], [0.0, 10.0], [0.0, 20.0])] * 3}, 3))
    assert "gippo stepped toward its alpha-policy with alpha median 0.002, max 0.009" in text
    assert "gippo's gradient norm" not in text  # PPO's loss gradient, not the simulator's
