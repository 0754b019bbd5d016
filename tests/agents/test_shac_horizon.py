"""SHAC's adaptive horizon: the controller's rule, one program for every window, learning, checkpoints, configs."""

import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradgym.agents import get_agent, train
from gradgym.agents.checkpoint import read_header
from gradgym.agents.horizon import (
    MAX_LOG_RATIO,
    NONFINITE_FACTOR,
    horizon_levels,
    level_of,
    mean_log_norm,
    next_log2_horizon,
)
from gradgym.agents.shac import AdaptiveShacState, Shac, ShacConfig, with_rate
from tests.agents.conftest import assert_same_as_plain_loop

# The learning, loop and checkpoint tests share this run's compiled program (two levels: 8- and 16-step windows).
ADAPT_CFG = {"num_envs": 16, "horizon": 8, "horizon_max": 16, "adaptive_horizon": True, "total_steps": 20_480,
             "eval_episodes": 8, "num_evals": 4}
TINY = {"num_envs": 2, "horizon": 2, "horizon_max": 4, "adaptive_horizon": True, "critic_minibatches": 2,
        "critic_iterations": 2, "hidden": (8,), "value_hidden": (8,), "lr_schedule": "constant",
        "horizon_grad_limit": 1e9}


def test_levels_are_powers_of_two_multiples():
    assert horizon_levels(4, 32) == (4, 8, 16, 32)
    assert horizon_levels(3, 3) == (3,)
    x = jnp.log2(jnp.asarray([4.0, 5.6, 5.7, 8.0, 11.0, 12.0, 64.0, 1.0]))
    # rounds in log2 units: 5.6 < 4 * sqrt(2) = 5.66 < 5.7
    assert list(np.asarray(level_of(x, 4, 4))) == [0, 0, 1, 1, 1, 2, 3, 0]


@pytest.mark.parametrize("norms,limit,want", [
    ([1.0, 1.0], 10.0, math.log(10.0)),          # below the limit: grows by lr * log(C / ||g||)
    ([100.0, 1000.0], 10.0, -math.log(10.0) * 1.5),   # the mean of the logs, not the log of the mean
    ([1e-12], 10.0, MAX_LOG_RATIO),              # a step is at most MAX_LOG_RATIO
    ([float("nan"), 10.0], 10.0, -math.log(NONFINITE_FACTOR) / 2),  # a non-finite norm counts as C * 1e6
])
def test_horizon_step_is_the_dual_rule(norms, limit, want):
    g = mean_log_norm(jnp.asarray(norms, jnp.float32), limit)
    x = next_log2_horizon(jnp.asarray(3.0), g, limit=limit, lr=0.25, h_min=2, h_max=1024)
    np.testing.assert_allclose(float(x), 3.0 + 0.25 * np.clip(want, -MAX_LOG_RATIO, MAX_LOG_RATIO), rtol=1e-5)


def test_horizon_stays_between_its_bounds():
    up = next_log2_horizon(jnp.asarray(5.0), jnp.asarray(-50.0), limit=10.0, lr=10.0, h_min=4, h_max=32)
    down = next_log2_horizon(jnp.asarray(3.0), jnp.asarray(50.0), limit=10.0, lr=10.0, h_min=4, h_max=32)
    assert float(up) == 5.0 and float(down) == 2.0


def test_rate_follows_the_linear_schedule_per_env_step():
    """The adaptive window sets the rate from the iterations done, fractional inside one (an iteration is a
    fixed number of env steps): optax's linear schedule at every count, interpolated in between."""
    import optax

    from gradgym.agents.base import make_optimizer, scheduled_lr

    opt = optax.inject_hyperparams(lambda learning_rate: make_optimizer(learning_rate, 1.0))(learning_rate=2e-3)
    state = opt.init({"w": jnp.zeros(3)})
    sched = optax.linear_schedule(2e-3, 1e-5, 100)
    rate = scheduled_lr(2e-3, "linear", 100)
    for c in (0, 10, 55, 100, 130):
        np.testing.assert_allclose(float(with_rate(state, rate, jnp.asarray(float(c))).hyperparams["learning_rate"]),
                                   float(sched(c)), rtol=1e-6)
    half = float(with_rate(state, rate, jnp.asarray(10.5)).hyperparams["learning_rate"])
    np.testing.assert_allclose(half, (float(sched(10)) + float(sched(11))) / 2, rtol=1e-6)
    const = with_rate(state, scheduled_lr(2e-3, "constant", 100), jnp.asarray(70.0)).hyperparams["learning_rate"]
    assert float(const) == pytest.approx(2e-3) and const.dtype == jnp.float32


