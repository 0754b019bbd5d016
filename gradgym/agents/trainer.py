"""``train(agent, env, config, seed)``: the one training loop for every agent.

JAX agents (apg, shac, hybrid, gippo, ppo, es) expose ``init(key)``, a jitted
``iterate(state) -> (state, metrics)`` and ``steps_per_iter``. The loop runs
all the updates between two evaluation points inside one compiled program
(:func:`fused_iterate`: a ``lax.scan`` over ``iterate``, as Brax's
``training_epoch`` and PureJaxRL's ``make_train`` do), comes back to the host
only to evaluate the deterministic policy on fixed episodes (one vmapped,
compiled call), log, print progress and write a checkpoint, and keeps every
update's metrics. The sb3 agent has its own loop (``gradgym.agents.sb3``) with
the same result type; the registry (``AgentSpec.train_fn``) hands it over, so
this module never imports it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gradgym import sharding
from gradgym.agents import get_agent
from gradgym.agents.base import NumpyPolicy, eval_horizon, eval_keys, make_evaluator, num_iterations
from gradgym.agents.checkpoint import checkpoint_path, env_options, load_latest_checkpoint, save_checkpoint
from gradgym.agents.progress import Progress
from gradgym.agents.result import Curve, TrainResult, summarize
from gradgym.checks import is_int
from gradgym.envs.core import BraxEnv, make


def resolve_env(env: str | BraxEnv, dtype: str = "float32") -> BraxEnv:
    """A robot name becomes ``make(robot, episode_length=<its Gymnasium limit>, dtype=dtype)``."""
    if isinstance(env, BraxEnv):
        return env
    if isinstance(env, str):
        from gradgym.envs.robots import get_robot

        return make(env, episode_length=get_robot(env).max_episode_steps, dtype=dtype)
    raise TypeError(f"env must be a robot name or a gradgym BraxEnv, got {type(env).__name__}.")


def build_agent(name: str, env: BraxEnv, config: Any) -> Any:
    """Cached agent object, so a second seed with the same config reuses compiled code."""
    return _build_agent(get_agent(name).load().agent_class, env, config)


@functools.lru_cache(maxsize=32)
def _build_agent(agent_class: type, env: BraxEnv, config: Any) -> Any:
    return agent_class(env, config)


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
    log_dir: str | None = None,
) -> TrainResult:
    """Trains ``agent`` on ``env`` for ``config.total_steps`` env steps.

    Args:
        agent: ``"apg"``, ``"shac"``, ``"hybrid"``, ``"gippo"``, ``"ppo"``, ``"es"`` or ``"sb3"`` (see ``AGENTS``).
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
        log_dir: write TensorBoard event files and a CSV of the training scalars under
            ``log_dir/<agent>-<robot>-seed<seed>/`` (see :class:`gradgym.agents.logs.TrainLog`).

    Returns:
        A :class:`TrainResult`.
    """
    info = get_agent(agent)
    spec = info.load()
    if not is_int(seed, 0):
        raise ValueError(f"seed must be an int >= 0, got {seed!r}.")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir: pass the folder the checkpoints were written to.")
    robot = env.robot if isinstance(env, BraxEnv) else env
    cfg = info.default_config(robot if isinstance(robot, str) else "", config)
    sharding.resolve_devices(devices)  # a bad value fails before any compile
    if spec.train_fn is not None:  # an agent with its own loop (sb3)
        return spec.train_fn(resolve_env(env), cfg, seed, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress,
                        log_dir=log_dir)
    dtype = getattr(cfg, "dtype", "float32")
    ctx = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with ctx:
        return _train_jax(info.name, spec, resolve_env(env, dtype), cfg, seed, checkpoint_dir, resume, progress,
                          devices, log_dir)


def eval_schedule(n_iters: int, num_evals: int) -> list[int]:
    """Iterations after which the policy is evaluated: ``num_evals`` points spread evenly, the last at ``n_iters``."""
    return sorted({max(1, round(i * n_iters / num_evals)) for i in range(1, num_evals + 1)})


def metrics_capacity(n: int) -> int:
    """Length of the per-update metrics buffer for intervals of up to ``n`` updates: the next power of two >= 16.

    Runs whose intervals fall in the same bucket share one compiled program.
    """
    return max(16, 1 << (max(1, n) - 1).bit_length())


@functools.lru_cache(maxsize=32)
def fused_iterate(agent: Any, capacity: int, mesh: Any = None, batch: int | None = None):
    """One compiled program that runs ``n <= capacity`` of ``agent.iterate`` back to back.

    ``run(ts, n) -> (ts, metrics)``: a ``lax.fori_loop`` with a traced trip
    count ``n`` (int32), so every interval length of every run shares this
    program; each update's metrics are written into buffers of length
    ``capacity`` (entries ``>= n`` stay zero), so the host syncs once per
    evaluation interval and still sees every update. With a multi-device
    ``mesh`` the state's shardings are pinned on input and output (see
    :func:`gradgym.sharding.sharded_iterate`). Cached per (agent, capacity, mesh, batch).
    """
    template = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    _, metric_shapes = jax.eval_shape(agent.iterate, template)

    def run(ts, n):
        def body(i, carry):
            ts, buf = carry
            ts, m = agent.iterate(ts)
            return ts, jax.tree.map(lambda b, x: b.at[i].set(x), buf, m)

        buf = jax.tree.map(lambda m: jnp.zeros((capacity, *m.shape), m.dtype), metric_shapes)
        return jax.lax.fori_loop(0, n, body, (ts, buf))

    if mesh is None or mesh.size == 1:
        return jax.jit(run)
    shardings = sharding.state_shardings(template, mesh, batch)
    replicated = NamedSharding(mesh, P())
    return jax.jit(run, in_shardings=(shardings, replicated), out_shardings=(shardings, replicated))


def _train_jax(name, spec, env, cfg, seed, checkpoint_dir, resume, progress, devices=None,
               log_dir=None) -> TrainResult:
    if spec.resolve_for_env is not None:  # e.g. shac's horizon="auto"
        cfg = spec.resolve_for_env(cfg, env, seed)
    mesh = sharding.make_mesh(devices)
    batch_field = "num_envs" if hasattr(cfg, "num_envs") else "population_size"
    batch = getattr(cfg, batch_field)
    sharding.check_divisible(batch, mesh, batch_field)
    # Runs that differ only in fields that do not change the compiled programs share them.
    agent = _build_agent(spec.agent_class, env, cfg.program_config())
    spi = agent.steps_per_iter
    n_iters = num_iterations(cfg.total_steps, spi)
    eval_at = eval_schedule(n_iters, cfg.num_evals)
    capacity = metrics_capacity(max(b - a for a, b in zip([0, *eval_at], eval_at, strict=False)))
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
    multi = jax.process_count() > 1
    if multi:  # every process must resume from the same point, or the collectives would not line up
        from jax.experimental import multihost_utils

        multihost_utils.assert_equal(
            np.int64(start), f"processes resume from different checkpoints of {checkpoint_dir!r}: every process "
            "must read the same checkpoint folder (shared between hosts).")
    if mesh.size > 1:  # env batch split over the devices, the rest replicated; one compiled program
        ts = sharding.place_state(ts, mesh, batch, batch_field)
    main = jax.process_index() == 0  # prints progress, writes logs and checkpoints
    run = fused_iterate(agent, capacity, *((mesh, batch) if mesh.size > 1 else ()))
    log = None
    if log_dir is not None and main:
        from gradgym.agents.logs import TrainLog

        log = TrainLog(log_dir, f"{name}-{env.robot}-seed{seed}")
    if path is None:
        curve.append(0, 0.0, score(ts))
        if log is not None:
            log.record_eval(0, 0.0, curve.returns[-1], 0.0)
    with contextlib.ExitStack() as stack, Progress(f"{name} {env.robot} seed {seed}", n_iters * spi, progress and main) as bar:
        if log is not None:
            stack.enter_context(log)
        bar.update(start * spi, elapsed, curve.returns[-1])
        for done in (i for i in eval_at if i > start):
            n = done - start
            t0 = time.perf_counter()
            with sharding.mesh_context(mesh):
                ts, metrics = run(ts, np.int32(n))
            metrics = jax.device_get(metrics)  # the one host sync of the interval
            elapsed += time.perf_counter() - t0
            chunk_metrics = {k: [float(x) for x in np.asarray(v)[:n]] for k, v in metrics.items()}
            for k, v in chunk_metrics.items():
                history.setdefault(k, []).extend(v)
            curve.append(done * spi, elapsed, score(ts))
            bar.update(done * spi, elapsed, curve.returns[-1], force=True)
            if log is not None:
                log.record_updates([(start + i + 1) * spi for i in range(n)], chunk_metrics)
                log.record_eval(done * spi, elapsed, curve.returns[-1], done * spi / elapsed if elapsed > 0 else 0.0)
            if checkpoint_dir is not None:
                header = {**expect, "iteration": done, "env_steps": done * spi, "wall_s": elapsed,
                          "curve": curve.to_dict(), "history": history}
                # Gathered to host numpy on every process (a collective when the batch spans processes),
                # written by process 0 only; the file does not depend on the layout.
                host_ts = multihost_utils.process_allgather(ts, tiled=True) if multi else ts
                if main:
                    save_checkpoint(checkpoint_path(checkpoint_dir, done), host_ts, header)
            start = done
    params, stats = agent.policy_params(ts)
    skipped = int(history.get("skipped", [0])[-1]) if history.get("skipped") else 0
    return TrainResult(
        agent=name, robot=env.robot, seed=seed, config=cfg, curve=curve, params=jax.device_get(params),
        metrics=summarize(history, curve, skipped), policy=NumpyPolicy(env, cfg.hidden, cfg.activation, params, stats),
        history=history,
    )
