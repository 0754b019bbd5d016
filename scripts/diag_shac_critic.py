"""How wrong is the critic SHAC bootstraps from, and where does it point the actor? (halfcheetah)

Trains SHAC with its halfcheetah defaults (the 2M-step learning-rate schedule)
and, at each mark, measures on 32 fresh 1000-step episodes of the current
stochastic policy:

- the target critic V'(s_t) against the Monte-Carlo discounted return-to-go
  G_t (t < 500, so the cut-off tail is < 0.7% of G): RMSE, relative error,
  explained variance;
- the share of the window objective that is reward (the rest is gamma^H V');
- the actor gradient split into its reward part (the same loss with a zero
  critic) and its bootstrap part (the rest): norms and cosines.

and the return of those episodes (undiscounted, 1000 steps). ``--config``
overrides SHAC fields (JSON), e.g. the critic recipe of AHAC/SAPO:
``'{"critic_ensemble": 3, "critic_layernorm": true, "target_network": false, "critic_early_stop": true}'``.

Writes ``<out>/critic_error.json``. About 15 min on one core at the default marks::

    python scripts/diag_shac_critic.py [--seed 0] [--marks 100000,300000,600000] [--config JSON] [--out runs/diag_shac_critic]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents import get_agent
from gradgym.agents.normalize import normalize
from gradgym.agents.shac import Shac, td_lambda_targets
from gradgym.agents.trainer import resolve_env
from gradgym.fileio import atomic_write

NUM_ENVS, EPISODE, PREFIX = 32, 1000, 500


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--marks", default="100000,300000,600000", help="env steps at which to measure")
    p.add_argument("--config", default="{}", help="SHAC config overrides as JSON (the 2M-step schedule stays)")
    p.add_argument("--out", default="runs/diag_shac_critic")
    args = p.parse_args()
    marks = [int(m) for m in args.marks.split(",")]
    overrides = json.loads(args.config)

    cfg = get_agent("shac").default_config("halfcheetah", {"total_steps": 2_000_000, **overrides})
    env = resolve_env("halfcheetah")
    agent = Shac(env, cfg)
    gamma = cfg.gamma

    @jax.jit
    def rollout(actor, critic, stats, key):
        s0 = jax.vmap(env.reset)(jax.random.split(key, NUM_ENVS))

        def one(s, k):
            obs_n = normalize(stats, s.obs)
            a = jax.vmap(agent._policy_fn, in_axes=(None, 0, 0))(actor, obs_n, jax.random.split(k, NUM_ENVS))
            nxt = jax.vmap(env.step)(s, a)
            return nxt, (agent.v(critic, obs_n), nxt.reward)

        return jax.lax.scan(one, s0, jax.random.split(jax.random.fold_in(key, 1), EPISODE))[1]

    @jax.jit
    def gradient_parts(actor, critic, stats, env_state, key):
        zero = jax.tree.map(jnp.zeros_like, critic)  # v = 0: the window's discounted reward alone

        def losses(actor):
            full = agent.actor_loss(actor, critic, stats, env_state, key)[0]
            reward = agent.actor_loss(actor, zero, stats, env_state, key)[0]
            return jnp.stack([full, reward])

        jac = jax.jacrev(losses)(actor)
        return jnp.stack([jnp.concatenate([x[i].ravel() for x in jax.tree.leaves(jac)]) for i in range(2)])

    ts = agent.init(jax.random.PRNGKey(args.seed))
    rows, steps, t0, passes = [], 0, time.time(), []
    for mark in marks:
        while steps < mark:
            ts, metrics = agent.iterate(ts)
            steps += agent.steps_per_iter
            if "critic_passes" in metrics:
                passes.append(int(metrics["critic_passes"]))
        v, r = (np.asarray(x, np.float64) for x in rollout(ts.actor, ts.target, ts.stats,
                                                           jax.random.PRNGKey(1000 + args.seed)))
        # Monte-Carlo return-to-go: TD(lambda) with lambda = 1, no bootstrap, one segment per episode.
        ends = np.zeros_like(r)
        ends[-1] = 1.0
        ret = np.asarray(td_lambda_targets(r, np.zeros_like(r), ends, gamma, 1.0), np.float64)
        V, G = v[:PREFIX].ravel(), ret[:PREFIX].ravel()
        jac = np.asarray(gradient_parts(ts.actor, ts.target, ts.stats, ts.env_state, jax.random.PRNGKey(5)),
                         np.float64)
        full, reward = jac
        boot = full - reward
        cos = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))  # noqa: E731
        disc = (gamma ** np.arange(cfg.horizon)).sum() * r.mean()
        row = {
            "env_steps": steps, "wall_s": time.time() - t0, "mean_reward_per_step": float(r.mean()),
            "episode_return_mean": float(r.sum(0).mean()),
            "mc_return_mean": float(G.mean()), "mc_return_std": float(G.std()), "critic_mean": float(V.mean()),
            "critic_rmse": float(np.sqrt(np.mean((V - G) ** 2))),
            "rel_abs_error": float(np.mean(np.abs(V - G)) / np.mean(np.abs(G))),
            "explained_variance": float(1 - np.var(G - V) / np.var(G)),
            "reward_share_of_objective": float(disc / (disc + gamma ** cfg.horizon * V.mean())),
            "grad_norm_reward_part": float(np.linalg.norm(reward)), "grad_norm_bootstrap_part": float(np.linalg.norm(boot)),
            "cos_reward_bootstrap": cos(reward, boot), "cos_reward_full": cos(reward, full),
        }
        if passes:  # critic_early_stop: passes per iteration since the previous mark
            row["critic_passes_mean"] = float(np.mean(passes))
            passes = []
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "critic_error.json", json.dumps({"seed": args.seed, "config": overrides, "rows": rows}, indent=1).encode())


if __name__ == "__main__":
    main()
