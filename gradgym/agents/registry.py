"""The agent registry: names to explicit, lazily imported entries (MuJoCo Playground's dicts of callables).

Each entry's ``load`` imports the agent's module only when it is first
needed (the modules import JAX, evosax or torch; listing the agents or
building the CLI's parser needs none of them) and returns an
:class:`AgentSpec` holding the objects themselves, not names to look up.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """What an agent module provides.

    Attributes:
        config_class: the agent's config dataclass.
        robot_defaults: per-robot config overrides (robot name -> field values).
        agent_class: for JAX agents, the class the shared loop
            (``gradgym.agents.trainer``) builds as ``agent_class(env, config)``
            and drives through ``init``/``iterate``.
        train_fn: for agents with their own loop (sb3): ``train_fn(env, cfg,
            seed, *, checkpoint_dir, resume, progress, log_dir) -> TrainResult``.
            Exactly one of ``agent_class`` and ``train_fn`` is set.
        resolve_for_env: ``resolve_for_env(config, env, seed) -> config``,
            called by the trainer before it builds the agent, for config values
            that depend on the env (shac's ``horizon="auto"``); ``None``: none.
    """

    config_class: type
    robot_defaults: Mapping[str, dict[str, Any]]
    agent_class: type | None = None
    train_fn: Callable[..., Any] | None = None
    resolve_for_env: Callable[[Any, Any, int], Any] | None = None

    def __post_init__(self) -> None:
        if (self.agent_class is None) == (self.train_fn is None):
            raise ValueError(f"AgentSpec of {self.config_class.__name__}: set exactly one of agent_class and "
                             "train_fn.")


@dataclasses.dataclass(frozen=True)
class AgentInfo:
    """Registry entry of one agent.

    Attributes:
        name: registry name.
        description: one line for ``gradgym list``.
        load: imports the agent's module and returns its :class:`AgentSpec` (cached).
    """

    name: str
    description: str
    load: Callable[[], AgentSpec]

    def config_cls(self) -> type:
        return self.load().config_class

    def default_config(self, robot: str, overrides: Any = None) -> Any:
        """The agent's config for ``robot``: class defaults < robot defaults < overrides."""
        from gradgym.agents.config import resolve_config

        spec = self.load()
        return resolve_config(spec.config_class, robot, overrides, spec.robot_defaults)


@functools.cache
def _apg() -> AgentSpec:
    from gradgym.agents import apg

    return AgentSpec(apg.ApgConfig, apg.ROBOT_DEFAULTS, agent_class=apg.Apg)


@functools.cache
def _shac() -> AgentSpec:
    from gradgym.agents import shac

    return AgentSpec(shac.ShacConfig, shac.ROBOT_DEFAULTS, agent_class=shac.Shac,
                     resolve_for_env=shac.resolve_for_env)


@functools.cache
def _hybrid() -> AgentSpec:
    from gradgym.agents import hybrid

    return AgentSpec(hybrid.HybridConfig, hybrid.ROBOT_DEFAULTS, agent_class=hybrid.Hybrid)


@functools.cache
def _ppo() -> AgentSpec:
    from gradgym.agents import ppo

    return AgentSpec(ppo.PpoConfig, ppo.ROBOT_DEFAULTS, agent_class=ppo.Ppo)


@functools.cache
def _gippo() -> AgentSpec:
    from gradgym.agents import gippo

    return AgentSpec(gippo.GiPpoConfig, gippo.ROBOT_DEFAULTS, agent_class=gippo.GiPpo)


@functools.cache
def _es() -> AgentSpec:
    from gradgym.agents import es

    return AgentSpec(es.EsConfig, es.ROBOT_DEFAULTS, agent_class=es.Es)


@functools.cache
def _sb3() -> AgentSpec:
    from gradgym.agents import sb3

    return AgentSpec(sb3.Sb3Config, sb3.ROBOT_DEFAULTS, train_fn=sb3.train_sb3)


AGENTS: dict[str, AgentInfo] = {
    a.name: a
    for a in (
        AgentInfo("apg", "analytic policy gradient: truncated backprop through the simulator (JAX, optax)", _apg),
        AgentInfo("shac", "short-horizon actor-critic: backprop through a short window + a learned critic (JAX)",
                  _shac),
        AgentInfo("hybrid", "analytic + likelihood-ratio window gradients, alpha-order weighted with a bias check "
                  "(JAX)", _hybrid),
        AgentInfo("ppo", "proximal policy optimisation in JAX on the batched core (GAE, clipped surrogate)", _ppo),
        AgentInfo("gippo", "gradient-informed PPO: PPO from an alpha-policy moved along the simulator's action "
                  "gradient of the advantage (JAX)", _gippo),
        AgentInfo("es", "evolution strategies via evosax (OpenAI-ES default; PGPE, SNES, CMA-ES, PES, ...)", _es),
        AgentInfo("sb3", "any Stable-Baselines3 algorithm (PPO default) on the SB3 VecEnv shell", _sb3),
    )
}


def get_agent(name: str) -> AgentInfo:
    """Looks an agent up; the error lists the valid names."""
    if not isinstance(name, str) or name not in AGENTS:
        raise ValueError(f"Unknown agent {name!r}; available: {', '.join(AGENTS)}. Pass one of these names.")
    return AGENTS[name]
