"""Shared settings for the agent tests: one cheap env, small networks, few eval episodes.

Every test that trains on the pendulum uses ``PEND`` and configs that differ
only in budget, so the compiled programs are built once per session.
"""

import pytest

from gradgym.envs import make

PEND_EPISODE = 100
FAST = {"eval_episodes": 4, "num_evals": 4}


@pytest.fixture(scope="session")
def pend():
    """Inverted pendulum, reward 1 per upright step, episodes of at most 100 steps."""
    return make("inverted_pendulum", episode_length=PEND_EPISODE)


@pytest.fixture(scope="session")
def reacher():
    """Reacher with 50-step episodes (the SHAC and APG gradient and learning tests)."""
    return make("reacher", episode_length=50)


def plain_loop(result, env):
    """The unfused reference of a JAX run: ``agent.iterate`` called once per update from Python, the metrics
    pulled to the host after each, the deterministic policy scored at the same evaluation points.

    Returns ``(params, history, returns)`` to compare with ``result`` (a fused ``train`` run of the same seed).
    """
    import jax
    import numpy as np

    from gradgym.agents.base import eval_horizon, eval_keys, make_evaluator, num_iterations
    from gradgym.agents.trainer import build_agent, eval_schedule

    cfg = result.config
    agent = build_agent(result.agent, env, cfg.program_config())
    n_iters = num_iterations(cfg.total_steps, agent.steps_per_iter)
    evaluate = make_evaluator(env, cfg.hidden, cfg.activation, eval_horizon(env, cfg.eval_horizon))
    keys = eval_keys(result.seed, cfg.eval_episodes)

    def score(ts):
        return float(np.mean(np.asarray(evaluate(*agent.policy_params(ts), keys), np.float64)))

    ts = agent.init(jax.random.PRNGKey(result.seed))
    history, returns, evals = {}, [score(ts)], set(eval_schedule(n_iters, cfg.num_evals))
    for it in range(1, n_iters + 1):
        ts, metrics = agent.iterate(ts)
        for k, v in jax.device_get(metrics).items():
            history.setdefault(k, []).append(float(v))
        if it in evals:
            returns.append(score(ts))
    return jax.device_get(agent.policy_params(ts)[0]), history, returns


def assert_same_as_plain_loop(result, env, exact_updates=None):
    """The fused run equals its plain-loop reference: parameters, every update's metrics, the curve.

    ``exact_updates=None``: bit for bit. Otherwise bit for bit over the first ``exact_updates`` updates and the
    evaluations inside them, and within float tolerance after (XLA may round a long gradient program differently
    inside the loop, and a chaotic rollout amplifies the last bit).
    """
    import jax
    import numpy as np

    params, history, returns = plain_loop(result, env)
    if exact_updates is None:
        assert result.curve.returns == returns
        for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(params), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert result.history == history  # every update's metrics, as floats
        return
    assert {k: v[:exact_updates] for k, v in result.history.items()} == {k: v[:exact_updates] for k, v in history.items()}
    from gradgym.agents.base import num_iterations
    from gradgym.agents.trainer import build_agent, eval_schedule

    spi = build_agent(result.agent, env, result.config.program_config()).steps_per_iter
    evals = eval_schedule(num_iterations(result.config.total_steps, spi), result.config.num_evals)
    exact = 1 + sum(1 for it in evals if it <= exact_updates)  # the initial policy and the evaluations in the exact span
    assert result.curve.returns[:exact] == returns[:exact]
    np.testing.assert_allclose(result.curve.returns, returns, rtol=1e-2)
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-2)
