"""Gait diagnostic (not a test): how a trained halfcheetah moves, from its checkpoints.

Halfcheetah runs at two levels of return under APG (~2,200-2,800 and ~3,300-3,900, see
docs/experiments.md). This rolls out each checkpoint's deterministic policy for whole
episodes (fixed reset keys) and reports, per checkpoint, the return, the forward speed,
and the torso's pitch (joint ``rooty``): its mean, and the share of steps the torso is
upside down (|pitch| > pi/2), which tells a cheetah running on its back from one running
on its feet.

Usage::

    python scripts/diag_gait.py CKPT [CKPT ...] [--episodes 4] [--out gait.json]

``CKPT`` is a checkpoint file or a ``--checkpoint-dir`` folder (its newest checkpoint).
"""

from __future__ import annotations

import argparse
import json
import math


def measure(path: str, episodes: int) -> dict:
    import jax
    import numpy as np

    from gradgym.agents.policy_io import load_policy

    policy = load_policy(path)
    env = policy.env
    names = _joint_names(env)
    if "rooty" not in names or "rootx" not in names:
        raise SystemExit(f"{path}: robot {env.robot!r} has no rootx/rooty joints (halfcheetah, hopper, walker2d do)")
    ix, iy = names.index("rootx"), names.index("rooty")
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    horizon = env.episode_length or 1000
    rows = []
    for k in range(episodes):
        state = reset(jax.random.PRNGKey(1000 + k))
        x0 = float(state.inner.pipeline_state.q[ix])
        total, pitch = 0.0, []
        for _ in range(horizon):
            state = step(state, np.asarray(policy.act(np.asarray(state.obs)), np.float32))
            total += float(state.reward)
            pitch.append(float(state.inner.pipeline_state.q[iy]))
            if bool(state.terminated) or bool(state.truncated):
                break
        p = np.asarray(pitch)
        rows.append({"return": total, "speed": (float(state.inner.pipeline_state.q[ix]) - x0) / (len(p) * env.dt),
                     "pitch_mean": float(p.mean()), "upside_down": float(np.mean(np.abs(p) > math.pi / 2))})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return {"checkpoint": str(policy.path), "seed": policy.seed, "env_steps": policy.header.get("env_steps"),
            "episodes": rows, **mean}


def _joint_names(env) -> list[str]:
    import mujoco

    m = env.brax_env.sys.mj_model
    return [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(m.njnt)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1, got {a.episodes}")
    rows = [measure(c, a.episodes) for c in a.checkpoints]
    print("| checkpoint | seed | env steps | return | speed (m/s) | mean pitch (rad) | upside down |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['checkpoint']} | {r['seed']} | {r['env_steps']:,} | {r['return']:,.0f} | {r['speed']:.2f} | "
              f"{r['pitch_mean']:+.2f} | {r['upside_down']:.0%} |")
    if a.out:
        from gradgym.fileio import atomic_write

        atomic_write(a.out, (json.dumps(rows, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
