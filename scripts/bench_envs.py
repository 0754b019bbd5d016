"""Env speed benchmark: gradgym's shells and core vs raw Brax and Gymnasium MuJoCo, in one run.

Every figure is a best-of-``--repeats`` rate taken in the same process (ratios are
what matter; absolute numbers depend on the machine and its load, which is recorded).

    python scripts/bench_envs.py --out docs/benchmarks.json          # full (~10 min on 2 cores)
    python scripts/bench_envs.py --quick --out /tmp/bench_quick.json  # smoke run

Measured on Ant (``--robot``): the Gymnasium VectorEnv vs raw ``jit(vmap(step))`` per
step and in ``lax.scan``; the single Gymnasium Env vs Gymnasium's MuJoCo ``Ant-v5``; the
SB3 VecEnv vs raw Brax and SB3 ``DummyVecEnv`` over ``Ant-v5``; forward vs gradient cost
of a 100-step rollout with an MLP policy on every backend; cold vs warm compile time with
JAX's persistent compilation cache (the warm run is a fresh subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

warnings.filterwarnings("ignore")


def rate(fn: Callable[[], Any], steps_per_call: int, seconds: float, repeats: int) -> float:
    """Best-of-``repeats`` env-steps/s of ``fn`` (each window runs ~``seconds``)."""
    fn()  # warm up: compiles; raw Brax retraces once more on its own output (weak types)
    fn()
    best = 0.0
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        best = max(best, calls * steps_per_call / elapsed)
    return best


def raw_brax(robot: str, backend: str, num_envs: int, scan_len: int) -> dict[str, Callable[[], Any]]:
    """Raw Brax: one env per step, a batch per step, and a batch in ``lax.scan``."""
    from brax import envs as brax_envs

    env = brax_envs.get_environment(robot, backend=backend)
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (num_envs, env.action_size), minval=-1, maxval=1)
    step1, stepv = jax.jit(env.step), jax.jit(jax.vmap(env.step))

    @jax.jit
    def scan(state):
        return jax.lax.scan(lambda s, _: (jax.vmap(env.step)(s, actions), None), state, None, length=scan_len)[0]

    box = {"one": jax.jit(env.reset)(keys[0]), "batch": jax.jit(jax.vmap(env.reset))(keys)}
    box["scan"] = box["batch"]

    def one():
        box["one"] = step1(box["one"], actions[0])
        box["one"].obs.block_until_ready()

    def batch():
        box["batch"] = stepv(box["batch"], actions)
        box["batch"].obs.block_until_ready()

    def scanned():
        box["scan"] = scan(box["scan"])
        box["scan"].obs.block_until_ready()

    return {"one": one, "batch": batch, "scan": scanned}


def gym_loop(env, seed: int = 0) -> Callable[[], Any]:
    """One ``env.step`` (reset when the episode ends) with pre-sampled actions."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(64)]
    i = [0]

    def fn():
        i[0] += 1
        _, _, term, trunc, _ = env.step(actions[i[0] % 64])
        if term or trunc:
            env.reset()

    return fn


def vec_loop(env, actions: np.ndarray, sb3: bool) -> Callable[[], Any]:
    """One batched step of a Gymnasium VectorEnv (autoresets) or an SB3 VecEnv."""
    if sb3:
        env.reset()
        return lambda: env.step(actions)
    env.reset(seed=0)
    return lambda: env.step(actions)


def grad_vs_forward(robot: str, backend: str, horizon: int, seconds: float, repeats: int) -> dict[str, float]:
    """Forward and gradient of a ``horizon``-step rollout of the default MLP policy."""
    import gradgym.envs as ge
    from gradgym.nets import make_policy

    env = ge.make(robot, backend)
    module, policy_fn = make_policy(env.action_size)
    params = module.init(jax.random.PRNGKey(0), jnp.zeros(env.observation_size))
    key = jax.random.PRNGKey(1)

    def ret(p):
        return ge.rollout(env, policy_fn, p, key, horizon)[0]

    fwd, grad = jax.jit(ret), jax.jit(jax.grad(ret))
    out: dict[str, float] = {}
    for name, f in (("forward", fwd), ("gradient", grad)):
        t0 = time.perf_counter()
        jax.block_until_ready(f(params))
        out[f"{name}_first_call_s"] = time.perf_counter() - t0
        r = rate(lambda f=f: jax.block_until_ready(f(params)), horizon, seconds, repeats)
        out[f"{name}_steps_per_s"] = r
        out[f"{name}_ms"] = 1000.0 * horizon / r
    out["ratio"] = out["gradient_ms"] / out["forward_ms"]
    g = grad(params)
    out["grad_finite"] = bool(all(np.all(np.isfinite(x)) for x in jax.tree.leaves(g)))
    return out


