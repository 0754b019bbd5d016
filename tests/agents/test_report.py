"""The compare report's verdict and curve helpers, on hand-made results (no training)."""

import pytest

from gradgym.agents.report import render_markdown, return_at, time_to_reach, verdict


def _run(steps, wall, returns, **metrics):
    return {"curve": {"env_steps": steps, "wall_s": wall, "returns": returns}, "metrics": metrics}


def _agent(runs, final, grad=None, skipped=0.0):
    a = {"runs": runs, "final_return_mean": final, "final_return_std": 0.0, "initial_return_mean": 0.0,
         "env_steps": 100.0, "wall_s": runs[0]["curve"]["wall_s"][-1], "steps_per_s": 1.0,
         "skipped_updates": skipped}
    if grad is not None:
        a.update(grad_norm_mean=grad, grad_norm_median=grad, grad_norm_max=10 * grad)
    return a


@pytest.fixture
def results():
    # shac: best per env step but slow; ppo: fast, ahead at the moment it has spent its budget.
    shac = _agent([_run([0, 50, 100], [0.0, 50.0, 100.0], [0.0, 10.0, 30.0]),
                   _run([0, 50, 100], [0.0, 50.0, 100.0], [0.0, 20.0, 40.0])], 35.0, grad=2.5, skipped=3.0)
    ppo = _agent([_run([0, 50, 100], [0.0, 5.0, 10.0], [0.0, 15.0, 20.0]),
                  _run([0, 50, 100], [0.0, 5.0, 10.0], [0.0, 5.0, 20.0])], 20.0)
    return {"robot": "halfcheetah", "budget": 100, "seeds": 2, "total_wall_s": 220.0,
            "env": {"backend": "spring", "episode_length": 1000}, "agents": {"shac": shac, "ppo": ppo}}


def test_curve_helpers(results):
    runs = results["agents"]["shac"]["runs"]
    assert return_at(runs, "wall_s", 10.0) == 0.0  # shac's first evaluation after t=0 is at 50 s
    assert return_at(runs, "wall_s", 60.0) == 15.0  # mean of 10 and 20 at 50 s
    assert time_to_reach(runs, "env_steps", 20.0) == 100.0
    assert time_to_reach(runs, "env_steps", 15.0) == 50.0
    assert time_to_reach(runs, "env_steps", 99.0) is None


def test_verdict_names_winners_per_step_and_per_second(results):
    text = verdict(results)
    assert "per env step **shac** won (35.0 at 100 steps, mean of 2 seed(s))" in text
    # ppo finished in 10 s; at 10 s shac had only its initial evaluation (0.0), ppo its final 20.0.
    assert "per wall-clock second **ppo** won (20.0 after 10 s" in text
    assert "shac's gradient norm (before clipping) median 2.5, max 25, 3 skipped updates" in text
    md = render_markdown(results)
    assert md.splitlines()[2] == text
    assert "| shac **(best)** | 35.00" in md and "2.5 / 2.5 / 25" in md
