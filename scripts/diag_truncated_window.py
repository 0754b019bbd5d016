"""Is a long window truncated every t steps the same as t-step windows? (APG, halfcheetah, spring)

APG's loss over an H-step window with ``truncation`` t stops the gradient on
the state every t steps. This script checks what that buys: the truncated
gradient against the mean of the gradients of the H/t consecutive t-step
chunks, each differentiated on its own from the state the previous chunk left
(same parameters, same keys), and how alike the chunks' gradients are (their
cosines with the mean). If the chunks agree closely, an H-step window truncated
at t carries about one t-step window's information at H/t times the env steps
per update. Measured at the initial policy (seed 0) and, with ``--warmup``, after
that many steps of the same policy. Writes ``<out>/truncated_window.json``::

    python scripts/diag_truncated_window.py [--horizon 32 --truncation 4 --num-envs 32] [--out runs/diag_trunc]

About 3 min on one core (two compiles).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradgym.agents.apg import Apg, ApgConfig
from gradgym.agents.normalize import normalize
from gradgym.envs import make
from gradgym.fileio import atomic_write


def flat(tree) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="halfcheetah")
    p.add_argument("--horizon", type=int, default=32)
    p.add_argument("--truncation", type=int, default=4)
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--warmup", type=int, default=0, help="policy steps before measuring")
    p.add_argument("--out", default="runs/diag_trunc")
    args = p.parse_args(argv)
    H, t, n = args.horizon, args.truncation, args.num_envs
    if H % t:
        raise SystemExit(f"--truncation ({t}) must divide --horizon ({H}).")
    env = make(args.env, episode_length=1000)
    agent = Apg(env, ApgConfig(num_envs=n, horizon=H, truncation=t, total_steps=1))
    ts = agent.init(jax.random.PRNGKey(0))
    params, stats, pol = ts.params, ts.stats, agent._policy_fn
    state = ts.env_state
    for i in range(args.warmup // H):  # run the same policy on (the truncated window's forward pass)
        _, _, (state, _) = agent.window_grad(params, stats, state, jax.random.PRNGKey(100 + i))

    key = jax.random.PRNGKey(3)
    loss_h, g_h, _ = agent.window_grad(params, stats, state, key)
    chunk_keys = jax.random.split(key, H).reshape(H // t, t, *key.shape)  # the keys APG's loss uses

    def chunk_loss(params, s, keys):  # a t-step window of APG's loss, no truncation inside
        def one(s, k):
            a = jax.vmap(pol, in_axes=(None, 0, 0))(params, normalize(stats, s.obs), jax.random.split(k, n))
            nxt, fin = jax.vmap(env.autoreset_step)(s, a)
            return nxt, fin.reward

        s, r = jax.lax.scan(one, s, keys)
        return -jnp.mean(r), s

    chunk_grad = jax.jit(jax.value_and_grad(chunk_loss, has_aux=True))
    grads, losses = [], []
    for keys in chunk_keys:
        (loss, state), g = chunk_grad(params, state, keys)
        grads.append(flat(g))
        losses.append(float(loss))
    mean, full = np.mean(grads, axis=0), flat(g_h)
    cos = [float(g @ mean / (np.linalg.norm(g) * np.linalg.norm(mean))) for g in grads]
    pair = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(grads[:-1], grads[1:], strict=True)]
    out = {
        "env": args.env, "horizon": H, "truncation": t, "num_envs": n, "warmup": args.warmup,
        "loss_truncated": float(loss_h), "loss_mean_of_chunks": float(np.mean(losses)),
        "grad_norm_truncated": float(np.linalg.norm(full)), "grad_norm_mean_of_chunks": float(np.linalg.norm(mean)),
        "relative_difference": float(np.linalg.norm(full - mean) / np.linalg.norm(mean)),
        "chunk_grad_norms": [float(np.linalg.norm(g)) for g in grads],
        "cos_chunk_vs_mean": cos, "cos_consecutive_chunks": pair,
    }
    path = Path(args.out) / "truncated_window.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(out, indent=1).encode())
    print(f"|g_trunc - mean(g_chunks)| / |mean| = {out['relative_difference']:.2e}; "
          f"chunk norms {np.round(out['chunk_grad_norms'], 3).tolist()}; "
          f"cos(chunk, mean) {np.round(cos, 3).tolist()}; cos(consecutive) {np.round(pair, 3).tolist()} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