def raw_grad_vs_forward(robot: str, backend: str, horizon: int, seconds: float, repeats: int) -> dict[str, float]:
    """The same policy rollout written directly on raw Brax (reference for the ratio)."""
    from brax import envs as brax_envs

    from gradgym.nets import make_policy

    env = brax_envs.get_environment(robot, backend=backend)
    module, policy_fn = make_policy(env.action_size)
    params = module.init(jax.random.PRNGKey(0), jnp.zeros(env.observation_size))
    keys = jax.random.split(jax.random.PRNGKey(2), horizon)

    def ret(p):
        def body(s, k):
            s = env.step(s, policy_fn(p, s.obs, k))
            return s, s.reward

        return jnp.sum(jax.lax.scan(body, env.reset(jax.random.PRNGKey(1)), keys)[1])

    fwd, grad = jax.jit(ret), jax.jit(jax.grad(ret))
    out = {
        f"{name}_ms": 1000.0 * horizon / rate(lambda f=f: jax.block_until_ready(f(params)), horizon, seconds, repeats)
        for name, f in (("forward", fwd), ("gradient", grad))
    }
    out["ratio"] = out["gradient_ms"] / out["forward_ms"]
    return out


def compile_child(cache_dir: str, robot: str, horizon: int) -> None:
    """Runs in a subprocess: first-call times with the persistent cache at ``cache_dir``."""
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    import gymnasium as gym

    import gradgym  # noqa: F401 - registers the ids
    import gradgym.envs as ge
    from gradgym.nets import make_policy

    out = {}
    t0 = time.perf_counter()
    env = gym.make(ge.get_robot(robot).gym_id)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    out["gym_env_reset_and_step_s"] = time.perf_counter() - t0
    core = ge.make(robot)
    module, policy_fn = make_policy(core.action_size)
    params = module.init(jax.random.PRNGKey(0), jnp.zeros(core.observation_size))
    grad = jax.jit(jax.grad(lambda p: ge.rollout(core, policy_fn, p, jax.random.PRNGKey(1), horizon)[0]))
    t0 = time.perf_counter()
    jax.block_until_ready(grad(params))
    out["rollout_gradient_s"] = time.perf_counter() - t0
    print("RESULT " + json.dumps(out), flush=True)


