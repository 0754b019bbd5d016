"""Policy learning on the same robots: apg (backprop through the simulator), shac (short-horizon
actor-critic), ppo, es, sb3.

One API for all::

    from gradgym.agents import train
    result = train("ppo", "hopper", {"total_steps": 200_000}, seed=0)
    result.curve.returns, result.metrics, result.policy(obs)

``AGENTS`` maps each agent name to an :class:`AgentInfo` (description, config
class, per-robot defaults); heavy modules are imported lazily.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any


@dataclasses.dataclass(frozen=True)
class AgentInfo:
    """Registry entry of one agent.

    Attributes:
        name: registry name.
        description: one line for ``gradgym list``.
        module: module holding the agent, its config class and ``ROBOT_DEFAULTS``.
        config_class: name of the config dataclass in ``module``.
        agent_class: name of the agent class in ``module`` for JAX agents, which the
            shared loop (``gradgym.agents.trainer``) drives through ``init``/``iterate``.
        train_fn: name of a module-level function for agents with their own loop
            (sb3): ``train_fn(env: BraxEnv, cfg, seed, *, checkpoint_dir, resume,
            progress) -> TrainResult``. Set exactly one of ``agent_class`` and ``train_fn``.
    """

    name: str
    description: str
    module: str
    config_class: str
    agent_class: str | None = None
    train_fn: str | None = None

    def __post_init__(self) -> None:
        if (self.agent_class is None) == (self.train_fn is None):
            raise ValueError(f"AgentInfo {self.name!r}: set exactly one of agent_class and train_fn.")

    def load(self) -> Any:
        return importlib.import_module(self.module)

    def config_cls(self) -> type:
        return getattr(self.load(), self.config_class)

    def default_config(self, robot: str, overrides: Any = None) -> Any:
        """The agent's config for ``robot``: class defaults < robot defaults < overrides."""
        from gradgym.agents.config import resolve_config

        mod = self.load()
        return resolve_config(getattr(mod, self.config_class), robot, overrides, getattr(mod, "ROBOT_DEFAULTS", {}))


AGENTS: dict[str, AgentInfo] = {
    a.name: a
    for a in (
        AgentInfo("apg", "analytic policy gradient: truncated backprop through the simulator (JAX, optax)",
                  "gradgym.agents.apg", "ApgConfig", "Apg"),
        AgentInfo("shac", "short-horizon actor-critic: backprop through a short window + a learned critic (JAX)",
                  "gradgym.agents.shac", "ShacConfig", "Shac"),
        AgentInfo("ppo", "proximal policy optimisation in JAX on the batched core (GAE, clipped surrogate)",
                  "gradgym.agents.ppo", "PpoConfig", "Ppo"),
        AgentInfo("es", "evolution strategies via evosax (OpenAI-ES default; PGPE, SNES, CMA-ES, PES, ...)",
                  "gradgym.agents.es", "EsConfig", "Es"),
        AgentInfo("sb3", "any Stable-Baselines3 algorithm (PPO default) on the SB3 VecEnv shell",
                  "gradgym.agents.sb3", "Sb3Config", train_fn="train_sb3"),
    )
}


def get_agent(name: str) -> AgentInfo:
    """Looks an agent up; the error lists the valid names."""
    if not isinstance(name, str) or name not in AGENTS:
        raise ValueError(f"Unknown agent {name!r}; available: {', '.join(AGENTS)}. Pass one of these names.")
    return AGENTS[name]


from gradgym.agents.result import Curve, TrainResult  # noqa: E402
from gradgym.agents.trainer import train  # noqa: E402

__all__ = ["AGENTS", "AgentInfo", "Curve", "TrainResult", "get_agent", "train"]
