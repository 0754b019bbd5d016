"""Scale-out over devices (``gradgym.sharding``): same curves on 4 devices as on 1.

XLA fixes the number of CPU devices when JAX starts, so the 4-device checks run
in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(``JAX_PLATFORMS=cpu``) that trains each JAX agent with ``devices=4`` and
``devices=1`` and prints the results as JSON; the Gymnasium and SB3 vector shells
are stepped with ``devices=4`` and without.

What is compared: the learning curves must be bit-identical (on the pendulum a
return counts upright steps, so tiny float differences cannot move it); the
final policy parameters must agree to ``rtol=1e-5, atol=1e-6``, because a
cross-device all-reduce sums the batch in a different order than one device
does, so the last bits may differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import pytest

from gradgym import sharding

RTOL, ATOL = 1e-5, 1e-6

CHILD = r"""
import dataclasses, json, sys
import jax, numpy as np
from gradgym import sharding
from gradgym.agents import get_agent, train
from gradgym.agents.trainer import build_agent
from gradgym.envs import make

RTOL, ATOL, names = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")
env = make("inverted_pendulum", episode_length=50)
common = {"total_steps": 2, "num_evals": 2, "eval_episodes": 4, "eval_horizon": 20, "hidden": (16,)}
agents = {
    "ppo": ("num_envs", {"num_envs": 8, "rollout_steps": 8, "epochs": 1, "minibatches": 2}),
    "apg": ("num_envs", {"num_envs": 8, "horizon": 8}),
    "es": ("population_size", {"population_size": 8, "horizon": 20}),
}
out = {"devices": len(jax.devices()), "platform": jax.devices()[0].platform}
for name in [n for n in names if n in agents]:
    field, over = agents[name]
    cfg = {**common, **over}
    spi = {"ppo": 64, "apg": 64, "es": 160}[name]
    cfg["total_steps"] = 2 * spi  # two iterations, an evaluation after each
    r4 = train(name, env, cfg, seed=0, progress=False, devices=4)
    r1 = train(name, env, cfg, seed=0, progress=False, devices=1)
    close = all(np.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in
                zip(jax.tree.leaves(r4.params), jax.tree.leaves(r1.params), strict=True))
    # The layout the trainer used: its cached agent and sharded step, one more iteration.
    full = get_agent(name).default_config(env.robot, cfg)
    agent = build_agent(name, env, dataclasses.replace(full, total_steps=1, num_evals=1, eval_episodes=1))
    mesh = sharding.make_mesh(4)
    step = sharding.sharded_iterate(agent, mesh, getattr(full, field))
    ts = sharding.place_state(agent.init(jax.random.PRNGKey(0)), mesh, getattr(full, field), field)
    with sharding.mesh_context(mesh):
        ts, _ = step(ts)
    layout = [[len(x.sharding.device_set), sorted({s.data.shape[0] for s in x.addressable_shards}),
               len(x.addressable_shards)] for x in jax.tree.leaves(ts.env_state)]
    params = [len(x.sharding.device_set) for x in jax.tree.leaves(agent.policy_params(ts))]
    out[name] = {"curve4": r4.curve.returns, "curve1": r1.curve.returns, "steps4": r4.curve.env_steps,
                 "params_close": bool(close), "cache_size": step._cache_size(), "env_layout": layout,
                 "params_devices": params}
    bad = dict(cfg, **{field: 6})
    try:
        train(name, env, bad, seed=0, progress=False, devices=4)
        out[name]["indivisible"] = None
    except ValueError as e:
        out[name]["indivisible"] = str(e)

if "vector" in names:  # the Gymnasium and SB3 vector shells, same seeds and actions, with autoresets
    from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv
    from gradgym.envs.vector_env import GradGymVectorEnv, batched

    runs, layout = {}, None
    for d in (4, None):
        venv = GradGymVectorEnv("inverted_pendulum", num_envs=8, max_episode_steps=15, autoreset_mode="SameStep",
                                devices=d)
        sb3 = GradGymSB3VecEnv("inverted_pendulum", num_envs=8, max_episode_steps=15, devices=d)
        obs, _ = venv.reset(seed=0)
        sb3.seed(0)
        rows, rng = [obs, sb3.reset()], np.random.default_rng(0)
        for _ in range(20):
            a = rng.uniform(-1, 1, (8, 1)).astype(np.float32)
            obs, rew, term, trunc, _ = venv.step(a)
            o2, r2, d2, _ = sb3.step(a)
            rows += [obs, rew[:, None], (term | trunc)[:, None], o2, r2[:, None], d2[:, None]]
        runs[d] = np.concatenate([np.asarray(r, np.float64) for r in rows], axis=1)
        if d == 4:
            layout = [[len(x.sharding.device_set), sorted({s.data.shape[0] for s in x.addressable_shards})]
                      for x in jax.tree.leaves(venv._state) + jax.tree.leaves(sb3._state)]
            cache = batched(venv.core).step._cache_size()
    try:
        GradGymVectorEnv("inverted_pendulum", num_envs=6, devices=4)
        bad = None
    except ValueError as e:
        bad = str(e)
    out["vector"] = {"same": bool(np.array_equal(runs[4], runs[None])), "layout": layout, "cache_size": cache,
                     "indivisible": bad}

