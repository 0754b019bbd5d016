"""Rendering: real (non-blank) offscreen frames, the HTML viewer, atomic files, and the env CLI."""

import base64
import json
import zlib

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from PIL import Image

import gradgym  # noqa: F401
from gradgym.cli import main
from gradgym.envs import ROBOTS, render

ANT = ROBOTS["ant"].gym_id
PENDULUM = ROBOTS["inverted_pendulum"].gym_id


def assert_not_blank(frame, height, width):
    assert frame.dtype == np.uint8 and frame.shape == (height, width, 3)
    assert frame.std() > 20  # a blank or single-colour frame has std ~0
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 50  # shading, not a flat fill


def test_gymnasium_checker_with_render_check():
    gym_check_env(gym.make(ANT, width=96, height=96).unwrapped)  # re-makes with render_mode="rgb_array"


def test_ant_frame_is_real_and_changes_as_it_moves():
    env = gym.make(ANT, render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    first = env.render()
    assert_not_blank(first, 120, 160)
    for _ in range(20):
        env.step(np.ones(8, np.float32))
    moved = env.render()
    assert_not_blank(moved, 120, 160)
    assert np.mean(np.abs(moved.astype(int) - first.astype(int))) > 1.0
    env.close()
    env.close()


def test_render_without_mode_warns_and_returns_none():
    env = gym.make(PENDULUM)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.unwrapped.render() is None


def test_save_html_writes_viewer_of_trajectory_since_reset(tmp_path):
    env = gym.make(PENDULUM, record=True).unwrapped
    env.reset(seed=0)
    env.step(np.zeros(1, np.float32))
    env.reset(seed=0)  # the export starts at the latest reset
    for _ in range(4):
        env.step(np.ones(1, np.float32))
    path = env.save_html(tmp_path / "sub" / "clip.html")
    text = (tmp_path / "sub" / "clip.html").read_text()
    assert path.endswith("clip.html") and text.lstrip().startswith("<!DOCTYPE html>") and "height: 100vh" in text
    payload = text.split('system = "')[1].split('"')[0]  # brax embeds base64(zlib(json))
    system = json.loads(zlib.decompress(base64.b64decode(payload)))
    assert len(system["states"]["x"]) == 5  # reset state + 4 steps
    assert len(env.recorded_states) == 5
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["clip.html"]  # no temporary files left
    with pytest.raises(ValueError, match="record=True"):
        plain = gym.make(PENDULUM).unwrapped
        plain.reset(seed=0)
        plain.save_html(tmp_path / "x.html")


def test_vector_env_renders_one_frame_per_env():
    envs = gym.make_vec(PENDULUM, num_envs=4, vectorization_mode="vector_entry_point", render_mode="rgb_array",
                        width=64, height=48)
    envs.reset(seed=0)
    frames = envs.render()
    assert len(frames) == 4 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    envs.close()


def test_save_png_roundtrip_and_validation(tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    render.save_png(tmp_path / "f.png", frame)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png")), frame)
    with pytest.raises(ValueError, match="uint8"):
        render.save_png(tmp_path / "g.png", frame.astype(np.float32))


def test_cli_list_names_every_robot_id_and_default_backend(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in ROBOTS.values():
        assert spec.gym_id in out
    assert "spring*" in out and "generalized*" in out  # swimmer's default is generalized


def test_cli_render_png_and_html(tmp_path, capsys):
    png, html = tmp_path / "p.png", tmp_path / "p.html"
    args = ["--env", "inverted_pendulum", "--steps", "3", "--width", "64", "--height", "64"]
    assert main(["render", *args, "--out", str(png)]) == 0
    assert main(["render", *args, "--policy", "zero", "--out", str(html)]) == 0
    frame = np.asarray(Image.open(png).convert("RGB"))
    assert frame.shape == (64, 64, 3) and frame.std() > 10
    assert "Brax visualizer" in html.read_text()
    assert main(["render", *args, "--out", str(tmp_path / "x.gif")]) == 2
    assert "x.gif" in capsys.readouterr().err


def test_cli_demo_writes_frame_viewer_and_numbers(tmp_path, capsys):
    argv = ["demo", "--env", "inverted_pendulum", "--num-envs", "2", "--steps", "8", "--repeats", "1",
            "--horizon", "4", "--render-steps", "3", "--width", "64", "--height", "64", "--out", str(tmp_path)]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary["env_steps_per_s"] > 0 and np.isfinite(summary["grad_norm"])
    assert summary["mean_return"] == pytest.approx(8.0)  # +1 per step, the pole cannot fall in 8 steps
    assert (tmp_path / "inverted_pendulum.png").stat().st_size > 0 and (tmp_path / "inverted_pendulum.html").exists()
    out = capsys.readouterr().out
    assert "env-steps/s" in out and "|grad|" in out
