"""``gradgym list | demo | render``: the env layer's subcommands.

``demo`` is the env layer's main job: it makes a robot, rolls a policy out
jitted and batched (steps/s), takes the analytic gradient of a short rollout
with respect to the policy parameters, and writes a rendered frame (PNG), an
interactive viewer (HTML) and the numbers (JSON) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gradgym.envs.robots import ROBOTS, get_robot

RENDER_STEPS = 100


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``list``, ``demo`` and ``render`` to the ``gradgym`` command."""
    p = subparsers.add_parser("list", help="robots (Gymnasium ids, backends) and agents")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("demo", help="rollout speed, an analytic policy gradient, a rendered frame and viewer")
    _common(p, default_env="ant")
    p.add_argument("--num-envs", type=_positive, default=64, help="batch size of the timed rollout (default 64)")
    p.add_argument("--steps", type=_positive, default=200, help="steps per env of the timed rollout (default 200)")
    p.add_argument("--repeats", type=_positive, default=3, help="timed repeats after compiling (default 3)")
    p.add_argument("--horizon", type=_positive, default=50, help="rollout length of the gradient (default 50)")
    p.add_argument("--render-steps", type=_positive, default=100, help="steps shown in the viewer (default 100)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("render", help="render a rollout to a PNG (last frame) or an HTML viewer")
    _common(p, default_env="ant")
    p.add_argument("--steps", type=_positive, default=None, help=f"steps to roll out (default {RENDER_STEPS})")
    p.add_argument("--policy", choices=("random", "zero"), default=None, help="actions (default random)")
    p.add_argument("--out", default=None, help="output file ending in .png or .html")
    # None marks "not given" (the agents layer's --checkpoint takes the robot and seed from the checkpoint).
    p.set_defaults(func=cmd_render, env=None, seed=None)


def _common(p: argparse.ArgumentParser, default_env: str) -> None:
    p.add_argument("--env", default=default_env, help=f"robot: {', '.join(ROBOTS)} (default {default_env})")
    p.add_argument("--backend", default=None, help="physics backend (default: the robot's default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--width", type=_positive, default=480, help="frame width in pixels (default 480)")
    p.add_argument("--height", type=_positive, default=480, help="frame height in pixels (default 480)")


def cmd_list(args: argparse.Namespace, more: Callable[[], None] | None = None) -> int:
    """Prints the robots with their ids and backends (default starred), then ``more()`` (the agents layer
    binds its listing there, so this layer imports nothing above it)."""
    print("Robots (Gymnasium id, max_episode_steps, backends; * = default):")
    for spec in ROBOTS.values():
        backends = ", ".join(b + ("*" if b == spec.default_backend else "") for b in spec.backends)
        print(f"  {spec.name:<26} {spec.gym_id:<34} {spec.max_episode_steps:>5}  {backends}")
    if more is not None:
        more()
    print('Use: gymnasium.make("gradgym/Ant-v0") after `import gradgym`, or gradgym.envs.make("ant").')
    return 0


def _out_path(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() not in (".png", ".html"):
        raise ValueError(f"--out must end in .png or .html, got {out!r}; e.g. --out runs/ant.png")
    return path


def _roll_shell(args: argparse.Namespace, steps: int, act) -> Any:
    """Steps a recording, rendering GradGymEnv with ``act(obs, env)``; returns the env (not closed)."""
    from gradgym.envs.gym_env import GradGymEnv

    env = GradGymEnv(args.env, args.backend, render_mode="rgb_array", width=args.width, height=args.height, record=True)
    obs, _ = env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    total, t0 = 0.0, time.perf_counter()
    for t in range(steps):
        obs, reward, terminated, _, _ = env.step(act(obs, env))
        total += reward
        if t == 0:
            print(f"  first step (compiles): {time.perf_counter() - t0:.1f}s")
            t0 = time.perf_counter()
        if terminated:
            print(f"  episode terminated at step {t + 1} (return {total:.2f}); stopping the clip there")
            break
        if (t + 1) % 100 == 0:
            print(f"  step {t + 1}/{steps}  return {total:.2f}  {t / (time.perf_counter() - t0):.0f} steps/s")
    return env


def cmd_render(args: argparse.Namespace) -> int:
    """Rolls out a random or zero policy and saves the last frame (.png) or the viewer (.html)."""
    from gradgym.envs import render

    if args.out is None:
        raise ValueError("render needs --out FILE (.png or .html), e.g. --out runs/ant.png.")
    args.env = "ant" if args.env is None else args.env
    args.seed = 0 if args.seed is None else args.seed
    args.steps = RENDER_STEPS if args.steps is None else args.steps
    args.policy = args.policy or "random"
    get_robot(args.env)
    path = _out_path(args.out)

    def act(obs, env):
        return env.action_space.sample() if args.policy == "random" else np.zeros(env.action_space.shape, np.float32)

    print(f"render: {args.env}, {args.steps} steps, {args.policy} policy -> {path}")
    env = _roll_shell(args, args.steps, act)
    try:
        if path.suffix.lower() == ".png":
            render.save_png(path, env.render())
        else:
            env.save_html(path)
    finally:
        env.close()
    print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Throughput, an analytic gradient, a frame and a viewer for one robot."""
    import jax
    import jax.numpy as jnp
    import optax

    from gradgym.envs import make, render, rollout
    from gradgym.nets import make_policy, scale_action

    get_robot(args.env)
    out = Path(args.out)
    env = make(args.env, args.backend)
    low, high = (jnp.asarray(b) for b in env.action_bounds)
    print(f"[1/4] {args.env} on {env.backend}: obs {env.observation_size}, actions {env.action_size}, dt {env.dt:g}s")
    module, policy_fn = make_policy(env.action_size)
    key = jax.random.PRNGKey(args.seed)
    params = module.init(key, jnp.zeros(env.observation_size))

    def policy(p, obs, k):
        return scale_action(policy_fn(p, obs, k), low, high)

    def mean_return(p, k, n, horizon):
        keys = jax.random.split(k, n)
        return jnp.mean(jax.vmap(lambda kk: rollout(env, policy, p, kk, horizon)[0])(keys))

    batched = jax.jit(mean_return, static_argnums=(2, 3))
    n, steps = args.num_envs, args.steps
    t0 = time.perf_counter()
    ret = float(batched(params, key, n, steps))
    compile_s = time.perf_counter() - t0
    print(f"[2/4] jitted rollout of {n} envs x {steps} steps: first call (compile) {compile_s:.1f}s")
    rates = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        ret = float(batched(params, jax.random.fold_in(key, i + 1), n, steps))
        rates.append(n * steps / (time.perf_counter() - t0))
        print(f"  repeat {i + 1}/{args.repeats}: {rates[-1]:,.0f} env-steps/s, mean return {ret:.2f}")

    grad_fn = jax.jit(jax.value_and_grad(mean_return), static_argnums=(2, 3))
    t0 = time.perf_counter()
    value, grads = grad_fn(params, key, 1, args.horizon)
    grad_norm = float(optax.tree.norm(grads))
    grad_s = time.perf_counter() - t0
    print(f"[3/4] d return / d policy params over {args.horizon} steps: return {float(value):.3f}, "
          f"|grad| = {grad_norm:.4g} ({'finite' if math.isfinite(grad_norm) else 'NON-FINITE'}; {grad_s:.1f}s incl. compile)")

    act_fn = jax.jit(lambda p, o: policy(p, o, None))
    print(f"[4/4] rendering {args.render_steps} steps of the (untrained) policy's mean action")
    shell = _roll_shell(args, args.render_steps, lambda obs, _env: np.asarray(act_fn(params, obs)))
    try:
        png = render.save_png(out / f"{args.env}.png", shell.render())
        html = shell.save_html(out / f"{args.env}.html")
    finally:
        shell.close()
    summary = {
        "robot": args.env, "backend": env.backend, "num_envs": n, "steps": steps,
        "env_steps_per_s": max(rates), "compile_s": compile_s, "mean_return": ret,
        "grad_horizon": args.horizon, "grad_norm": grad_norm, "grad_s": grad_s, "png": str(png), "html": html,
    }
    render._atomic_write(out / "demo.json", json.dumps(summary, indent=2).encode())
    print(f"wrote {png}, {html}, {out / 'demo.json'}")
    return 0