with sharding.mesh_context(sharding.make_mesh(4)):  # the constraint es puts on its population
    y = jax.jit(lambda x: sharding.constrain_batch(x) + 1.0)(np.zeros((8, 3), np.float32))
out["constrained"] = [len(y.sharding.device_set), y.addressable_shards[0].data.shape[0]]
print("RESULT " + json.dumps(out))
"""


# Compile time dominates; XLA's cheaper CPU code generation halves it and applies to both
# device counts alike, so the comparison stays fair.
XLA_FLAGS = ("--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0 "
             "--xla_llvm_disable_expensive_passes=true")


@pytest.fixture(scope="module")
def four_devices() -> dict:
    """Runs the child twice in parallel (ppo+es, apg: about equal compile work); merges their JSON."""
    env = {**os.environ, "XLA_FLAGS": XLA_FLAGS, "JAX_PLATFORMS": "cpu", "GRADGYM_JAX_CACHE": "off"}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(RTOL), str(ATOL), names], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for names in ("ppo,es", "apg,vector")]
    merged: dict = {}
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=900)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, f"child failed ({proc.returncode}):\n{stdout[-3000:]}\n{stderr[-5000:]}"
        merged.update(json.loads(lines[-1][len("RESULT "):]))
    return merged


@pytest.mark.parametrize("agent", ["ppo", "apg", "es"])
def test_four_devices_same_curve_as_one(four_devices, agent):
    assert four_devices["devices"] == 4
    r = four_devices[agent]
    assert len(r["curve4"]) == 3 and r["steps4"][-1] > 0
    assert r["curve4"] == r["curve1"], "learning curves must be bit-identical on 4 devices and on 1"
    assert r["params_close"], f"final parameters differ beyond rtol={RTOL}, atol={ATOL}"


@pytest.mark.parametrize("agent", ["ppo", "apg", "es"])
def test_state_is_laid_out_over_devices_and_compiles_once(four_devices, agent):
    r = four_devices[agent]
    assert r["cache_size"] == 1, "the sharded step recompiled: its output shardings differ from its input's"
    for n_devices, shard_rows, n_shards in r["env_layout"]:  # es (OpenAI-ES) carries no env state
        assert (n_devices, shard_rows, n_shards) == (4, [8 // 4], 4)
    assert all(n == 4 for n in r["params_devices"])  # replicated


@pytest.mark.parametrize("agent,field", [("ppo", "num_envs"), ("apg", "num_envs"), ("es", "population_size")])
def test_indivisible_batch_names_field_and_devices(four_devices, agent, field):
    msg = four_devices[agent]["indivisible"]
    assert msg is not None and f"{field} (6)" in msg and "(4)" in msg and "multiple of 4" in msg


def test_constrain_batch_splits_the_population(four_devices):
    assert four_devices["constrained"] == [4, 2]


def test_constrain_batch_is_a_no_op_without_a_mesh():
    x = jax.numpy.ones((4, 2))
    assert jax.jit(sharding.constrain_batch)(x).sharding.device_set == x.sharding.device_set


@pytest.mark.parametrize("bad", [0, -1, 10_000, "two", True, 1.5])
def test_bad_devices_value_error(bad):
    with pytest.raises(ValueError, match="devices"):
        sharding.resolve_devices(bad)


def test_too_many_devices_names_value_and_count():
    n = len(jax.devices())
    with pytest.raises(ValueError, match=rf"devices={n + 1} .*{n} .*device"):
        sharding.resolve_devices(n + 1)


def test_all_devices_by_default():
    assert sharding.resolve_devices(None) == jax.devices() == sharding.resolve_devices("all")
    assert sharding.make_mesh(1).axis_names == (sharding.AXIS,)


def test_train_rejects_bad_devices_before_compiling():
    from gradgym.agents import train

    with pytest.raises(ValueError, match="devices"):
        train("ppo", "inverted_pendulum", devices=0)


def test_vector_shells_split_the_batch_and_match_one_device(four_devices):
    """``GradGymVectorEnv`` / ``GradGymSB3VecEnv`` with ``devices=4``: bit-identical to one device."""
    r = four_devices["vector"]
    assert r["same"], "observations, rewards and dones must be bit-identical on 4 devices and on 1"
    assert r["layout"] and all(lay == [4, [2]] for lay in r["layout"])
    assert r["cache_size"] == 1
    assert "num_envs (6)" in r["indivisible"] and "(4)" in r["indivisible"]


def test_cli_devices_option():
    import argparse

    from gradgym.agents.cli import _devices

    assert _devices("all") is None and _devices("3") == 3
    for bad in ("0", "-2", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="--devices"):
            _devices(bad)


def test_compare_rejects_bad_devices(tmp_path):
    from gradgym.agents.report import compare

    with pytest.raises(ValueError, match="devices"):
        compare("inverted_pendulum", ["ppo"], 1, 100, tmp_path, devices=len(jax.devices()) + 1)
