"""Checkpoints (round trip, resume, corrupt/foreign files), bad configs, and the CLI."""

import json
import shutil

import jax
import numpy as np
import pytest

from gradgym.agents import AGENTS, get_agent, train
from gradgym.agents.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from gradgym.agents.trainer import build_agent
from tests.agents.conftest import FAST

CKPT_CFG = {**FAST, "num_evals": 2, "total_steps": 4 * 512}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, pend):
    """One PPO run (4 iterations) with checkpoints at iterations 2 and 4."""
    d = tmp_path_factory.mktemp("ckpt")
    result = train("ppo", pend, CKPT_CFG, seed=1, checkpoint_dir=str(d), progress=False)
    return d, result


def test_checkpoint_round_trip_bit_identical(tmp_path, pend):
    # The same resolved config the trainer builds, so the compiled PPO program is shared.
    cfg = get_agent("ppo").default_config("inverted_pendulum", {**CKPT_CFG, "total_steps": 1, "num_evals": 1,
                                                                "eval_episodes": 1})
    agent = build_agent("ppo", pend, cfg)
    state, _ = agent.iterate(agent.init(jax.random.PRNGKey(3)))
    path = save_checkpoint(tmp_path / "ckpt_00000001.gradgym", state, {"agent": "ppo"})
    restored, header = load_checkpoint(path, agent.init(jax.random.PRNGKey(0)), {"agent": "ppo"})
    assert header["agent"] == "ppo"
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_resume_continues_the_same_curve(run_dir, tmp_path, pend):
    d, full = run_dir
    files = sorted(p.name for p in d.iterdir())
    assert files == ["ckpt_00000002.gradgym", "ckpt_00000004.gradgym"]
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(d / "ckpt_00000002.gradgym", half)
    resumed = train("ppo", pend, CKPT_CFG, seed=1, checkpoint_dir=str(half), resume=True, progress=False)
    assert resumed.curve.env_steps == full.curve.env_steps
    assert resumed.curve.returns == full.curve.returns  # bit-identical floats
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(full.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert latest_checkpoint(half).name == "ckpt_00000004.gradgym"


def test_bad_checkpoints_raise_named_errors(run_dir, tmp_path, pend):
    d, _ = run_dir
    good = (d / "ckpt_00000004.gradgym").read_bytes()
    cases = {
        "foreign": (b'{"not": "a checkpoint"}', "not a gradgym checkpoint"),
        "truncated": (good[: len(good) - 100], "truncated"),
        "corrupt": (good[:-50] + bytes([good[-50] ^ 0xFF]) + good[-49:], "corrupt"),
    }
    for name, (data, message) in cases.items():
        sub = tmp_path / name
        sub.mkdir()
        (sub / "ckpt_00000004.gradgym").write_bytes(data)
        with pytest.raises(CheckpointError, match=message) as err:
            train("ppo", pend, CKPT_CFG, seed=1, checkpoint_dir=str(sub), resume=True, progress=False)
        assert "ckpt_00000004.gradgym" in str(err.value)
    # Same file, different run settings: a mismatch, named.
    with pytest.raises(CheckpointError, match="does not match this run: seed"):
        train("ppo", pend, CKPT_CFG, seed=2, checkpoint_dir=str(d), resume=True, progress=False)
    with pytest.raises(CheckpointError, match="does not match this run: its config differs: 'learning_rate' is ") as err:
        train("ppo", pend, {**CKPT_CFG, "learning_rate": 1e-4}, seed=1, checkpoint_dir=str(d), resume=True,
              progress=False)
    assert "in the file but 0.0001 here" in str(err.value) and "'num_envs'" not in str(err.value)


@pytest.mark.parametrize("agent", list(AGENTS))
def test_bad_configs_raise_named_errors(agent):
    info = get_agent(agent)
    with pytest.raises(ValueError, match="'total_steps'"):
        info.default_config("hopper", {"total_steps": 0})
    with pytest.raises(ValueError, match="'hidden'"):
        info.default_config("hopper", {"hidden": (32, -1)})
    with pytest.raises(ValueError, match="Unknown config field.*'lr'"):
        info.default_config("hopper", {"lr": 0.1})
    if agent in ("apg", "ppo", "es"):
        with pytest.raises(ValueError, match="'learning_rate'"):
            info.default_config("hopper", {"learning_rate": float("nan")})


def test_agent_specific_config_errors():
    with pytest.raises(ValueError, match="'truncation'.*divide"):
        get_agent("apg").default_config("ant", {"horizon": 32, "truncation": 5})
    with pytest.raises(ValueError, match="'minibatches'"):
        get_agent("ppo").default_config("ant", {"num_envs": 3, "rollout_steps": 5, "minibatches": 4})
    with pytest.raises(ValueError, match="'lr_schedule'.*'linear'"):
        get_agent("ppo").default_config("ant", {"lr_schedule": "cos"})
    with pytest.raises(ValueError, match="'strategy'.*open_es"):
        get_agent("es").default_config("ant", {"strategy": "nope"})
    with pytest.raises(ValueError, match="'population_size'.*even"):
        get_agent("es").default_config("ant", {"population_size": 7})
    with pytest.raises(ValueError, match="'algorithm'.*PPO"):
        get_agent("sb3").default_config("ant", {"algorithm": "NotAnAlgo"})
    with pytest.raises(ValueError, match="Unknown agent 'ppx'; available: " + ", ".join(AGENTS)):
        get_agent("ppx")
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        train("ppo", "inverted_pendulum", resume=True)


def test_cli_compare_and_train_write_reports(tmp_path):
    from gradgym.cli import main

    out = tmp_path / "run"
    # es takes its evaluation points from --evals (4), ppo from its config, which wins (3).
    cfg = json.dumps({"es": {"eval_episodes": FAST["eval_episodes"]}, "ppo": {**FAST, "num_evals": 3}})
    rc = main(["compare", "--env", "inverted_pendulum", "--episode-length", "100", "--agents", "ppo,es",
               "--seeds", "2", "--budget", "6400", "--config", cfg, "--evals", "4", "--out", str(out), "--quiet"])
    assert rc == 0
    for f in ("report.md", "results.csv", "results.json", "curves_steps.png", "curves_wall.png"):
        assert (out / f).stat().st_size > 0, f
    results = json.loads((out / "results.json").read_text())
    assert set(results["agents"]) == {"ppo", "es"}
    assert len(results["agents"]["es"]["runs"]) == 2
    report = (out / "report.md").read_text()
    assert "| ppo" in report and "| es" in report and "95% CI" in report and "**Verdict**" in report
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert rows[0] == "agent,seed,env_steps,wall_s,return" and len(rows) == 1 + 2 * (3 + 1) + 2 * (4 + 1)
    assert (out / "curves_steps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = tmp_path / "train.json"
    rc = main(["train", "--agent", "es", "--env", "inverted_pendulum", "--episode-length", "100", "--budget", "3200",
               "--config", json.dumps(FAST), "--out", str(summary), "--quiet"])
    assert rc == 0
    assert json.loads(summary.read_text())["curve"]["env_steps"][-1] >= 3200
    assert main(["compare", "--agents", "apg,nope", "--quiet"]) == 2
