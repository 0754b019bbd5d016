"""``train(agent, env, config, seed)``: the one training loop for every agent.

JAX agents (apg, ppo, es) expose ``init(key)``, a jitted ``iterate(state)``
and ``steps_per_iter``; this loop runs iterations until the env-step budget is
spent, evaluates the deterministic policy on fixed episodes ``num_evals``
times, prints progress, and writes/reads checkpoints. The sb3 agent has its
own loop (``gradgym.agents.sb3``) with the same result type; the registry
(``AgentInfo.train_fn``) names it, so this module never imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
from typing import Any

import jax
import numpy as np

from gradgym import sharding
from gradgym.agents import get_agent
from gradgym.agents.base import NumpyPolicy, eval_horizon, eval_keys, make_evaluator, num_iterations
from gradgym.agents.checkpoint import checkpoint_path, load_latest_checkpoint, save_checkpoint
from gradgym.agents.progress import Progress
from gradgym.agents.result import Curve, TrainResult, summarize
from gradgym.envs.core import BraxEnv, make


def env_options(env: BraxEnv) -> dict[str, Any]:
    """JSON-safe description of an env (stored in checkpoints and reports)."""
    opts = {"robot": env.robot, "backend": env.backend, "episode_length": env.episode_length, "dtype": env.dtype,
            "noise": dataclasses.asdict(env.noise)}
    return json.loads(json.dumps(opts))


def resolve_env(env: str | BraxEnv, dtype: str = "float32") -> BraxEnv:
    """A robot name becomes ``make(robot, episode_length=<its Gymnasium limit>, dtype=dtype)``."""
    if isinstance(env, BraxEnv):
        return env
    if isinstance(env, str):
        from gradgym.envs.robots import get_robot

        return make(env, episode_length=get_robot(env).max_episode_steps, dtype=dtype)
    raise TypeError(f"env must be a robot name or a gradgym BraxEnv, got {type(env).__name__}.")


@functools.lru_cache(maxsize=32)
def build_agent(name: str, env: BraxEnv, config: Any) -> Any:
    """Cached agent object, so a second seed with the same config reuses compiled code."""
    info = get_agent(name)
    return getattr(info.load(), info.agent_class)(env, config)


def train(
    agent: str,
    env: str | BraxEnv,
    config: Any = None,
    seed: int = 0,
    *,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    devices: int | None = None,
) -> TrainResult:
    """Trains ``agent`` on ``env`` for ``config.total_steps`` env steps.

    Args:
        agent: ``"apg"``, ``"shac"``, ``"ppo"``, ``"es"`` or ``"sb3"`` (see ``AGENTS``).
        env: robot name (episode limit = its Gymnasium limit) or a ``BraxEnv`` from ``gradgym.envs.make``.
        config: ``None`` (the robot's defaults), a dict of overrides, or the agent's config dataclass.
        seed: run seed; the same seed gives the same curve (bit-identical returns).
        checkpoint_dir: write a checkpoint there at every evaluation point.
        resume: continue from the newest checkpoint in ``checkpoint_dir`` (if any; a damaged
            newest one is set aside with a warning and the previous one used).
        progress: show progress on stderr (a bar with steps/s, return and ETA on a terminal,
            periodic lines otherwise); ``False``: silent.
        devices: JAX agents: split the env batch (``num_envs``; the population for es) over the
            first ``devices`` of ``jax.devices()``, ``None`` = all (see ``gradgym.sharding``); the
            batch must be divisible by it. sb3 (torch) ignores it.

    Returns:
        A :class:`TrainResult`.
    """
    info = get_agent(agent)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}.")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir: pass the folder the checkpoints were written to.")
    robot = env.robot if isinstance(env, BraxEnv) else env
    cfg = info.default_config(robot if isinstance(robot, str) else "", config)
    sharding.resolve_devices(devices)  # a bad value fails before any compile
    if info.train_fn is not None:  # an agent with its own loop (sb3)
        train_fn = getattr(info.load(), info.train_fn)
        return train_fn(resolve_env(env), cfg, seed, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
    dtype = getattr(cfg, "dtype", "float32")
    ctx = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with ctx:
        return _train_jax(info.name, resolve_env(env, dtype), cfg, seed, checkpoint_dir, resume, progress, devices)


def _train_jax(name, env, cfg, seed, checkpoint_dir, resume, progress, devices=None) -> TrainResult:
    resolve = getattr(get_agent(name).load(), "resolve_for_env", None)  # e.g. shac's horizon="auto"
    if resolve is not None:
        cfg = resolve(cfg, env, seed)
    mesh = sharding.make_mesh(devices)
    batch_field = "num_envs" if hasattr(cfg, "num_envs") else "population_size"
    batch = getattr(cfg, batch_field)
    sharding.check_divisible(batch, mesh, batch_field)
    # Runs that differ only in fields that do not change the compiled programs share them.
    agent = build_agent(name, env, cfg.program_config())
    spi = agent.steps_per_iter
    n_iters = num_iterations(cfg.total_steps, spi)
    eval_at = {max(1, round(i * n_iters / cfg.num_evals)) for i in range(1, cfg.num_evals + 1)}
    evaluate = make_evaluator(env, cfg.hidden, cfg.activation, eval_horizon(env, cfg.eval_horizon))
    keys = eval_keys(seed, cfg.eval_episodes)

    def score(ts) -> float:
        return float(np.mean(np.asarray(evaluate(*agent.policy_params(ts), keys), np.float64)))

    ts = agent.init(jax.random.PRNGKey(seed))
    expect = {"agent": name, "config": cfg.to_dict(), "env": env_options(env), "seed": seed}
    curve, history, start, elapsed = Curve(), {}, 0, 0.0
    ts, header, path = load_latest_checkpoint(checkpoint_dir, ts, expect) if resume else (ts, None, None)
    if path is not None:
        curve, history = Curve(**header["curve"]), header["history"]
        start, elapsed = header["iteration"], header["wall_s"]
    iterate = agent.iterate
    if mesh.size > 1:  # env batch split over the devices, the rest replicated; one compiled step
        ts, iterate = sharding.place_state(ts, mesh, batch, batch_field), sharding.sharded_iterate(agent, mesh, batch)
    if path is None:
        curve.append(0, 0.0, score(ts))
    with Progress(f"{name} {env.robot} seed {seed}", n_iters * spi, progress) as bar:
        bar.update(start * spi, elapsed, curve.returns[-1])
        for it in range(start, n_iters):
            t0 = time.perf_counter()
            with sharding.mesh_context(mesh):
                ts, metrics = iterate(ts)
            metrics = jax.device_get(metrics)
            elapsed += time.perf_counter() - t0
            for k, v in metrics.items():
                history.setdefault(k, []).append(float(v))
            done = it + 1
            if done in eval_at:
                curve.append(done * spi, elapsed, score(ts))
                bar.update(done * spi, elapsed, curve.returns[-1], force=True)
                if checkpoint_dir is not None:
                    header = {**expect, "iteration": done, "env_steps": done * spi, "wall_s": elapsed,
                              "curve": curve.to_dict(), "history": history}
                    save_checkpoint(checkpoint_path(checkpoint_dir, done), ts, header)
            else:
                bar.update(done * spi, elapsed, curve.returns[-1])
    params, stats = agent.policy_params(ts)
    skipped = int(history.get("skipped", [0])[-1]) if history.get("skipped") else 0
    return TrainResult(
        agent=name, robot=env.robot, seed=seed, config=cfg, curve=curve, params=jax.device_get(params),
        metrics=summarize(history, curve, skipped), policy=NumpyPolicy(env, cfg.hidden, cfg.activation, params, stats),
    )
