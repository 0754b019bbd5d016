"""``gradgym compare``, ``gradgym train``, ``gradgym eval`` and ``gradgym render --checkpoint``.

``gradgym compare`` with no arguments runs the built-in default (DEFAULT_*),
sized for at most 8 minutes on 2 CPU cores, compiles included (measured: docs/experiments.md).
``eval`` and ``render --checkpoint`` load a trained policy
(:mod:`gradgym.agents.policy_io`); this layer adds ``--checkpoint`` to the env
layer's ``render`` command.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from gradgym.agents import AGENTS

GRAD_PATH_CHOICES = ("brax", "remat", "fast")
"""``gradgym.envs.GRAD_PATHS``, spelled out so that building the parser does not import JAX (tested equal)."""

# The built-in default (`gradgym` with no arguments) is sized for <= 8 minutes on 2 CPU cores, compiles included,
# and to end decisively: the double pendulum's reward (alive bonus minus distance and velocity penalties) is smooth
# enough for analytic gradients, its programs compile fast, and in 40k env steps PPO, APG and SHAC all end clearly
# above their initial policy (measured: docs/experiments.md, 2026-11-29). Locomotion needs millions of steps.
DEFAULT_ROBOT = "inverted_double_pendulum"
DEFAULT_AGENTS = "shac,apg,ppo,es,sb3"
DEFAULT_SEEDS = 3
DEFAULT_BUDGET = 40_000
DEFAULT_EPISODE_LENGTH = 100
DEFAULT_EVALS = 5  # evaluation points per run (+ the initial policy): each is 8 full episodes


def _agent_list(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in names if a not in AGENTS]
    if not names or unknown:
        raise ValueError(f"--agents has unknown name(s) {unknown or text!r}; available: {', '.join(AGENTS)} "
                         "(comma-separated, e.g. --agents apg,ppo).")
    return names


HORIZON_HELP = ("window of the gradient agents (apg, hybrid, shac) in env steps, or 'auto' (shac): the truncation "
                "horizon `gradgym diagnose` recommends for the initial policy")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}.")
    return value


def _int_or(word: str, flag: str, text: str) -> int | str:
    """A positive int, or ``word``; otherwise argparse's error naming the flag."""
    if text == word:
        return text
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{flag} must be a positive int or {word!r}, got {text!r}.") from None


def _horizon(text: str) -> int | str:
    return _int_or("auto", "--horizon", text)


DEVICES_HELP = ("split each JAX agent's env batch / ES population over the first N of jax.devices() "
                "(default: all; the batch must be divisible by N)")


def _devices(text: str) -> int | None:
    value = _int_or("all", "--devices", text)
    return None if value == "all" else value


COORDINATOR_HELP = ("join a multi-process run (one process per host, or several on one machine): the address of "
                    "process 0, which listens there (default: $GRADGYM_COORDINATOR); with --num-processes and "
                    "--process-id the env batch is split over the devices of all processes, see docs/scaling.md")


def _process_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--process-id must be an int >= 0, got {text!r}.")
    return value


LOG_DIR_HELP = ("write TensorBoard event files and scalars.csv of each run under DIR/<agent>-<robot>-seed<seed>/ "
                "(view with `tensorboard --logdir DIR`)")
CHECKPOINT_HELP = "a checkpoint folder (its newest checkpoint) or file, from `gradgym train --checkpoint-dir`"


def _jobs(text: str) -> int | None:
    value = _int_or("auto", "--jobs", text)
    return None if value == "auto" else value


def default_jobs(n_agents: int) -> int:
    """Worker processes for ``compare``: on CPU one per usable core (at most one per agent), else 1.

    On CPU each worker gets a core of its own (XLA's CPU programs mostly use one), so agents train side by
    side; an accelerator is shared better by one process than by several that each reserve its memory.
    """
    import os

    import jax

    if jax.default_backend() != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_agents))


