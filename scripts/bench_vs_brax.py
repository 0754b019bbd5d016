"""Brax's own PPO and APG trainers beside gradgym's, in one process (a benchmark, not a test).

For each robot and agent, gradgym's ``train(agent, env, {"total_steps": N}, seed)``
at the robot's defaults, then Brax 0.14.2's ``brax.training.agents.{ppo,apg}.train.train``
under each chosen Brax config, on the same robot, backend (spring) and episode
length (1000), with the same env-step budget. Both evaluate the deterministic
policy: gradgym on 8 fixed episodes (``result.curve``), Brax on ``BRAX_EVAL_ENVS``
episodes (``eval/episode_reward`` through ``progress_fn``).

Per (robot, agent, Brax config): each trainer's return at equal env steps and at
equal wall-clock (its last evaluation at or before the smaller of the two runs'
final env steps, to 2 %, / training seconds, or ``--seconds``), env steps/s after
the first evaluation interval, and the seconds spent compiling (jaxpr tracing + lowering + XLA compile, summed from
``jax.monitoring`` over the whole run, evaluation programs included). Training
wall-clock is each trainer's own: compile included, evaluation excluded
(gradgym's ``curve.wall_s``; Brax's ``training/walltime``).

Brax's trainers need one shim on JAX 0.10 (``jax.device_put_replicated`` is
gone); it lives in this script only. Brax's published configs are sized for
25M-100M env steps on accelerators: at a CPU budget they get the same env steps
(Brax's ``num_timesteps``), which their schedule was not tuned for.

An interrupted run continues with ``--resume`` (same settings): the rows already
in ``--out`` are kept, and a robot and agent whose gradgym run is stored reuse it
(``rows[i].sessions`` says which process measured each side).

Usage::

    python scripts/bench_vs_brax.py --quick --out /tmp/bench_vs_brax_quick.json
    nice -n 10 python scripts/bench_vs_brax.py --robots halfcheetah,ant --agents ppo,apg \\
        --budget 1000000 --apg-budget 200000 --out docs/bench_vs_brax.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gradgym.fileio import atomic_write

EPISODE_LENGTH = 1000
BACKEND = "spring"
BRAX_EVAL_ENVS = 16  # Brax's default is 128; fewer only shortens evaluation (training is unchanged)
NUM_EVALS = 10  # evaluation points after the initial one, both trainers

# google/brax notebooks/training.ipynb, the ``train_fn`` dict of the "Training" colab (Brax's published
# PPO settings; the same dict is copied verbatim in many public repositories). We replace num_timesteps
# (the budget), num_evals and seed, and add num_eval_envs and deterministic_eval.
PPO_PUBLISHED: dict[str, dict[str, Any]] = {
    "ant": dict(num_timesteps=50_000_000, num_evals=10, reward_scaling=10, episode_length=1000,
                normalize_observations=True, action_repeat=1, unroll_length=5, num_minibatches=32,
                num_updates_per_batch=4, discounting=0.97, learning_rate=3e-4, entropy_cost=1e-2,
                num_envs=4096, batch_size=2048, seed=1),
    "halfcheetah": dict(num_timesteps=50_000_000, num_evals=20, reward_scaling=1, episode_length=1000,
                        normalize_observations=True, action_repeat=1, unroll_length=20, num_minibatches=32,
                        num_updates_per_batch=8, discounting=0.95, learning_rate=3e-4, entropy_cost=0.001,
                        num_envs=2048, batch_size=512, seed=3),
}
# Ours, for 2 CPU cores: the published settings with 128 envs and 16 minibatches of 32 trajectories, so an
# update needs 512 trajectories (2,560 env steps on ant, 10,240 on halfcheetah) instead of 65,536 / 16,384.
PPO_CPU = dict(num_envs=128, batch_size=32, num_minibatches=16)

# Brax publishes no Ant/HalfCheetah setting for its current APG (PR #476, 2024, which says it was not
# benchmarked against PPO). The published one is that PR's demo, Andrew-Luo1/mujoco_apg_tutorial
# mjx/training_apg.ipynb (an MJX quadruped): horizon 32, 64 envs, lr 1e-4, a (256, 128) policy,
# normalized observations, Brax's defaults otherwise (Adam b=(0.7, 0.95), lr x0.997 per update,
# element-wise clip 1). Its use_float64=True is left out: without jax_enable_x64 it does nothing.
APG_PUBLISHED = dict(horizon_length=32, num_envs=64, learning_rate=1e-4, normalize_observations=True,
                     hidden_layer_sizes=(256, 128))
# Ours: gradgym's measured APG setting for these robots (4-step windows on 64 envs, lr 1e-3, constant,
# global-norm clip 1; gradgym.agents.apg.ROBOT_DEFAULTS) in Brax's arguments, with Brax's own 4 x 32 policy.
APG_CPU = dict(horizon_length=4, num_envs=64, learning_rate=1e-3, normalize_observations=True,
               use_schedule=False, max_gradient_norm=1.0)


# ---------------------------------------------------------------------------------------------------- shim
BRAX_PMAP_AXIS = "i"  # the axis name Brax's trainers give jax.pmap


def _pmap_sharding(n: int) -> NamedSharding:
    return NamedSharding(Mesh(np.array(jax.local_devices()[:n]), (BRAX_PMAP_AXIS,)), P(BRAX_PMAP_AXIS))


def _device_put_replicated(x: Any, devices: list) -> Any:
    """JAX < 0.8's ``jax.device_put_replicated``: a leading axis of len(devices), one copy per device."""
    sharding = _pmap_sharding(len(devices))
    return jax.tree.map(lambda a: jax.device_put(np.stack([np.asarray(a)] * len(devices)), sharding), x)


