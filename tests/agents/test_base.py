"""The gradient agents' shared update (a non-finite gradient is skipped and counted, a finite one is Adam's step)
and learning-rate schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradgym.agents.base import LINEAR_END, apply_finite_update, make_optimizer, scheduled_lr


def test_apply_finite_update_skips_non_finite_gradients():
    opt = make_optimizer(0.1, 1.0)
    params = {"w": jnp.arange(3.0), "b": jnp.ones(())}
    state = opt.init(params)
    grads = {"w": jnp.array([3.0, 0.0, 4.0]), "b": jnp.zeros(())}

    p1, s1, skipped, norm = apply_finite_update(opt, grads, state, params, jnp.zeros((), jnp.int32))
    updates, s_ref = opt.update(grads, state, params)
    ref = optax.apply_updates(params, updates)
    assert int(skipped) == 0 and float(norm) == 5.0  # the norm before clipping
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((ref, s_ref)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    for bad in (jnp.nan, jnp.inf):
        p2, s2, skipped2, norm2 = apply_finite_update(opt, {**grads, "b": jnp.asarray(bad)}, s1, p1, skipped)
        assert int(skipped2) == 1 and not np.isfinite(float(norm2))
        for a, b in zip(jax.tree.leaves((p2, s2)), jax.tree.leaves((p1, s1)), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # parameters and Adam state unchanged


def _step_sizes(optimizer, updates: int) -> np.ndarray:
    """Adam's step sizes under a constant unit gradient: each step moves a parameter by the learning rate."""
    params = jnp.zeros(())
    state = optimizer.init(params)
    sizes = []
    for _ in range(updates):
        step, state = optimizer.update(jnp.asarray(0.5), state, params)
        sizes.append(-float(step))
    return np.array(sizes)


@pytest.mark.parametrize("agent,budget", [("ppo", 3 * 32), ("shac", 5 * 16), ("apg", 5 * 16), ("hybrid", 5 * 16)])
def test_linear_schedule_spans_the_run(pend, agent, budget):
    """lr_schedule="linear" decays every optimiser over exactly the run's updates (to LINEAR_END of the
    start); "constant" keeps the rate; the budget is part of the compiled program only with a schedule."""
    from gradgym.agents import get_agent
    from gradgym.agents.trainer import build_agent

    small = {"num_envs": 4, "hidden": (8,), "total_steps": budget}
    small.update({"rollout_steps": 8, "epochs": 2, "minibatches": 2} if agent == "ppo" else
                 {"horizon": 4, "critic_iterations": 2, "critic_minibatches": 2} if agent == "shac" else
                 {"horizon": 4})
    info = get_agent(agent)
    cfg = info.default_config("inverted_pendulum", {**small, "lr_schedule": "linear"})
    assert cfg.program_config().total_steps == budget
    assert info.default_config("inverted_pendulum", {**small, "lr_schedule": "constant"}).program_config().total_steps == 1
    built = build_agent(agent, pend, cfg.program_config())
    iters = budget // built.steps_per_iter
    if agent == "ppo":
        opts = [(built.optimizer, cfg.learning_rate, iters * 2 * 2)]
    elif agent in ("apg", "hybrid"):
        opts = [(built.optimizer, cfg.learning_rate, iters)]
    else:
        opts = [(built.actor_opt, cfg.actor_lr, iters), (built.critic_opt, cfg.critic_lr, iters * 2 * 2)]
    for opt, lr, updates in opts:
        expected = lr + (lr * LINEAR_END - lr) * np.arange(updates) / updates
        np.testing.assert_allclose(_step_sizes(opt, updates), expected, rtol=1e-4)


def test_scheduled_lr():
    assert scheduled_lr(3e-4, "constant", 10) == 3e-4
    sched = scheduled_lr(2e-3, "linear", 10)
    assert float(sched(0)) == pytest.approx(2e-3) and float(sched(10)) == pytest.approx(1e-5)
    assert float(sched(50)) == pytest.approx(1e-5)  # stays at the end value


@pytest.mark.parametrize("agent", ["apg", "hybrid"])
def test_window_agents_keep_a_constant_rate_and_old_headers(agent):
    """APG's schedule is opt-in: at the default the rate is constant and the config's dict (a checkpoint header)
    has no ``lr_schedule``, as headers written before the field existed; set, it is recorded and rebuilds."""
    from gradgym.agents import get_agent
    from gradgym.agents.config import from_dict

    info = get_agent(agent)
    default = info.default_config("halfcheetah", {})
    assert default.lr_schedule == "constant" and "lr_schedule" not in default.to_dict()
    linear = info.default_config("halfcheetah", {"lr_schedule": "linear"})
    assert linear.to_dict()["lr_schedule"] == "linear"
    assert from_dict(type(linear), linear.to_dict()) == linear
    with pytest.raises(ValueError, match="'lr_schedule'.*'constant', 'linear'"):
        info.default_config("halfcheetah", {"lr_schedule": "cosine"})
