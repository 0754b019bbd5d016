"""``gradgym compare`` and ``gradgym train``.

``gradgym compare`` with no arguments runs the built-in default (DEFAULT_*),
sized for about 11 minutes on 2 CPU cores, compiles included (measured: docs/agents.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gradgym.agents import AGENTS

DEFAULT_ROBOT = "halfcheetah"
DEFAULT_AGENTS = "shac,apg,ppo,es,sb3"
DEFAULT_SEEDS = 3
DEFAULT_BUDGET = 50_000
DEFAULT_EPISODE_LENGTH = 1000
DEFAULT_EVALS = 5  # evaluation points per run (+ the initial policy): each is 8 full episodes


def _agent_list(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in names if a not in AGENTS]
    if not names or unknown:
        raise ValueError(f"--agents has unknown name(s) {unknown or text!r}; available: {', '.join(AGENTS)} "
                         "(comma-separated, e.g. --agents apg,ppo).")
    return names


HORIZON_HELP = ("window of the gradient agents (apg, shac) in env steps, or 'auto' (shac): the truncation "
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
    for a in ("apg", "shac"):
        if args.horizon is not None and a in agents and (a == "shac" or args.horizon != "auto"):
            overrides[a] = {**overrides.get(a, {}), "horizon": args.horizon}
    per_agent = {a: {"num_evals": args.evals, **overrides.get(a, {})} for a in agents}
    t0 = time.perf_counter()
    results = compare(args.env, agents, args.seeds, args.budget, out, episode_length=args.episode_length,
                      overrides=per_agent, progress=not args.quiet, devices=args.devices)
    print(Path(out, "report.md").read_text())
    print(f"Wrote {out}/report.md, results.csv, results.json, curves_steps.png, curves_wall.png "
          f"({time.perf_counter() - t0:.0f} s; {len(results['agents'])} agents x {args.seeds} seeds).")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from gradgym.agents.trainer import train
    from gradgym.envs.core import make
    from gradgym.envs.robots import get_robot

    cfg = _overrides(args.config)
    if args.budget is not None:
        cfg["total_steps"] = args.budget
    if args.horizon is not None:
        cfg["horizon"] = args.horizon
    env = make(args.env, episode_length=args.episode_length or get_robot(args.env).max_episode_steps)
    result = train(args.agent, env, cfg, args.seed, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                   progress=not args.quiet, devices=args.devices)
    summary = result.summary()
    if args.out:
        from gradgym.fileio import atomic_write

        atomic_write(args.out, json.dumps(summary, indent=1).encode())
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
                              "that takes about 11 minutes on 2 CPU cores.")
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
    t.add_argument("--checkpoint-dir", default=None, help="write checkpoints here")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    t.add_argument("--out", default=None, help="write the run summary (curve, metrics) as JSON here")
    t.add_argument("--devices", type=_devices, default=None, metavar="N", help=DEVICES_HELP)
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    t.set_defaults(func=run_train)


def _compare_with_defaults(args: argparse.Namespace) -> int:
    if args.episode_length is None and args.env == DEFAULT_ROBOT:
        args.episode_length = DEFAULT_EPISODE_LENGTH
    return run_compare(args)
