"""Trained policies from checkpoints: `gradgym eval` (bit-identical to the trainer's evaluation; `--sample`), `gradgym render
--checkpoint` (HTML, GIF, MP4), SB3 checkpoints, bad input; and `gradgym train --out/--log-dir`'s files."""

import json

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import AGENTS, get_agent, train
from gradgym.agents.base import eval_keys, make_evaluator, policy_net
from gradgym.agents.checkpoint import CheckpointError, env_options, save_checkpoint
from gradgym.agents.evaluation import evaluate_policy
from gradgym.agents.normalize import normalize
from gradgym.agents.policy_io import load_policy
from gradgym.agents.sb3 import rollout_numpy
from gradgym.agents.trainer import build_agent
from gradgym.agents.watch import render_policy
from gradgym.cli import main
from gradgym.envs import make
from gradgym.envs.render import gif_frame_ms
from tests.agents.conftest import FAST
from tests.agents.test_logs import read_csv, read_events
from tests.scripts_loader import load_script

PPO_CFG = {**FAST, "num_evals": 2, "total_steps": 4 * 512}
SB3_CFG = {"eval_episodes": 2, "num_evals": 2, "total_steps": 2048, "hidden": (16,)}
SEED = 1  # not 0: the default evaluation must take the run's seed from the checkpoint
# The other agents' checkpoints, on 50-step pendulum episodes (a new agent gets the generic settings).
TINY = {"eval_episodes": 2, "hidden": (8,)}
TINY_AGENT = {"es": {"population_size": 8}, "apg": {"num_envs": 2, "horizon": 8}, "shac": {"num_envs": 2, "horizon": 8},
              "hybrid": {"num_envs": 2, "horizon": 8}, "gippo": {"num_envs": 2, "rollout_steps": 8, "minibatches": 2}}


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """A PPO run on the 100-step pendulum through the CLI: checkpoints, summary JSON + PNG, logs."""
    d = tmp_path_factory.mktemp("ppo")
    rc = main(["train", "--agent", "ppo", "--env", "inverted_pendulum", "--episode-length", "100", "--seed", str(SEED),
               "--config", json.dumps(PPO_CFG), "--checkpoint-dir", str(d / "ck"), "--out", str(d / "run.json"),
               "--log-dir", str(d / "logs"), "--quiet"])
    assert rc == 0
    return d, json.loads((d / "run.json").read_text())


@pytest.fixture(scope="module")
def ppo_policy(ppo_run):
    return load_policy(ppo_run[0] / "ck")