def _overrides(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--config must be a JSON object, e.g. '{{\"learning_rate\": 1e-3}}'; got {text!r} ({e}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"--config must be a JSON object, got {text!r}.")
    return value


def run_compare(args: argparse.Namespace) -> int:
    from gradgym.agents.report import compare

    agents = _agent_list(args.agents)
    out = args.out or f"runs/compare-{args.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    overrides = _overrides(args.config)
    for a in ("apg", "hybrid", "shac"):
        if args.horizon is not None and a in agents and (a == "shac" or args.horizon != "auto"):
            overrides[a] = {**overrides.get(a, {}), "horizon": args.horizon}
    per_agent = {a: {"num_evals": args.evals, **overrides.get(a, {})} for a in agents}
    t0 = time.perf_counter()
    results = compare(args.env, agents, args.seeds, args.budget, out, episode_length=args.episode_length,
                      overrides=per_agent, progress=not args.quiet, devices=args.devices, log_dir=args.log_dir,
                      jobs=args.jobs or default_jobs(len(agents)))
    print(Path(out, "report.md").read_text())
    print(f"Wrote {out}/report.md, results.csv, results.json, curves_steps.png, curves_wall.png "
          f"({time.perf_counter() - t0:.0f} s; {len(results['agents'])} agents x {args.seeds} seeds).")
    return 0


def join_processes(args: argparse.Namespace) -> None:
    """``--coordinator/--num-processes/--process-id`` (or ``GRADGYM_*``): join a multi-process run first."""
    from gradgym import distributed

    layout = distributed.from_env(args.coordinator, args.num_processes, args.process_id)
    if layout is not None:
        distributed.initialize(*layout)


def train_overrides(args: argparse.Namespace) -> dict:
    """The config fields a ``gradgym train`` command line sets: ``--config``, then ``--budget`` and ``--horizon``."""
    cfg = _overrides(args.config)
    if args.budget is not None:
        cfg["total_steps"] = args.budget
    if args.horizon is not None:
        cfg["horizon"] = args.horizon
    return cfg


def run_train(args: argparse.Namespace) -> int:
    join_processes(args)  # before anything else touches JAX
    from gradgym.agents.trainer import train
    from gradgym.envs.core import make
    from gradgym.envs.robots import get_robot

    cfg = train_overrides(args)
    env = make(args.env, episode_length=args.episode_length or get_robot(args.env).max_episode_steps,
               grad_path=args.grad_path)
    result = train(args.agent, env, cfg, args.seed, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                   progress=not args.quiet, devices=args.devices, log_dir=args.log_dir)
    summary = result.summary()
    if args.out:
        from gradgym.agents.plots import plot_run
        from gradgym.fileio import atomic_write

        atomic_write(args.out, json.dumps(summary, indent=1).encode())
        plot_run(summary, Path(args.out).with_suffix(".png"))
    m = result.metrics
    print(f"{args.agent} on {args.env} (seed {args.seed}): return {m['initial_return']:.2f} -> "
          f"{m['final_return']:.2f} in {m['env_steps']:,.0f} env steps, {m['wall_s']:.1f} s "
          f"({m['steps_per_s']:,.0f} steps/s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``compare`` and ``train`` to the ``gradgym`` command."""
    p = subparsers.add_parser("compare", help="train several agents x seeds on one robot; write a report folder",
                              description="Trains agents under one env-step budget and writes report.md, "
                              "results.csv/json and learning-curve PNGs. No arguments: a built-in default "
                              f"({DEFAULT_ROBOT}, {DEFAULT_AGENTS}, {DEFAULT_SEEDS} seeds, {DEFAULT_BUDGET:,} steps) "
                              "that takes at most 8 minutes on 2 CPU cores.")
    p.add_argument("--env", default=DEFAULT_ROBOT, help=f"robot name (default {DEFAULT_ROBOT})")
    p.add_argument("--agents", default=DEFAULT_AGENTS, help=f"comma-separated agents (default {DEFAULT_AGENTS})")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds per agent (default {DEFAULT_SEEDS})")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="env steps per run")
    p.add_argument("--episode-length", type=int, default=None,
                   help=f"episode limit (default {DEFAULT_EPISODE_LENGTH} for the default robot, else its Gym limit)")
    p.add_argument("--config", default=None, help='per-agent overrides as JSON, e.g. \'{"ppo": {"num_envs": 64}}\'')
    p.add_argument("--evals", type=_positive, default=DEFAULT_EVALS,
                   help=f"evaluation points per run after the initial one (default {DEFAULT_EVALS}; "
                   "'num_evals' in --config wins)")
    p.add_argument("--out", default=None, help="run folder (default runs/compare-<env>-<time>)")
    p.add_argument("--horizon", type=_horizon, default=None, help=HORIZON_HELP)
    p.add_argument("--devices", type=_devices, default=None, metavar="N", help=DEVICES_HELP)
    p.add_argument("--log-dir", default=None, help=LOG_DIR_HELP)
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="worker processes, one CPU core each; the agents are dealt out to them (default: on CPU, "
                   "one per usable core up to the number of agents; on an accelerator 1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_compare_with_defaults)

    t = subparsers.add_parser("train", help="train one agent on one robot")
    t.add_argument("--agent", default="ppo", help=f"one of {', '.join(AGENTS)} (default ppo)")
    t.add_argument("--env", default="hopper", help="robot name (default hopper)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--budget", type=int, default=None, help="env steps (default: the agent's total_steps)")
    t.add_argument("--episode-length", type=int, default=None, help="episode limit (default: the robot's Gym limit)")
    t.add_argument("--config", default=None, help='config overrides as JSON, e.g. \'{"learning_rate": 1e-3}\'')
    t.add_argument("--horizon", type=_horizon, default=None, help=HORIZON_HELP)
    t.add_argument("--grad-path", default=None, choices=GRAD_PATH_CHOICES,
                   help="how gradients run through the spring physics (default fast; brax = Brax's own step)")
    t.add_argument("--checkpoint-dir", default=None, help="write checkpoints here")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    t.add_argument("--out", default=None,
                   help="write the run summary (curve, metrics) as JSON here and its learning curve beside it (.png)")
    t.add_argument("--devices", type=_devices, default=None, metavar="N", help=DEVICES_HELP)
    t.add_argument("--log-dir", default=None, help=LOG_DIR_HELP)
    t.add_argument("--coordinator", default=None, metavar="HOST:PORT", help=COORDINATOR_HELP)
    t.add_argument("--num-processes", type=_positive, default=None, metavar="N",
                   help="processes in a multi-process run (default: $GRADGYM_NUM_PROCESSES)")
    t.add_argument("--process-id", type=_process_id, default=None, metavar="I",
                   help="this process's index, 0 to N-1 (default: $GRADGYM_PROCESS_ID)")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    t.set_defaults(func=run_train)

    e = subparsers.add_parser("eval", help="score a trained policy (checkpoint) on fixed episodes",
                              description="Runs a checkpoint's deterministic policy on fixed episodes and prints the "
                              "mean return with its 95% interval and the mean episode length. By default these are "
                              "the run's own evaluation episodes (its seed and eval_episodes), so the mean equals the "
                              "run's last evaluation return. --sample scores the policy's sampled actions instead.")
    e.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    e.add_argument("--episodes", type=int, default=None, help="episodes (default: the run's eval_episodes)")
    e.add_argument("--seed", type=int, default=None, help="seed of the episodes (default: the run's seed)")
    e.add_argument("--sample", action="store_true",
                   help="act with actions sampled from the policy, as in training, instead of its mean action "
                   "(the noise is fixed by the episode keys)")
    e.add_argument("--out", default=None, help="also write the scores as JSON here")
    e.set_defaults(func=run_eval)

    lst = subparsers.choices.get("list")  # the env layer's command lists the robots; the agents are this layer's
    if lst is not None:
        lst.set_defaults(func=functools.partial(lst.get_default("func"), more=print_agents))

    r = subparsers.choices.get("render")  # the env layer's command; a checkpoint's policy is this layer's
    if r is not None:
        r.add_argument("--checkpoint", default=None,
                       help=f"{CHECKPOINT_HELP}: render its deterministic policy on its robot (first evaluation "
                       "episode of --seed, default the run's) to --out .html, .gif, .mp4 or .png (default "
                       "<checkpoint folder>/<robot>.html); --steps defaults to the run's evaluation horizon")
        r.set_defaults(func=functools.partial(run_render, fallback=r.get_default("func")))


def print_agents() -> None:
    """``gradgym list``'s agents section."""
    print("Agents:")
    for name, info in AGENTS.items():
        print(f"  {name:<8} {info.description}")


def _compare_with_defaults(args: argparse.Namespace) -> int:
    if args.episode_length is None and args.env == DEFAULT_ROBOT:
        args.episode_length = DEFAULT_EPISODE_LENGTH
    return run_compare(args)


def _load_policy(checkpoint: str):
    """Loads a checkpoint's policy; turns on JAX's 64-bit mode first when the run was float64."""
    import jax

    from gradgym.agents.policy_io import load_policy, read_policy_header

    _, header = read_policy_header(checkpoint)
    if header["env"].get("dtype") == "float64":
        jax.config.update("jax_enable_x64", True)
    return load_policy(checkpoint)


def run_eval(args: argparse.Namespace) -> int:
    from gradgym.agents.evaluation import check_episodes, evaluate_policy
    from gradgym.fileio import atomic_write

    if args.episodes is not None:
        check_episodes(args.episodes)
    policy = _load_policy(args.checkpoint)
    res = evaluate_policy(policy, args.episodes, args.seed, sample=args.sample)
    ci = "± n/a (one episode)" if math.isnan(res.return_ci95) else f"± {res.return_ci95:.2f}"
    print(f"{policy.agent} on {policy.env.robot}, {policy.path} ({policy.header.get('env_steps', 0):,} env steps):")
    mode = "sampled actions" if res.sample else "deterministic action"
    print(f"  return {res.return_mean:.2f} {ci} (95% interval, {len(res.returns)} episodes, seed {res.seed}, {mode}); "
          f"mean episode length {res.length_mean:.1f} steps (horizon {res.horizon})")
    if res.training_return is not None:
        print(f"  the run's own evaluation episodes: its last evaluation return was {res.training_return:.2f}")
    if args.out:
        from gradgym.agents.checkpoint import env_options

        doc = {"checkpoint": str(policy.path), "agent": policy.agent, "robot": policy.env.robot,
               "env": env_options(policy.env), "run_seed": policy.seed, "env_steps": policy.header.get("env_steps"),
               "config": policy.config.to_dict(), "episodes": len(res.returns), **res.to_dict()}
        atomic_write(args.out, json.dumps(doc, indent=1).encode())
        print(f"wrote {args.out}")
    return 0


def run_render(args: argparse.Namespace, fallback: Callable[[argparse.Namespace], int]) -> int:
    """``gradgym render --checkpoint``: the policy of a checkpoint; without it, the env layer's render."""
    if args.checkpoint is None:
        return fallback(args)
    from gradgym.agents.watch import check_output, render_policy

    given = [f for f, v in (("--env", args.env), ("--backend", args.backend), ("--policy", args.policy)) if v]
    if given:
        raise ValueError(f"{', '.join(given)} cannot be combined with --checkpoint: the robot, backend and policy "
                         "come from the checkpoint; drop them.")
    if args.out is not None:
        check_output(args.out)
    policy = _load_policy(args.checkpoint)
    out = args.out or policy.path.parent / f"{policy.env.robot}.html"
    print(f"render: {policy.agent} policy on {policy.env.robot} from {policy.path} -> {out}")
    path, n = render_policy(policy, out, args.steps, args.seed, args.width, args.height)
    print(f"wrote {path} ({n - 1} steps)")
    return 0
