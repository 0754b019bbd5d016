"""Ant: which reward term does APG's window gradient follow? (initial policy, float32, spring)

For 64 envs (8 groups of 8) and an H-step window (APG's loss: tanh-Gaussian
policy with reparameterised noise, autoreset), the gradient of each reward term
(forward, survive, ctrl, contact, total; mean per step) with respect to the
policy parameters: its norm, its signal-to-noise ratio (norm of the mean over
groups / norm of the standard error) and its cosine with the total's gradient.
Measured at reset and after 100 steps of the same policy (the state a training
run lives in), plus the change of each term after a step of length eps along
the total's normalised gradient (same keys). Writes ``<out>/ant_terms_H<H>.json``.

The vmapped Jacobian compiles slowly on a CPU (about 30 min on one shared core)::

    python scripts/diag_ant_reward_terms.py [--horizon 10] [--out runs/diag_ant_terms]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.normalize import normalize
from gradgym.envs import make
from gradgym.fileio import atomic_write

GROUPS, PER_GROUP = 8, 8
TERMS = ["reward_forward", "reward_survive", "reward_ctrl", "reward_contact"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--horizon", type=int, default=10)
    p.add_argument("--out", default="runs/diag_ant_terms")
    args = p.parse_args()
    H, n = args.horizon, PER_GROUP
    env = make("ant", episode_length=1000)
    agent = Apg(env, ApgConfig(num_envs=n, horizon=H, total_steps=1))
    ts = agent.init(jax.random.PRNGKey(0))
    params, stats, pol = ts.params, ts.stats, agent._policy_fn

    def window(params, state, key):  # state batched over n envs
        step = jax.vmap(env.autoreset_step)

        def one(s, k):
            a = jax.vmap(pol, in_axes=(None, 0, 0))(params, normalize(stats, s.obs), jax.random.split(k, n))
            nxt, fin = step(s, a)
            return nxt, jnp.stack([fin.metrics[t] for t in TERMS] + [fin.reward])

        s, r = jax.lax.scan(one, state, jax.random.split(key, H))
        return r.mean(axis=(0, 2)), s  # per-term mean reward per step

    jac = jax.jit(jax.vmap(lambda p, s, k: jax.jacrev(lambda p: window(p, s, k)[0])(p), in_axes=(None, 0, 0)))
    fwd = jax.jit(jax.vmap(window, in_axes=(None, 0, 0)))

    def flat(tree):
        return jnp.concatenate([x.reshape(x.shape[0], x.shape[1], -1) for x in jax.tree.leaves(tree)], -1)

    state = jax.jit(jax.vmap(jax.vmap(env.reset)))(jax.random.split(jax.random.PRNGKey(1), (GROUPS, n)))
    out = {"horizon": H}
    for phase in ["reset", "after_100_steps"]:
        if phase == "after_100_steps":
            for i in range(100 // H):
                _, state = fwd(params, state, jax.random.split(jax.random.PRNGKey(100 + i), GROUPS))
        keys = jax.random.split(jax.random.PRNGKey(7), GROUPS)
        t0 = time.time()
        J = np.asarray(flat(jac(params, state, keys)), np.float64)  # (groups, terms + total, params)
        vals = np.asarray(fwd(params, state, keys)[0])
        mean, sem = J.mean(0), J.std(0) / np.sqrt(GROUPS)
        total = mean[-1]
        res = {}
        for i, t in enumerate([*TERMS, "total"]):
            norm = float(np.linalg.norm(mean[i]))
            res[t] = {
                "value_per_step": float(vals[:, i].mean()), "grad_norm": norm,
                "snr": norm / float(np.linalg.norm(sem[i])) if norm > 0 else 0.0,
                "cos_with_total": float(mean[i] @ total / (norm * np.linalg.norm(total) + 1e-30)),
            }
        g = jax.jacrev(lambda p: fwd(p, state, keys)[0].mean(0)[-1])(params)  # noqa: B023
        gn = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))
        res["step_along_total_grad"] = {}
        for eps in [1e-3, 1e-2, 1e-1]:
            moved = np.asarray(fwd(jax.tree.map(lambda a, b: a + eps * b / gn, params, g), state, keys)[0]).mean(0)  # noqa: B023
            res["step_along_total_grad"][str(eps)] = {
                t: float(moved[i] - vals.mean(0)[i]) for i, t in enumerate([*TERMS, "total"])}
        res["seconds"] = time.time() - t0
        out[phase] = res
        print(phase, json.dumps(res, indent=1), flush=True)
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / f"ant_terms_H{H}.json", json.dumps(out, indent=1).encode())


if __name__ == "__main__":
    main()