def test_train_cli_writes_curve_png_and_logs(ppo_run):
    d, summary = ppo_run
    assert (d / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = d / "logs" / f"ppo-inverted_pendulum-seed{SEED}"
    curve = summary["curve"]
    evals = [(s, v) for tag, s, v in read_csv(run) if tag == "eval/return"]
    assert evals == list(zip(curve["env_steps"], curve["returns"], strict=True))
    events = read_events(run)
    assert [s for s, _ in events["eval/return"]] == curve["env_steps"]
    np.testing.assert_allclose([v for _, v in events["eval/return"]], curve["returns"], rtol=1e-6)
    assert len(events["train/grad_norm"]) == 4 and all(np.isfinite(v) for _, v in events["train/grad_norm"])


def test_eval_equals_the_trainers_evaluation_bit_for_bit(ppo_run, ppo_policy):
    _, summary = ppo_run
    p = ppo_policy
    assert (p.agent, p.env.robot, p.env.episode_length, p.seed) == ("ppo", "inverted_pendulum", 100, SEED)
    assert p.path.name == "ckpt_00000004.gradgym"  # the newest of the folder
    res = evaluate_policy(p)
    assert res.return_mean == summary["curve"]["returns"][-1] == res.training_return  # the trainer's score, exactly
    keys = eval_keys(SEED, FAST["eval_episodes"])
    ref = make_evaluator(p.env, p.config.hidden, p.config.activation, p.horizon)(p.params, p.stats, keys)
    np.testing.assert_array_equal(res.returns, np.asarray(ref, np.float64))
    # Lengths against a plain Python loop over the jitted batched step (the act() used for rendering).
    loop_returns, loop_lengths = rollout_numpy(p.env, p.act, keys, p.horizon)
    np.testing.assert_array_equal(res.lengths, loop_lengths)
    np.testing.assert_allclose(res.returns, loop_returns, rtol=1e-5)
    assert res.length_mean == np.mean(loop_lengths) and 1 <= res.lengths.min() and res.lengths.max() <= 100
    assert res.return_ci95 > 0 or np.ptp(res.returns) == 0
    other = evaluate_policy(p, episodes=FAST["eval_episodes"], seed=SEED + 4)  # same shape: no recompile
    assert other.training_return is None and other.seed == SEED + 4
    assert not np.array_equal(other.returns, res.returns) or not np.array_equal(other.lengths, res.lengths)


class _SampledLoop:
    """The policy's sampled action in a plain loop: step ``t`` of episode ``i`` draws its noise from the
    ``t``-th of ``split(split(key_i)[1], horizon)``, the keys :func:`gradgym.envs.rollout` gives the policy."""

    def __init__(self, policy, keys):
        _, fn = policy_net(policy.env.action_size, policy.config.hidden, policy.config.activation)
        self._step_keys = [jax.random.split(jax.random.split(k)[1], policy.horizon) for k in keys]
        self._act = jax.jit(jax.vmap(lambda o, k: fn(policy.params, normalize(policy.stats, o), k)))
        self.t = 0

    def __call__(self, obs):
        keys = jnp.stack([ks[self.t] for ks in self._step_keys])
        self.t += 1
        return np.asarray(self._act(jnp.asarray(obs), keys))


def test_sampled_eval_draws_the_rollouts_noise_and_repeats(ppo_policy, capsys, tmp_path):
    """``sample=True`` scores the sampled policy: equal to a plain loop that samples with the rollout's per-step
    keys, bit-identical on a rerun, different from the mean action, never reported as the run's own score."""
    p = ppo_policy
    det = evaluate_policy(p)
    res = evaluate_policy(p, sample=True)
    assert res.sample and not det.sample and res.training_return is None and det.training_return is not None
    np.testing.assert_array_equal(evaluate_policy(p, sample=True).returns, res.returns)
    assert not np.array_equal(res.returns, det.returns)
    keys = eval_keys(SEED, FAST["eval_episodes"])
    loop_returns, loop_lengths = rollout_numpy(p.env, _SampledLoop(p, keys), keys, p.horizon)
    np.testing.assert_array_equal(res.lengths, loop_lengths)
    np.testing.assert_allclose(res.returns, loop_returns, rtol=1e-5)
    with pytest.raises(ValueError, match="sample must be True or False, got 'yes'"):
        evaluate_policy(p, sample="yes")
    out = tmp_path / "sampled.json"
    assert main(["eval", "--checkpoint", str(p.path), "--sample", "--out", str(out)]) == 0
    assert "sampled actions" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["sample"] is True and doc["returns"] == [float(r) for r in res.returns]


def test_sampled_eval_script_scores_every_checkpoint_both_ways(ppo_run, ppo_policy, tmp_path):
    """scripts/diag_sampled_eval.py scores each kept checkpoint with the mean action and sampled actions, as
    evaluate_policy does, and plots the stored scores."""
    script = load_script("diag_sampled_eval.py")
    d, summary = ppo_run
    out = tmp_path / "s.json"
    episodes = str(FAST["eval_episodes"])  # the compiled evaluators of the tests above
    assert script.main(["measure", str(d / "ck"), "--episodes", episodes, "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["label"] == f"ppo, seed {SEED}" and [p["env_steps"] for p in doc["points"]] == [1024, 2048]
    last = doc["points"][-1]
    assert last["mean"]["return_mean"] == pytest.approx(summary["curve"]["returns"][-1], abs=0.01)
    assert last["sampled"]["returns"] == pytest.approx(evaluate_policy(ppo_policy, sample=True).returns, abs=0.01)
    assert 0.0 <= last["sampled"]["ended_early"] <= 1.0
    assert script.main(["plot", str(out), str(out), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_eval_cli_prints_and_writes_json(ppo_run, tmp_path, capsys):
    d, summary = ppo_run
    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(d / "ck"), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["return_mean"] == summary["curve"]["returns"][-1]
    assert doc["episodes"] == len(doc["returns"]) == len(doc["lengths"]) == FAST["eval_episodes"]
    assert doc["agent"] == "ppo" and doc["run_seed"] == doc["seed"] == SEED and doc["env_steps"] == 2048
    printed = capsys.readouterr().out
    assert f"return {doc['return_mean']:.2f} ±" in printed and "mean episode length" in printed
    assert "deterministic action" in printed and doc["sample"] is False


def test_render_checkpoint_html_gif_mp4(ppo_run, ppo_policy, tmp_path):
    d, _ = ppo_run
    assert main(["render", "--checkpoint", str(d / "ck"), "--steps", "5"]) == 0
    assert "Brax visualizer" in (d / "ck" / "inverted_pendulum.html").read_text()
    first_length = int(evaluate_policy(ppo_policy).lengths[0])  # the clip is evaluation episode 0
    steps = 12
    expected = 1 + min(steps, first_length)  # the reset state, then one per step until the episode ends
    gif, n = render_policy(ppo_policy, tmp_path / "p.gif", steps, width=64, height=64)
    assert n == expected
    frames = iio.imread(gif, index=None)
    assert frames.shape[1:] == (64, 64, 3) and 2 <= len(frames) <= n
    # Pillow merges identical consecutive frames; the clip's duration stays one delay per state.
    assert sum(iio.immeta(gif, index=i)["duration"] for i in range(len(frames))) == n * gif_frame_ms(ppo_policy.env.dt)
    mp4, n = render_policy(ppo_policy, tmp_path / "p.mp4", steps, width=64, height=64)
    assert n == expected and iio.imread(mp4, index=None).shape == (n, 64, 64, 3)
    png, _ = render_policy(ppo_policy, tmp_path / "p.png", 2, width=64, height=64)
    assert iio.imread(png).shape == (64, 64, 3)


def test_sb3_checkpoint_eval_and_logs(tmp_path, pend):
    result = train("sb3", pend, SB3_CFG, seed=2, checkpoint_dir=str(tmp_path / "ck"), log_dir=str(tmp_path / "logs"),
                   progress=False)
    policy = load_policy(tmp_path / "ck")
    assert policy.agent == "sb3" and policy.stats is None and policy.env is pend
    res = evaluate_policy(policy)
    assert res.return_mean == result.curve.returns[-1] == res.training_return
    assert res.lengths.shape == (2,) and res.lengths.max() <= 100
    obs = np.zeros((3, pend.observation_size), np.float32)
    np.testing.assert_array_equal(policy.act(obs), result.policy(obs))
    sampled = evaluate_policy(policy, sample=True)  # torch's noise, seeded from the episode keys
    np.testing.assert_array_equal(evaluate_policy(policy, sample=True).returns, sampled.returns)
    assert sampled.training_return is None and not np.array_equal(sampled.returns, res.returns)
    run = tmp_path / "logs" / "sb3-inverted_pendulum-seed2"
    rows = read_csv(run)
    assert [(s, v) for tag, s, v in rows if tag == "eval/return"] == list(
        zip(result.curve.env_steps, result.curve.returns, strict=True))
    assert {"train/loss", "train/value_loss", "train/entropy_loss"} <= {tag for tag, _, _ in rows}
    assert "eval/return" in read_events(run)
    html, n = render_policy(policy, tmp_path / "sb3.html", 3)
    assert "Brax visualizer" in html.read_text() and 2 <= n <= 4


@pytest.mark.parametrize("agent", [a for a in AGENTS if a not in ("ppo", "sb3")])
def test_every_agents_checkpoint_restores_its_policy(agent, tmp_path):
    """A checkpoint as the trainer writes it (an init state, changed so a restore that ignored the file would
    fail) loads for every JAX agent and scores what the trainer's evaluator gives for the saved policy."""
    env = make("inverted_pendulum", episode_length=50)
    cfg = get_agent(agent).default_config(env.robot, {**TINY, **TINY_AGENT.get(agent, {})})
    built = build_agent(agent, env, cfg.program_config())
    saved = jax.tree.map(lambda x: x * 1.5 if jnp.issubdtype(x.dtype, jnp.floating) else x,
                         built.init(jax.random.PRNGKey(3)))
    header = {"agent": agent, "config": cfg.to_dict(), "env": env_options(env), "seed": 3, "iteration": 1}
    save_checkpoint(tmp_path / "ckpt_00000001.gradgym", saved, header)
    policy = load_policy(tmp_path)
    assert policy.agent == agent and policy.env is env and policy.config == cfg
    params, stats = built.policy_params(saved)
    for a, b in zip(jax.tree.leaves((policy.params, policy.stats)), jax.tree.leaves((params, stats)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    res = evaluate_policy(policy)
    evaluate = make_evaluator(env, cfg.hidden, cfg.activation, 50)
    assert res.return_mean == np.mean(np.asarray(evaluate(params, stats, eval_keys(3, 2)), np.float64))
    assert res.training_return is None  # no curve in this header
    _, n = render_policy(policy, tmp_path / "clip.html", 4)
    assert n == 1 + min(4, int(res.lengths[0]))


def test_a_robot_default_changed_later_does_not_change_a_checkpoint(tmp_path, monkeypatch):
    """A field added after checkpoints were first written stays out of the header at its class default; when a
    robot's default for it changes later (as SHAC's ant defaults did), the old checkpoint still loads as trained."""
    from gradgym.agents import shac

    env = make("inverted_pendulum", episode_length=50)
    cfg = get_agent("shac").default_config(env.robot, {**TINY, **TINY_AGENT["shac"]})
    assert "critic_ensemble" not in cfg.to_dict() and "adaptive_horizon" not in cfg.to_dict()
    built = build_agent("shac", env, cfg.program_config())
    header = {"agent": "shac", "config": cfg.to_dict(), "env": env_options(env), "seed": 3, "iteration": 1}
    save_checkpoint(tmp_path / "ckpt_00000001.gradgym", built.init(jax.random.PRNGKey(3)), header)
    monkeypatch.setitem(shac.ROBOT_DEFAULTS, "inverted_pendulum", {"critic_ensemble": 2, "adaptive_horizon": True})
    assert get_agent("shac").default_config(env.robot, header["config"]).critic_ensemble == 2  # the new default
    policy = load_policy(tmp_path)
    assert policy.config == cfg and policy.config.critic_ensemble == 1 and not policy.config.adaptive_horizon


def test_bad_input_gets_named_errors(ppo_run, ppo_policy, tmp_path, capsys):
    d, _ = ppo_run
    good = sorted((d / "ck").glob("ckpt_*.gradgym"))[-1].read_bytes()
    (tmp_path / "empty").mkdir()
    for name, data in (("foreign", b"PK\x03\x04 not ours"), ("corrupt", good[:-9] + bytes([good[-9] ^ 1]) + good[-8:])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "ckpt_00000001.gradgym").write_bytes(data)
    save_checkpoint(tmp_path / "old" / "ckpt_00000001.gradgym", {"w": np.zeros(2)},
                    {"agent": "sb3", "config": {}, "seed": 0})  # an sb3 header before env options were stored
    save_checkpoint(tmp_path / "alien" / "ckpt_00000001.gradgym", {"w": np.zeros(2)},
                    {"agent": "dqn", "config": {}, "seed": 0, "env": {"robot": "inverted_pendulum"}})
    cases = {
        "missing": ("does not exist", str(tmp_path / "missing")),
        "empty": ("No checkpoint", str(tmp_path / "empty")),
        "foreign": ("not a gradgym checkpoint", "ckpt_00000001.gradgym"),
        "corrupt": ("corrupt", "ckpt_00000001.gradgym"),
        "old": ("has no env in its header", "retrain"),
        "alien": ("cannot rebuild: Unknown agent 'dqn'", "ckpt_00000001.gradgym"),
    }
    for name, (message, named) in cases.items():
        with pytest.raises(CheckpointError, match=message) as err:
            load_policy(tmp_path / name)
        assert named in str(err.value)
        for cmd in (["eval"], ["render", "--out", str(tmp_path / "x.html")]):
            assert main([*cmd, "--checkpoint", str(tmp_path / name)]) == 2, (name, cmd)
            err_text = capsys.readouterr().err
            assert err_text.startswith(f"gradgym {cmd[0]}: error: ") and message in err_text
    bad_cli = {
        ("render", "--out", str(tmp_path / "x.avi")): "x.avi' has an unknown extension; use one of .html, .gif",
        ("render", "--env", "ant"): "--env cannot be combined with --checkpoint",
        ("eval", "--episodes", "0"): "episodes must be a positive int, got 0",
    }
    for argv, message in bad_cli.items():
        assert main([*argv, "--checkpoint", str(d / "ck")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.avi").exists()
    with pytest.raises(ValueError, match="episodes must be a positive int, got -1"):
        evaluate_policy(ppo_policy, episodes=-1)
    with pytest.raises(ValueError, match="unknown extension"):
        render_policy(ppo_policy, tmp_path / "clip.webm")
    # The env layer's render still needs --out when there is no checkpoint.
    assert main(["render", "--env", "inverted_pendulum"]) == 2
    assert "render needs --out" in capsys.readouterr().err
    assert jax.config.jax_enable_x64 is False  # loading float32 runs leaves JAX's 64-bit mode alone


def test_gait_script_names_the_joints_it_needs(ppo_run):
    """scripts/diag_gait.py reads the torso's rootx/rooty joints; a robot without them is refused by name."""
    script = load_script("diag_gait.py")
    d, _ = ppo_run
    with pytest.raises(SystemExit, match="'inverted_pendulum' has no rootx/rooty joints"):
        script.main([str(d / "ck"), "--episodes", "1"])
    with pytest.raises(SystemExit, match="--episodes must be >= 1, got 0"):
        script.main([str(d / "ck"), "--episodes", "0"])