def _on_pmap_mesh(x: Any) -> Any:
    return jax.tree.map(lambda a: jax.device_put(a, _pmap_sharding(a.shape[0])), x)


class _BraxJax:
    """``jax`` as Brax's trainer modules see it: every input of a pmapped function is first placed
    the way a pmap output of Brax's is (leading axis over devices, mesh axis ``"i"``).

    JAX 0.10's ``jax.pmap`` is a ``jit`` keyed on its inputs' shardings. Brax feeds its training
    epoch a first input that is not a pmap output (APG: an env state from ``jit(vmap(reset))``; both:
    the state from ``device_put_replicated``) and from then on the epoch's own outputs, so without
    this the epoch, simulator gradient included, compiles twice and Brax's second epoch pays for it.
    A ``device_put`` onto the sharding an array already has is free.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(jax, name)

    @staticmethod
    def pmap(fun, *args, **kwargs):
        mapped = jax.pmap(fun, *args, **kwargs)

        def call(*xs):
            return mapped(*(_on_pmap_mesh(x) for x in xs))

        return call


def install_brax_shim() -> None:
    """Makes Brax 0.14.2's PPO and APG trainers run on JAX 0.10 (and compile each program once)."""
    from brax.training.agents.apg import train as apg_train
    from brax.training.agents.ppo import train as ppo_train

    if not hasattr(jax, "device_put_replicated"):
        jax.device_put_replicated = _device_put_replicated
    apg_train.jax = ppo_train.jax = _BraxJax()


# ---------------------------------------------------------------------------------------------- measuring
class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling, from ``jax.monitoring`` events."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        self.total = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **_: Any) -> None:
        if event in self.EVENTS:
            self.total += duration


@dataclasses.dataclass
class Run:
    """One training run: its learning curve (training seconds exclude evaluation) and costs."""

    trainer: str
    config: dict[str, Any]
    env_steps: list[int] = dataclasses.field(default_factory=list)
    wall_s: list[float] = dataclasses.field(default_factory=list)
    returns: list[float] = dataclasses.field(default_factory=list)
    compile_s: float = 0.0
    total_s: float = 0.0  # the whole train() call: compile, training and evaluation

    def at_or_before(self, values: list[float], limit: float) -> float:
        idx = [i for i, v in enumerate(values) if v <= limit + 1e-9]
        return self.returns[idx[-1]]

    def steps_per_s(self) -> float:
        """Env steps per training second after the first evaluation interval (which holds the compile)."""
        if len(self.env_steps) > 2 and self.wall_s[-1] > self.wall_s[1]:
            return (self.env_steps[-1] - self.env_steps[1]) / (self.wall_s[-1] - self.wall_s[1])
        return self.env_steps[-1] / self.wall_s[-1]

    def summary(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "final_return": self.returns[-1], "steps_per_s": self.steps_per_s()}


