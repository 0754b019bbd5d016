"""Agent benchmarks (not a test): training throughput and a results table.

1. Throughput in env steps/s, JAX PPO vs SB3 PPO on the same robot, same
   process, both after warm-up (compilation excluded) and the ratio.
2. ``compare`` on several robots at one budget for apg, ppo, es and sb3;
   each robot's report folder is written under ``--out``.

Usage::

    python scripts/bench_agents.py --throughput-robot hopper --robots ant,halfcheetah,hopper \\
        --budget 50000 --seeds 1 --out runs/bench_agents
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from gradgym.agents.checkpoint import atomic_write


def ppo_throughput(robot: str, iters: int, sb3_steps: int, devices: int | None = None) -> dict:
    """Steps/s of JAX PPO (jitted rollout+update, env batch split over ``devices``) and SB3 PPO on ``robot`` (warm)."""
    from stable_baselines3 import PPO
    from torch import nn

    from gradgym.agents import get_agent
    from gradgym.agents.trainer import build_agent
    from gradgym.envs import make
    from gradgym.envs.robots import get_robot
    from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv
    from gradgym.sharding import make_mesh, mesh_context, place_state, sharded_iterate

    env = make(robot, episode_length=get_robot(robot).max_episode_steps)
    cfg = get_agent("ppo").default_config(robot)
    agent = build_agent("ppo", env, cfg)
    ts, iterate, mesh = agent.init(jax.random.PRNGKey(0)), agent.iterate, make_mesh(devices)
    if mesh.size > 1:  # as the trainer does
        ts, iterate = place_state(ts, mesh, cfg.num_envs), sharded_iterate(agent, mesh, cfg.num_envs)
    with mesh_context(mesh):
        t0 = time.perf_counter()
        ts, _ = iterate(ts)
        jax.block_until_ready(ts)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(iters):
            ts, _ = iterate(ts)
        jax.block_until_ready(ts)
    jax_rate = iters * agent.steps_per_iter / (time.perf_counter() - t0)

    import torch

    torch.set_num_threads(1)  # as gradgym's sb3 agent does: small MLPs, no thread spinning
    venv = GradGymSB3VecEnv(robot, num_envs=8)
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=256, device="cpu", seed=0,
                policy_kwargs={"net_arch": list(cfg.hidden), "activation_fn": nn.SiLU})
    model.learn(2048)  # warm-up: compiles the shell's jitted step
    t0 = time.perf_counter()
    model.learn(sb3_steps, reset_num_timesteps=False)
    sb3_rate = sb3_steps / (time.perf_counter() - t0)
    venv.close()
    return {"robot": robot, "jax_ppo_steps_per_s": jax_rate, "jax_ppo_first_iter_s": compile_s,
            "jax_ppo_num_envs": cfg.num_envs, "jax_ppo_devices": mesh.size, "sb3_ppo_steps_per_s": sb3_rate, "sb3_ppo_num_envs": 8,
            "ratio": jax_rate / sb3_rate}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--throughput-robot", default="hopper")
    p.add_argument("--jax-iters", type=int, default=20, help="timed JAX PPO iterations")
    p.add_argument("--sb3-steps", type=int, default=8192, help="timed SB3 PPO env steps")
    p.add_argument("--robots", default="ant,halfcheetah,hopper", help="robots for the results table ('' = skip)")
    p.add_argument("--agents", default="apg,ppo,es,sb3")
    p.add_argument("--budget", type=int, default=50_000)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--out", default="runs/bench_agents")
    p.add_argument("--devices", type=int, default=None, help="split JAX env batches over N devices (default all)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from gradgym.sharding import resolve_devices

    used = resolve_devices(args.devices)
    print(f"devices: {len(used)} of jax.devices() = {jax.devices()}", flush=True)
    summary: dict = {"command": vars(args), "devices": [str(d) for d in used]}
    if args.throughput_robot:
        tp = ppo_throughput(args.throughput_robot, args.jax_iters, args.sb3_steps, args.devices)
        summary["throughput"] = tp
        print(f"PPO throughput on {tp['robot']}: JAX {tp['jax_ppo_steps_per_s']:,.0f} steps/s "
              f"({tp['jax_ppo_num_envs']} envs on {tp['jax_ppo_devices']} device(s); first iteration incl. compile {tp['jax_ppo_first_iter_s']:.1f} s), "
              f"SB3 {tp['sb3_ppo_steps_per_s']:,.0f} steps/s (8 envs): ratio {tp['ratio']:.1f}x", flush=True)
    from gradgym.agents.report import compare

    rows = []
    for robot in filter(None, args.robots.split(",")):
        t0 = time.perf_counter()
        res = compare(robot, args.agents.split(","), args.seeds, args.budget, out / robot, progress=True,
                      devices=args.devices)
        for name, a in res["agents"].items():
            rows.append({"robot": robot, "agent": name, **{k: v for k, v in a.items() if k != "runs"}})
        print(f"{robot}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    summary["table"] = rows
    lines = ["| robot | agent | initial return | final return (mean ± std) | env steps | wall-clock s | steps/s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['robot']} | {r['agent']} | {r['initial_return_mean']:.1f} | {r['final_return_mean']:.1f} "
                     f"± {r['final_return_std']:.1f} | {r['env_steps']:,.0f} | {r['wall_s']:.0f} | "
                     f"{r['steps_per_s']:,.0f} |")
    print("\n".join(lines))
    atomic_write(out / "bench_agents.json", json.dumps(summary, indent=1).encode())
    atomic_write(out / "table.md", ("\n".join(lines) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