def _params_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


@pytest.fixture(scope="module")
def tiny(pend):
    """A tiny adaptive agent on the pendulum whose limit every gradient meets (the window grows each iteration)."""
    agent = Shac(pend, ShacConfig(**TINY))
    assert agent.horizons == (2, 4) and agent.steps_per_iter == 2 * 4
    return agent


@pytest.mark.parametrize("level", [0, 1])
def test_an_iteration_is_the_fixed_window_run_back_to_back(tiny, pend, level):
    """At window h an iteration is ``horizon_max / h`` updates of the fixed-window SHAC with ``horizon = h``:
    same keys, parameters and env states; then the window grows by ``horizon_lr * MAX_LOG_RATIO`` (log2), up to
    log2(horizon_max)."""
    ts = tiny.init(jax.random.PRNGKey(3))
    assert isinstance(ts, AdaptiveShacState) and float(ts.control.log2_horizon) == 1.0
    ts = ts.replace(control=ts.control.replace(log2_horizon=jnp.asarray(1.0 + level, jnp.float32)))  # strong, as init
    h = tiny.horizons[level]
    fixed = Shac(pend, ShacConfig(**{**TINY, "adaptive_horizon": False, "horizon": h}))
    fts = fixed.init(jax.random.PRNGKey(3))
    for _ in range(4 // h):
        fts, _ = fixed.iterate(fts)
    ts, metrics = tiny.iterate(ts)
    assert float(metrics["horizon"]) == h
    _params_close(ts.actor, fts.actor, rtol=2e-5, atol=1e-6)
    _params_close(ts.critic, fts.critic, rtol=2e-5, atol=1e-6)
    _params_close(ts.env_state.obs, fts.env_state.obs, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(ts.key), np.asarray(fts.key))
    assert int(ts.control.iteration) == 1
    assert float(ts.control.log2_horizon) == min(1.0 + level + 0.25 * MAX_LOG_RATIO, 2.0)


def test_one_program_takes_every_window(tiny):
    """The window doubles each iteration until it reaches horizon_max and stays; the same compiled iterate runs
    every level (no recompile)."""
    ts = tiny.init(jax.random.PRNGKey(0))
    seen = []
    for _ in range(4):
        ts, m = tiny.iterate(ts)
        seen.append(int(m["horizon"]))
    assert seen == [2, 4, 4, 4]
    assert tiny.iterate._cache_size() == 1


def _group(env_state, groups, j):
    return jax.tree.map(lambda x: x.reshape(groups, -1, *x.shape[1:])[j], env_state)


def test_split_envs_take_turns_at_a_fixed_cost_per_update(pend, level=1):
    """With ``horizon_split_envs`` a window of ``h`` steps runs on ``num_envs * horizon / h`` robots: at the long
    window the iteration is the fixed-window SHAC (``horizon = h``, one robot) run on each group in turn, carrying
    parameters, optimiser moments and keys from group to group; every robot advances ``horizon_max`` steps and
    the iteration makes ``horizon_max / horizon`` updates (level 0 is the unsplit window, tested above)."""
    cfg = {**TINY, "horizon_split_envs": True}
    agent = Shac(pend, ShacConfig(**cfg))
    assert agent.robots == (2, 1)
    ts = agent.init(jax.random.PRNGKey(5))
    ts = ts.replace(control=ts.control.replace(log2_horizon=jnp.asarray(1.0 + level, jnp.float32)))
    h = agent.horizons[level]
    groups = 2 // agent.robots[level]
    fixed = Shac(pend, ShacConfig(**{**cfg, "adaptive_horizon": False, "horizon_split_envs": False,
                                     "horizon": h, "num_envs": agent.robots[level]}))
    fts = fixed.init(jax.random.PRNGKey(0)).replace(actor=ts.actor, critic=ts.critic, target=ts.target,
                                                   stats=ts.stats, key=ts.key)
    ends = [None] * groups
    for u in range(4 // h * groups):
        j = u % groups
        start = ends[j] if ends[j] is not None else _group(ts.env_state, groups, j)
        fts, _ = fixed.iterate(fts.replace(env_state=start))
        ends[j] = fts.env_state
    ts, metrics = agent.iterate(ts)
    assert float(metrics["horizon"]) == h
    _params_close(ts.actor, fts.actor, rtol=2e-5, atol=1e-6)
    _params_close(ts.critic, fts.critic, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(ts.key), np.asarray(fts.key))
    for j in range(groups):
        _params_close(_group(ts.env_state, groups, j).obs, ends[j].obs, rtol=1e-4, atol=1e-5)
    assert int(ts.actor_opt.count) == 4 // agent.horizons[0]  # updates in the iteration


@pytest.fixture(scope="module")
def adaptive_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("shac_adaptive_logs")


@pytest.fixture(scope="module")
def adaptive_run(pend, tmp_path_factory, adaptive_logs):
    d = tmp_path_factory.mktemp("shac_adaptive_ckpt")
    return d, train("shac", pend, ADAPT_CFG, seed=0, checkpoint_dir=str(d), progress=False,
                    log_dir=str(adaptive_logs))


def test_adaptive_shac_learns_pendulum(adaptive_run):
    """The initial policy balances ~63 of 100 steps; the adaptive window must balance nearly all of them, and
    it uses the longer window (the pendulum's gradient stays far below the limit)."""
    _, result = adaptive_run
    assert result.curve.returns[0] < 80.0
    assert result.final_return >= 95.0, f"adaptive shac returns {result.curve.returns} did not reach 95 of 100"
    horizons = result.history["horizon"]
    assert set(horizons) <= {8.0, 16.0} and horizons[0] == 8.0 and horizons[-1] == 16.0
    assert result.metrics["skipped_updates"] == 0


def test_trace_script_stores_and_plots_the_window(adaptive_run, adaptive_logs, tmp_path):
    """scripts/horizon_trace.py keeps the run's logged window per iteration (as the run's history has it) and its
    evaluations, and plots the stored traces."""
    import json

    from tests.scripts_loader import load_script

    script = load_script("horizon_trace.py")
    _, result = adaptive_run
    (run_dir,) = [p.parent for p in adaptive_logs.glob("*/scalars.csv")]
    out = tmp_path / "t.json"
    assert script.main(["store", str(run_dir), "--out", str(out), "--label", "test"]) == 0
    trace = json.loads(out.read_text())
    assert [h for _, h in trace["horizon"]] == result.history["horizon"]
    assert [r for _, r in trace["eval"]] == pytest.approx(result.curve.returns, rel=1e-4)
    assert sum(trace["horizon_counts"].values()) == len(result.history["horizon"])
    assert script.main(["plot", str(out), "--out", str(tmp_path / "w.png")]) == 0
    assert (tmp_path / "w.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="scalars.csv not found"):
        script.main(["store", str(tmp_path), "--out", str(out)])


def test_adaptive_fused_loop_equals_plain_loop(adaptive_run, pend):
    """Tolerance as SHAC's fixed window (test_shac.py): bit for bit over the first updates."""
    _, result = adaptive_run
    assert_same_as_plain_loop(result, pend, exact_updates=8)


def test_adaptive_checkpoint_resumes_bit_identical(adaptive_run, pend, tmp_path):
    d, full = adaptive_run
    first = sorted(d.iterdir())[0]
    header = read_header(first)[0]
    assert header["config"]["adaptive_horizon"] is True and header["config"]["horizon_max"] == 16
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(first, half)
    resumed = train("shac", pend, ADAPT_CFG, seed=0, checkpoint_dir=str(half), resume=True, progress=False)
    assert resumed.curve.returns == full.curve.returns
    assert resumed.history["horizon"] == full.history["horizon"]
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(full.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fixed_window_checkpoint_does_not_load_as_adaptive(adaptive_run, pend, tmp_path):
    """A checkpoint of the adaptive run resumed with the fixed window is refused by its config, naming the field."""
    d, _ = adaptive_run
    target = tmp_path / "ck"
    target.mkdir()
    shutil.copy(sorted(d.iterdir())[0], target)
    with pytest.raises(ValueError, match="adaptive_horizon"):
        train("shac", pend, {**ADAPT_CFG, "adaptive_horizon": False}, seed=0, checkpoint_dir=str(target),
              resume=True, progress=False)


@pytest.mark.parametrize("overrides,field", [
    ({"horizon_max": 12}, "horizon_max"),
    ({"horizon_max": 2}, "horizon_max"),
    ({"truncation": 2}, "truncation"),
    ({"critic_windows": 2}, "critic_windows"),
    ({"horizon": "auto"}, "horizon"),
    ({"horizon_grad_limit": 0.0}, "horizon_grad_limit"),
    ({"horizon_lr": float("nan")}, "horizon_lr"),
    ({"adaptive_horizon": "yes"}, "adaptive_horizon"),
])
def test_bad_adaptive_configs_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_agent("shac").default_config("reacher", {"adaptive_horizon": True, "horizon": 4, **overrides})


@pytest.mark.parametrize("overrides,field", [
    ({"adaptive_horizon": True, "num_envs": 12, "horizon": 4, "horizon_max": 32}, "num_envs"),
    ({"adaptive_horizon": False}, "horizon_split_envs"),
    ({"adaptive_horizon": True, "horizon": 4, "horizon_split_envs": 1}, "horizon_split_envs"),
])
def test_bad_split_configs_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_agent("shac").default_config("reacher", {"horizon_split_envs": True, **overrides})


def test_ant_defaults_to_the_split_adaptive_window_and_the_mean_of_three_critics():
    """Ant's SHAC default is the adaptive window at a fixed cost per update, bootstrapped from the mean of an
    ensemble of 3 LayerNorm critics; the fixed window and the single critic are fields away, and a window that
    cannot reach horizon_max says how to get the fixed one."""
    shac = get_agent("shac")
    cfg = shac.default_config("ant")
    assert (cfg.adaptive_horizon, cfg.horizon_split_envs, cfg.horizon, cfg.horizon_max, cfg.num_envs) == \
        (True, True, 4, 32, 256)
    assert (cfg.critic_ensemble, cfg.critic_layernorm, cfg.critic_reduce, cfg.target_network) == (3, True, "mean", True)
    assert {"critic_ensemble": 3, "critic_layernorm": True, "critic_reduce": "mean"}.items() <= cfg.to_dict().items()
    old_default = shac.default_config("ant", {"critic_ensemble": 1, "critic_layernorm": False, "critic_reduce": "min"})
    assert not {"critic_ensemble", "critic_layernorm", "critic_reduce"} & set(old_default.to_dict())  # as in old headers
    assert shac.default_config("halfcheetah").critic_ensemble == 1
    fixed = shac.default_config("ant", {"adaptive_horizon": False, "horizon_split_envs": False})
    assert not fixed.adaptive_horizon and fixed.horizon == 4
    assert not shac.default_config("halfcheetah").adaptive_horizon
    with pytest.raises(ValueError, match="horizon_split_envs.*on by default for ant.*set both to false"):
        shac.default_config("ant", {"adaptive_horizon": False})
    with pytest.raises(ValueError, match="horizon_max.*'adaptive_horizon' to false"):
        shac.default_config("ant", {"horizon": 3})
