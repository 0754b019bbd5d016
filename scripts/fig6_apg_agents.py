"""Fig. 6 of Metz et al. 2021 through the APG agent: Ant learning curves and distance walked per truncation t.

Every run is ``gradgym train --agent apg --env ant`` on the real task (1000-step
episodes, the agent's Ant defaults otherwise) with a ``--window``-step window
(160 by default) truncated every t steps: t in {1, 4, 10, 32, 160}, 160 being
full backprop through the window. Each run trains ``--budget`` env steps; its
learning curve (the trainer's deterministic evaluations) goes to
``<out>/runs/apg-ant-t<t>.json`` and its checkpoints to ``<out>/runs/ckpt-t<t>/`` (a killed
sweep resumes where it stopped). The final policy is then rolled out
deterministically on the run's own evaluation episodes and the distance its
torso moved along x is measured (the paper's "learns a gait" vs "a lunge").
Writes ``<out>/fig6_agents.json`` and ``<out>/fig6_agents.png`` and prints a
markdown table::

    python scripts/fig6_apg_agents.py [--budget 1000000] [--truncations 1,4,10,32,160] [--window 160] \\
        [--envs 16] [--lr 3e-3] [--seed 0] [--out runs/fig6_agents]
    python scripts/fig6_apg_agents.py --table docs/fig6_agents.json   # print a stored table

About 8-10 min per run on 2 idle cores at the default budget; ``--quick`` is a smoke test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents import train
from gradgym.agents.base import eval_keys, policy_net
from gradgym.agents.normalize import normalize
from gradgym.agents.plots import plot_run
from gradgym.agents.policy_io import LoadedPolicy, load_policy
from gradgym.diagnostics.plots import _plt, save_figure
from gradgym.diagnostics.scripting import comma_list
from gradgym.envs import make
from gradgym.fileio import atomic_write

ROBOT = "ant"


def walk(policy: LoadedPolicy, keys: jax.Array) -> dict[str, np.ndarray]:
    """Per episode (one per key), under the deterministic policy: the distance along x the torso moved,
    the return and the length, all from the same rollout.

    The episodes are the evaluator's (same reset key split, same episode limit),
    but this is another compiled program, and on chaotic dynamics its rounding can
    send an episode elsewhere: hence the return of this very rollout. The state
    is frozen once the episode ends (the ant fell over), so a fall keeps the
    distance covered until then.
    """
    env = policy.env
    _, policy_fn = policy_net(env.action_size, tuple(policy.config.hidden), policy.config.activation)

    def one(key):
        k_reset, _ = jax.random.split(key)
        s0 = env.reset(k_reset)

        def body(carry, _):
            state, alive = carry
            nxt = env.step(state, policy_fn(policy.params, normalize(policy.stats, state.obs), None))
            reward = jnp.where(alive, nxt.reward, 0.0)
            nxt = jax.tree.map(lambda a, b: jnp.where(alive, a, b), nxt, state)
            return (nxt, alive & ~nxt.done.astype(bool)), (reward, alive)

        (final, _), (rewards, alive) = jax.lax.scan(body, (s0, jnp.asarray(True)), None, policy.horizon)
        return final.metrics["x_position"] - s0.metrics["x_position"], jnp.sum(rewards), jnp.sum(alive)

    d, r, n = jax.jit(jax.vmap(one))(keys)
    return {"distance": np.asarray(d, np.float64), "return": np.asarray(r, np.float64), "length": np.asarray(n)}


def run_one(t: int, args: argparse.Namespace) -> dict:
    """Trains (or resumes, or reuses) the run of truncation ``t``; its curve, summary metrics and distances."""
    out_json = args.out / "runs" / f"apg-{ROBOT}-t{t}.json"
    ckpt = args.out / "runs" / f"ckpt-t{t}"
    if out_json.exists():
        summary = json.loads(out_json.read_text())
    else:
        cfg = {"horizon": args.window, "truncation": t, "num_envs": args.envs, "learning_rate": args.lr,
               "total_steps": args.budget, "num_evals": args.evals}
        env = make(ROBOT, episode_length=args.episode_length)
        print(f"[fig6-agents] t={t}: training {args.budget:,} env steps", flush=True)
        summary = train("apg", env, cfg, args.seed, checkpoint_dir=str(ckpt), resume=True,
                        progress=not args.quiet).summary()
        atomic_write(out_json, json.dumps(summary, indent=1).encode())
        plot_run(summary, out_json.with_suffix(".png"))
    policy = load_policy(ckpt)
    w = walk(policy, eval_keys(policy.seed, policy.config.eval_episodes))
    d = w["distance"]
    m = summary["metrics"]
    return {"truncation": t, "curve": summary["curve"], "config": summary["config"],
            "initial_return": m["initial_return"], "final_return": m["final_return"],
            "best_return": m["best_return"], "grad_norm_median": m.get("grad_norm_median"),
            "grad_norm_max": m.get("grad_norm_max"), "skipped_updates": m["skipped_updates"],
            "steps_per_s": m["steps_per_s"], "distance_mean": float(d.mean()), "distance_std": float(d.std()),
            "distances": d.tolist(),
            "walk_returns": w["return"].tolist(), "walk_lengths": w["length"].tolist()}


def table(res: dict) -> str:
    lines = ["| t | initial return | final return | best return | distance walked (m, mean ± std) | "
             "return of those episodes | median / max gradient norm | skipped updates | env steps/s |",
             "|---:|---:|---:|---:|---|---:|---|---:|---:|"]
    for r in res["runs"]:
        g, gmax = r["grad_norm_median"], r["grad_norm_max"]
        norms = "-" if g is None else f"{g:.3g} / {gmax:.3g}"
        lines.append(f"| {r['truncation']} | {r['initial_return']:,.0f} | {r['final_return']:,.0f} | "
                     f"{r['best_return']:,.0f} | {r['distance_mean']:+.2f} ± {r['distance_std']:.2f} | "
                     f"{np.mean(r['walk_returns']):,.0f} | {norms} | {r['skipped_updates']:.0f} | "
                     f"{r['steps_per_s']:,.0f} |")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    ts = [r["truncation"] for r in res["runs"]]
    for r in res["runs"]:
        c = r["curve"]
        axes[0].plot(np.asarray(c["env_steps"]) / 1e6, c["returns"], "o-", ms=3, lw=1.2, label=f"t={r['truncation']}")
    axes[0].set(title=f"APG on {ROBOT}, {res['window']}-step windows", xlabel="env steps (millions)",
                ylabel="evaluation return")
    axes[1].plot(ts, [r["final_return"] for r in res["runs"]], "o-", label="final")
    axes[1].plot(ts, [r["best_return"] for r in res["runs"]], "s--", label="best")
    axes[1].plot(ts, [r["initial_return"] for r in res["runs"]], "k:", lw=0.8, label="initial")
    axes[1].set(xscale="log", title="return vs truncation t", xlabel="truncation length t")
    axes[2].errorbar(ts, [r["distance_mean"] for r in res["runs"]], yerr=[r["distance_std"] for r in res["runs"]],
                     fmt="o-", color="tab:red", capsize=3)
    axes[2].axhline(0.0, color="k", lw=0.6)
    axes[2].set(xscale="log", title="distance walked by the final policy", xlabel="truncation length t",
                ylabel="x distance per episode (m)")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=1_000_000, help="env steps per run")
    p.add_argument("--truncations", default="1,4,10,32,160", help="comma-separated t values (each divides --window)")
    p.add_argument("--window", type=int, default=160, help="APG window (steps differentiated per update)")
    p.add_argument("--envs", type=int, default=16, help="robots per update")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (the paper's 3e-3)")
    p.add_argument("--evals", type=int, default=10, help="evaluation points per run")
    p.add_argument("--episode-length", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs") / "fig6_agents")
    p.add_argument("--quick", action="store_true", help="smoke test: one t, 8-step window, 2 envs, 64 env steps")
    p.add_argument("--quiet", action="store_true", help="no training progress lines")
    p.add_argument("--table", type=Path, default=None, help="print the table of a stored fig6_agents.json and exit")
    args = p.parse_args(argv)
    if args.table is not None:
        print(table(json.loads(args.table.read_text())))
        return 0
    if args.quick:
        args.budget, args.truncations, args.window, args.envs, args.evals, args.episode_length = 64, "4", 8, 2, 1, 16
    ts = comma_list(args.truncations, int, "--truncations")
    bad = [t for t in ts if t < 1 or args.window % t]
    if bad:
        raise SystemExit(f"--truncations {bad} must be positive divisors of --window {args.window}")
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    runs = sorted((run_one(t, args) for t in ts), key=lambda r: r["truncation"])
    res = {"robot": ROBOT, "window": args.window, "num_envs": args.envs, "learning_rate": args.lr,
           "budget": args.budget, "episode_length": args.episode_length, "seed": args.seed,
           "date": datetime.date.today().isoformat(), "backend": jax.default_backend(), "quick": args.quick,
           "runs": runs}
    atomic_write(args.out / "fig6_agents.json", json.dumps(res, indent=1).encode())
    plot(res, args.out / "fig6_agents.png")
    print(table(res))
    print(f"wrote {args.out / 'fig6_agents.json'} and {args.out / 'fig6_agents.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
