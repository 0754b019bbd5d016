"""Watching a trained policy: one episode of its deterministic action, as an HTML viewer, a GIF, an MP4 or a PNG.

The episode is the first of the run's evaluation episodes (the start state
and noise of the episode ``gradgym eval`` scores first; ``seed`` picks
another seed's), run on the functional core until it ends or ``steps`` steps
have passed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents.base import eval_keys
from gradgym.agents.policy_io import LoadedPolicy
from gradgym.checks import is_int
from gradgym.envs import render
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import strong_types

OUTPUT_SUFFIXES = (".html", ".gif", ".mp4", ".png")


def check_output(path: str | os.PathLike) -> Path:
    """``path`` if it ends in .html, .gif, .mp4 or .png; else ``ValueError`` naming it."""
    p = Path(path)
    if p.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"Output {str(p)!r} has an unknown extension; use one of {', '.join(OUTPUT_SUFFIXES)} "
                         "(HTML viewer, animated GIF, MP4 video, last frame as PNG), e.g. ant.html.")
    return p


@functools.lru_cache(maxsize=16)
def _core(env: BraxEnv):
    # Strong types: the reset state and the step state share one compiled step.
    return jax.jit(lambda k: strong_types(env.reset(k))), jax.jit(lambda s, a: strong_types(env.step(s, a)))


def policy_states(policy: LoadedPolicy, steps: int, seed: int | None = None) -> list[Any]:
    """Brax pipeline states of one episode: the reset state, then one per step until it ends or ``steps`` pass.

    Args:
        policy: from :func:`gradgym.agents.policy_io.load_policy`.
        steps: the most steps to take.
        seed: the episode is the first evaluation episode of this seed
            (:func:`gradgym.agents.base.eval_keys`); ``None`` = the run's seed.
    """
    if not is_int(steps, numpy_ok=True):
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    if seed is not None and not is_int(seed, 0, numpy_ok=True):
        raise ValueError(f"seed must be an int >= 0, got {seed!r}.")
    key = eval_keys(policy.seed if seed is None else int(seed), policy.config.eval_episodes)[0]
    reset, step = _core(policy.env)
    state = reset(jax.random.split(key)[0])  # as gradgym.envs.rollout splits an episode's key
    states = [state.inner.pipeline_state]
    for _ in range(int(steps)):
        state = step(state, jnp.asarray(policy.act(np.asarray(state.obs))))
        states.append(state.inner.pipeline_state)
        if bool(state.done):
            break
    return jax.device_get(states)


def render_policy(policy: LoadedPolicy, out: str | os.PathLike, steps: int | None = None, seed: int | None = None,
                  width: int = render.DEFAULT_WIDTH, height: int = render.DEFAULT_HEIGHT) -> tuple[Path, int]:
    """Renders one episode of ``policy`` (see :func:`policy_states`) to ``out``.

    ``.html``: brax's interactive viewer; ``.gif`` / ``.mp4``: offscreen frames
    (:func:`gradgym.envs.render.save_animation`); ``.png``: the last frame.

    Args:
        policy: the loaded policy.
        out: output file; its extension picks the format.
        steps: the most steps to show; ``None`` = the run's evaluation horizon.
        seed: show the first evaluation episode of this seed; ``None`` = the run's seed.
        width: frame width in pixels (GIF, MP4, PNG).
        height: frame height in pixels.

    Returns:
        ``(path, number of states shown)``: the reset state plus one per step taken.
    """
    path = check_output(out)
    suffix = path.suffix.lower()
    render._check_size(width, height)
    states = policy_states(policy, policy.horizon if steps is None else steps, seed)
    sys = policy.env.brax_env.sys
    if suffix == ".html":
        return render.save_html(path, sys, states), len(states)
    if suffix == ".png":
        return render.save_png(path, render.render_frames(sys, states[-1:], width, height)[0]), len(states)
    return render.save_animation(path, render.render_frames(sys, states, width, height), policy.env.dt), len(states)
