"""Policy learning on the same robots: apg (backprop through the simulator), shac (short-horizon
actor-critic), hybrid (analytic and likelihood-ratio gradients, alpha-order weighted), gippo (PPO after a step
toward an alpha-policy from the simulator's gradient), ppo, es, sb3.

One API for all::

    from gradgym.agents import train
    result = train("ppo", "hopper", {"total_steps": 200_000}, seed=0)
    result.curve.returns, result.metrics, result.policy(obs)

``AGENTS`` maps each agent name to an :class:`AgentInfo` (description, and a
``load()`` that imports the agent and returns its :class:`AgentSpec`: config
class, per-robot defaults, agent class or training function); see
:mod:`gradgym.agents.registry`. The agents, and the training loop, are
imported lazily: listing the agents or building the CLI's parser imports none
of them.
"""

from __future__ import annotations

from typing import Any

from gradgym.agents.registry import AGENTS, AgentInfo, AgentSpec, get_agent


def __getattr__(name: str) -> Any:
    """``train``, ``Curve`` and ``TrainResult``, imported on first use (PEP 562): the trainer pulls in JAX code."""
    if name == "train":
        from gradgym.agents.trainer import train as value
    elif name in ("Curve", "TrainResult"):
        from gradgym.agents import result

        value = getattr(result, name)
    else:
        raise AttributeError(f"module 'gradgym.agents' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["AGENTS", "AgentInfo", "AgentSpec", "Curve", "TrainResult", "get_agent", "train"]