def compile_times(robot: str, horizon: int) -> dict[str, Any]:
    """Cold (empty cache) and warm (same cache, fresh process) first-call times."""
    with tempfile.TemporaryDirectory(prefix="gradgym-jax-cache-") as cache:
        res = {}
        for label in ("cold", "warm"):
            cmd = [sys.executable, __file__, "--compile-child", cache, "--robot", robot, "--horizon", str(horizon)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
            res[label] = {**json.loads(line[len("RESULT ") :]), "process_s": time.perf_counter() - t0}
            print(f"  compile {label}: {res[label]}", flush=True)
        return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import gradgym  # noqa: F401 - registers the ids
    import gradgym.envs as ge
    from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv

    spec = ge.get_robot(args.robot)
    backend = spec.default_backend
    n, sec, rep = args.num_envs, args.seconds, args.repeats
    res: dict[str, Any] = {"robot": args.robot, "backend": backend, "num_envs": n, "sb3_num_envs": args.sb3_envs}

    def note(key: str, value: float) -> None:
        res[key] = value
        print(f"  {key:<34} {value:>12,.0f} env-steps/s", flush=True)

    print(f"== {args.robot} ({backend}), {n} envs; best of {rep} x {sec}s windows", flush=True)
    raw = raw_brax(args.robot, backend, n, args.scan_len)
    note("raw_brax_one_step_python", rate(raw["one"], 1, sec, rep))
    note("raw_brax_batch_step_python", rate(raw["batch"], n, sec, rep))
    note("raw_brax_batch_scan", rate(raw["scan"], n * args.scan_len, sec, rep))

    venv = gym.make_vec(spec.gym_id, num_envs=n, vectorization_mode="vector_entry_point")
    venv.action_space.seed(0)
    note("gradgym_vector_env", rate(vec_loop(venv, venv.action_space.sample(), sb3=False), n, sec, rep))
    venv.close()

    single = gym.make(spec.gym_id)
    note("gradgym_gym_env", rate(gym_loop(single), 1, sec, rep))
    single.close()
    if spec.gym_name in ("Ant", "HalfCheetah", "Hopper", "Humanoid", "Walker2d", "Swimmer", "Pusher", "Reacher"):
        mj_id = f"{spec.gym_name}-v5"
        mj = gym.make(mj_id)
        note("gymnasium_mujoco_env", rate(gym_loop(mj), 1, sec, rep))
        mj.close()

        sb3 = GradGymSB3VecEnv(args.robot, num_envs=args.sb3_envs)
        acts = np.random.default_rng(0).uniform(-1, 1, (args.sb3_envs, sb3.action_space.shape[0])).astype(np.float32)
        note("gradgym_sb3_vec_env", rate(vec_loop(sb3, acts, sb3=True), args.sb3_envs, sec, rep))
        sb3.close()
        dummy = DummyVecEnv([lambda: gym.make(mj_id)] * args.sb3_envs)
        note("sb3_dummy_vec_env_mujoco", rate(vec_loop(dummy, acts, sb3=True), args.sb3_envs, sec, rep))
        dummy.close()
        if args.sb3_envs != n:  # the raw batched reference at the SB3 batch size
            raw_sb3 = raw_brax(args.robot, backend, args.sb3_envs, args.scan_len)
            note("raw_brax_batch_step_python_sb3_n", rate(raw_sb3["batch"], args.sb3_envs, sec, rep))

    res["grad_vs_forward"] = {}
    for b in args.backends:
        print(f"== forward vs gradient, {args.horizon}-step rollout, backend {b}", flush=True)
        r = grad_vs_forward(args.robot, b, args.horizon, sec, rep)
        res["grad_vs_forward"][b] = r
        print(
            f"  forward {r['forward_ms']:.1f} ms  gradient {r['gradient_ms']:.1f} ms  ratio {r['ratio']:.2f}x",
            flush=True,
        )
    if not args.skip_raw_grad:
        print(f"== raw Brax reference: forward vs gradient, backend {backend}", flush=True)
        r = raw_grad_vs_forward(args.robot, backend, args.horizon, sec, rep)
        res["raw_grad_vs_forward"] = {backend: r}
        print(
            f"  forward {r['forward_ms']:.1f} ms  gradient {r['gradient_ms']:.1f} ms  ratio {r['ratio']:.2f}x",
            flush=True,
        )
    if not args.skip_compile:
        print("== compile time, persistent cache cold vs warm (fresh subprocesses)", flush=True)
        res["compile"] = compile_times(args.robot, args.horizon)
    return res


def ratios(res: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(what, ratio, goal) rows; ratios > 1 mean gradgym is faster."""
    rows = []

    def add(what, num, den, goal):
        if num in res and den in res:
            rows.append((what, res[num] / res[den], goal))

    add("VectorEnv / raw jit(vmap(step)) per step", "gradgym_vector_env", "raw_brax_batch_step_python", ">= 0.9")
    add("VectorEnv / raw jit(vmap(step)) in scan", "gradgym_vector_env", "raw_brax_batch_scan", "(reference)")
    add("Gym Env / Gymnasium MuJoCo v5", "gradgym_gym_env", "gymnasium_mujoco_env", ">= 1.0")
    add("Gym Env / raw jit(step) per step", "gradgym_gym_env", "raw_brax_one_step_python", "(reference)")
    raw_sb3 = (
        "raw_brax_batch_step_python_sb3_n"
        if "raw_brax_batch_step_python_sb3_n" in res
        else "raw_brax_batch_step_python"
    )
    add("SB3 VecEnv / raw jit(vmap(step)) per step", "gradgym_sb3_vec_env", raw_sb3, ">= 0.9")
    add("SB3 VecEnv / SB3 DummyVecEnv(MuJoCo v5)", "gradgym_sb3_vec_env", "sb3_dummy_vec_env_mujoco", ">= 1.0")
    for b, r in res.get("grad_vs_forward", {}).items():
        rows.append((f"gradient / forward, 100 steps, {b}", r["ratio"], "<= 4"))
    for b, r in res.get("raw_grad_vs_forward", {}).items():
        rows.append((f"raw Brax gradient / forward, 100 steps, {b}", r["ratio"], "(reference)"))
        if b in res.get("grad_vs_forward", {}):
            ours = res["grad_vs_forward"][b]["gradient_ms"]
            rows.append(
                (f"raw Brax gradient time / gradgym gradient time, {b}", r["gradient_ms"] / ours, "(reference)")
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--robot", default="ant")
    p.add_argument("--num-envs", type=int, default=128)
    p.add_argument("--sb3-envs", type=int, default=128, help="batch of the SB3 VecEnv and the DummyVecEnv")
    p.add_argument("--scan-len", type=int, default=100)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--seconds", type=float, default=3.0, help="length of one timing window")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", nargs="+", default=["spring", "generalized", "positional", "mjx"])
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--skip-raw-grad", action="store_true", help="skip the raw Brax gradient reference")
    p.add_argument("--quick", action="store_true", help="short windows, 1 repeat, spring only, 16 SB3 envs")
    p.add_argument("--out", default="docs/benchmarks.json")
    p.add_argument("--compile-child", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compile_child:
        compile_child(args.compile_child, args.robot, args.horizon)
        return 0
    if args.num_envs < 1 or args.sb3_envs < 1 or args.seconds <= 0 or args.repeats < 1 or args.horizon < 1:
        p.error("--num-envs, --sb3-envs, --repeats, --horizon must be >= 1 and --seconds > 0")
    if args.quick:
        args.seconds, args.repeats, args.backends, args.sb3_envs = 0.5, 1, ["spring"], 16
    meta = {
        "command": " ".join(["python", "scripts/bench_envs.py", *(argv if argv is not None else sys.argv[1:])]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }
    res = run(args)
    meta["loadavg_end"] = os.getloadavg()
    rows = ratios(res)
    print("\n| ratio | value | goal |\n|---|---:|---|")
    for what, value, goal in rows:
        print(f"| {what} | {value:.2f}x | {goal} |")
    out = {"meta": meta, "results": res, "ratios": [{"what": w, "value": v, "goal": g} for w, v, g in rows]}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