def timed(clock: CompileClock, fn, *args, **kwargs):
    c0, t0 = clock.total, time.perf_counter()
    out = fn(*args, **kwargs)
    return out, clock.total - c0, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------- trainers
def run_gradgym(agent: str, robot: str, budget: int, num_evals: int, seed: int, clock: CompileClock) -> Run:
    from gradgym.agents import train
    from gradgym.envs import make

    env = make(robot, episode_length=EPISODE_LENGTH)
    result, compile_s, total_s = timed(clock, train, agent, env, {"total_steps": budget, "num_evals": num_evals}, seed)
    c = result.curve
    return Run("gradgym", result.config.to_dict(), list(c.env_steps), list(c.wall_s), list(c.returns),
               compile_s, total_s)


def split_updates(updates: int, num_evals: int) -> tuple[int, int]:
    """(evaluations, updates per evaluation) for Brax: at most ``num_evals`` evaluations, at least half
    as many, covering as many of ``updates`` as possible (at least one)."""
    if updates < 1:
        return 1, 1
    choices = range(max(1, min(updates, num_evals) // 2), min(updates, num_evals) + 1)
    evals = max(choices, key=lambda e: (e * (updates // e), e))
    return evals, updates // evals


def brax_ppo_kwargs(robot: str, name: str, budget: int, num_evals: int, quick: bool) -> tuple[dict, int]:
    """Brax PPO arguments for a config at this budget, and the env steps it will run."""
    kw = dict(PPO_PUBLISHED[robot])
    if name == "cpu":
        kw.update(PPO_CPU)
    elif quick:  # the same program, 64x smaller, so a smoke run finishes
        kw.update(num_envs=kw["num_envs"] // 64, batch_size=kw["batch_size"] // 64)
    per_update = kw["batch_size"] * kw["unroll_length"] * kw["num_minibatches"] * kw["action_repeat"]
    # num_timesteps a multiple of (evaluations x one update's env steps), so Brax stops at the budget
    # instead of rounding each epoch up (at least one update even when the budget is smaller).
    evals, per_epoch = split_updates(budget // per_update, num_evals)
    kw.update(num_timesteps=evals * per_epoch * per_update, num_evals=evals + 1)
    return kw, kw["num_timesteps"]


def brax_apg_kwargs(name: str, budget: int, num_evals: int) -> tuple[dict, int]:
    kw = dict(APG_CPU if name == "cpu" else APG_PUBLISHED)
    per_update = kw["num_envs"] * kw["horizon_length"]
    evals, per_epoch = split_updates(budget // per_update, num_evals)
    kw.update(policy_updates=evals * per_epoch, num_evals=evals + 1)
    return kw, kw["policy_updates"] * per_update


def run_brax(agent: str, robot: str, name: str, budget: int, num_evals: int, seed: int, quick: bool,
             clock: CompileClock) -> Run:
    install_brax_shim()
    from gradgym.envs.brax_compat import load_brax_env  # brax.envs.get_environment, its notice filtered

    if agent == "ppo":
        from brax.training.agents.ppo import train as brax_train

        kw, steps = brax_ppo_kwargs(robot, name, budget, num_evals, quick)
        per_epoch = steps // (kw["num_evals"] - 1)
    else:
        from brax.training.agents.apg import networks as apg_networks
        from brax.training.agents.apg import train as brax_train

        kw, steps = brax_apg_kwargs(name, budget, num_evals)
        per_epoch = steps // (kw["num_evals"] - 1)
    record = dict(kw)
    call = {k: v for k, v in kw.items() if k != "hidden_layer_sizes"}
    if "hidden_layer_sizes" in kw:
        call["network_factory"] = functools.partial(apg_networks.make_apg_networks,
                                                    hidden_layer_sizes=kw["hidden_layer_sizes"])
    call.update(episode_length=EPISODE_LENGTH, seed=seed, num_eval_envs=BRAX_EVAL_ENVS, deterministic_eval=True)
    record.update(seed=seed, num_eval_envs=BRAX_EVAL_ENVS, deterministic_eval=True)
    run = Run("brax", record)
    tag = f"brax {agent} {robot} {name}"

    def progress(step: int, metrics: dict) -> None:
        # ppo reports env steps; apg reports the epoch index
        env_steps = int(step) if agent == "ppo" else int(step) * per_epoch
        wall = float(metrics.get("training/walltime", 0.0))
        run.env_steps.append(env_steps)
        run.wall_s.append(wall)
        run.returns.append(float(metrics["eval/episode_reward"]))
        print(f"[{tag}] {env_steps:,} env steps, return {run.returns[-1]:,.1f}, training {wall:,.1f} s",
              file=sys.stderr, flush=True)

    env = load_brax_env(robot, backend=BACKEND)
    _, run.compile_s, run.total_s = timed(clock, brax_train.train, environment=env, progress_fn=progress, **call)
    return run


# ----------------------------------------------------------------------------------------------- reports
STEPS_TOLERANCE = 1.02  # the two trainers' budgets round to their own batch sizes: final points up to 2 % apart


def run_from(summary: dict[str, Any]) -> Run:
    return Run(**{f.name: summary[f.name] for f in dataclasses.fields(Run)})


def compare(brax: Run, gg: Run, seconds: float | None) -> dict[str, Any]:
    """Each trainer's return at equal env steps (its last evaluation at or before the smaller final
    step count, to ``STEPS_TOLERANCE``) and at equal training wall-clock (strictly at or before)."""
    steps = min(brax.env_steps[-1], gg.env_steps[-1])
    wall = min(brax.wall_s[-1], gg.wall_s[-1])
    if seconds is not None:
        wall = min(wall, seconds)
    return {"equal_steps": steps, "brax_at_steps": brax.at_or_before(brax.env_steps, steps * STEPS_TOLERANCE),
            "gradgym_at_steps": gg.at_or_before(gg.env_steps, steps * STEPS_TOLERANCE),
            "equal_wall_s": wall, "brax_at_wall": brax.at_or_before(brax.wall_s, wall),
            "gradgym_at_wall": gg.at_or_before(gg.wall_s, wall)}


def markdown(rows: list[dict]) -> str:
    lines = ["| robot | agent | Brax config | env steps, Brax / gradgym | return at equal env steps, Brax / gradgym "
             "| equal wall-clock (s) | return at equal wall-clock, Brax / gradgym | env steps/s, Brax / gradgym "
             "| compile s, Brax / gradgym |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b, g, c = r["brax"], r["gradgym"], r["compare"]
        lines.append(
            f"| {r['robot']} | {r['agent']} | {r['config']} | {b['env_steps'][-1]:,} / {g['env_steps'][-1]:,} "
            f"| {c['brax_at_steps']:,.0f} / {c['gradgym_at_steps']:,.0f} "
            f"| {c['equal_wall_s']:,.0f} | {c['brax_at_wall']:,.0f} / {c['gradgym_at_wall']:,.0f} "
            f"| {b['steps_per_s']:,.0f} / {g['steps_per_s']:,.0f} | {b['compile_s']:,.0f} / {g['compile_s']:,.0f} |")
    return "\n".join(lines)


def git_state() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", default="ant,halfcheetah")
    p.add_argument("--agents", default="ppo,apg")
    p.add_argument("--configs", default="published,cpu", help="Brax configs: published, cpu")
    p.add_argument("--budget", type=int, default=1_000_000, help="env steps per PPO run")
    p.add_argument("--apg-budget", type=int, default=None, help="env steps per APG run (default: budget / 5)")
    p.add_argument("--seconds", type=float, default=None,
                   help="compare at this many training seconds (capped by the shorter run; default: the shorter run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 10,240 / 2,048 env steps, 2 evaluations, published PPO sizes / 64")
    p.add_argument("--out", default="docs/bench_vs_brax.json")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in --out (same settings) and run only the missing ones; a "
                        "robot and agent whose gradgym run is stored reuse it")
    args = p.parse_args()
    robots, agents, configs = (s.split(",") for s in (args.robots, args.agents, args.configs))
    budgets = {"ppo": args.budget, "apg": args.apg_budget or args.budget // 5}
    num_evals = NUM_EVALS
    if args.quick:
        budgets, num_evals = {"ppo": 10_240, "apg": 2_048}, 2
    for name in configs:
        if name not in ("published", "cpu"):
            p.error(f"unknown config {name!r}; choose from published, cpu")
    for agent in agents:
        if agent not in ("ppo", "apg"):
            p.error(f"unknown agent {agent!r}; choose from ppo, apg")

    import brax

    session = {"argv": sys.argv, "git": git_state(), "started": datetime.datetime.now().isoformat(timespec="seconds"),
               "loadavg_start": os.getloadavg()}
    meta = {"date": datetime.date.today().isoformat(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "jax": jax.__version__, "brax": brax.__version__, "devices": [str(d) for d in jax.devices()],
            "budgets": budgets, "num_evals": num_evals, "backend": BACKEND, "episode_length": EPISODE_LENGTH,
            "brax_eval_envs": BRAX_EVAL_ENVS, "seed": args.seed,
            "sources": {"ppo_published": "google/brax notebooks/training.ipynb train_fn dict",
                        "ppo_cpu": f"ppo_published with {PPO_CPU}",
                        "apg_published": "google/brax PR #476 demo: Andrew-Luo1/mujoco_apg_tutorial "
                                         "mjx/training_apg.ipynb",
                        "apg_cpu": "gradgym.agents.apg.ROBOT_DEFAULTS (ant, halfcheetah) in Brax's arguments"},
            "sessions": []}
    rows: list[dict] = []
    if args.resume and os.path.exists(args.out):
        meta, rows = resume(args.out, meta)
    meta["sessions"].append(session)
    here = len(meta["sessions"]) - 1
    clock, t_start = CompileClock(), time.perf_counter()

    def save() -> None:
        session["loadavg_end"], session["elapsed_s"] = os.getloadavg(), time.perf_counter() - t_start
        for r in rows:  # stored rows too, so one rule holds for the whole table
            r["compare"] = compare(run_from(r["brax"]), run_from(r["gradgym"]), args.seconds)
        doc = {"meta": meta, "rows": rows, "table": markdown(rows)}
        atomic_write(args.out, (json.dumps(doc, indent=1) + "\n").encode())

    for robot in robots:
        for agent in agents:
            budget = budgets[agent]
            done = {r["config"]: r for r in rows if (r["robot"], r["agent"]) == (robot, agent)}
            todo = [name for name in configs if name not in done]
            if not todo:
                continue
            if done:  # resumed: the gradgym run of this robot and agent is already measured
                row = next(iter(done.values()))
                gg, gg_session = run_from(row["gradgym"]), row["sessions"]["gradgym"]
            else:
                print(f"== gradgym {agent} {robot}: {budget:,} env steps (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
                gg, gg_session = run_gradgym(agent, robot, budget, num_evals, args.seed, clock), here
            for name in todo:
                print(f"== brax {agent} {robot} {name}: {budget:,} env steps (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
                bx = run_brax(agent, robot, name, budget, num_evals, args.seed, args.quick, clock)
                rows.append({"robot": robot, "agent": agent, "config": name, "brax": bx.summary(),
                             "gradgym": gg.summary(), "compare": compare(bx, gg, args.seconds),
                             "sessions": {"gradgym": gg_session, "brax": here}})
                save()
    save()
    print(markdown(rows))
    print(f"\nload average {session['loadavg_start'][0]:.1f} -> {session['loadavg_end'][0]:.1f}; "
          f"{session['elapsed_s'] / 60:.1f} min; JSON: {args.out}")


def resume(path: str, meta: dict) -> tuple[dict, list[dict]]:
    """The rows and sessions of an earlier, interrupted run with the same settings."""
    with open(path) as f:
        old = json.load(f)
    prev = old["meta"]
    if "sessions" not in prev:  # written before sessions were recorded: one session, its fields at the top
        prev["sessions"] = [{k: prev.pop(k) for k in ("argv", "git", "loadavg_start", "loadavg_end", "elapsed_s")}]
    for key in ("budgets", "num_evals", "backend", "episode_length", "brax_eval_envs"):
        if prev.get(key) != meta[key]:
            raise SystemExit(f"--resume: {path} has {key}={prev.get(key)!r}, this run {meta[key]!r}; "
                             "use the same settings or another --out.")
    rows = old["rows"]
    for r in rows:
        r.setdefault("sessions", {"gradgym": 0, "brax": 0})
    return {**meta, "sessions": prev["sessions"], "date": prev["date"]}, rows

if __name__ == "__main__":
    main()
