"""The result of one training run, the same for every agent."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass
class Curve:
    """The learning curve: one entry per evaluation (the first is the initial policy).

    Attributes:
        env_steps: environment steps consumed before each evaluation.
        wall_s: wall-clock seconds of training (compilation included, evaluation excluded).
        returns: mean evaluation return (deterministic policy, fixed episodes).
    """

    env_steps: list[int] = dataclasses.field(default_factory=list)
    wall_s: list[float] = dataclasses.field(default_factory=list)
    returns: list[float] = dataclasses.field(default_factory=list)

    def append(self, env_steps: int, wall_s: float, ret: float) -> None:
        self.env_steps.append(int(env_steps))
        self.wall_s.append(float(wall_s))
        self.returns.append(float(ret))

    def to_dict(self) -> dict[str, list]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainResult:
    """What :func:`gradgym.agents.train` returns.

    Attributes:
        agent: agent name (``apg``, ``shac``, ``ppo``, ``es``, ``sb3``).
        robot: robot name.
        seed: the run's seed.
        config: the agent's config (a frozen dataclass).
        curve: the learning curve.
        params: final policy parameters (a pytree; for sb3 a dict of numpy arrays).
        metrics: summary metrics (e.g. ``grad_norm_mean``, ``skipped_updates``,
            ``steps_per_s``, ``initial_return``, ``final_return``).
        policy: ``policy(obs) -> action`` on numpy arrays, usable on the
            Gymnasium env of the same robot.
        history: every update's metrics (JAX agents: ``loss``, ``grad_norm`` before
            clipping, ``skipped``, ...), one list per metric, in update order.
    """

    agent: str
    robot: str
    seed: int
    config: Any
    curve: Curve
    params: Any
    metrics: dict[str, float]
    policy: Callable[[np.ndarray], np.ndarray]
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    @property
    def final_return(self) -> float:
        return self.curve.returns[-1]

    @property
    def env_steps(self) -> int:
        return self.curve.env_steps[-1]

    @property
    def wall_s(self) -> float:
        return self.curve.wall_s[-1]

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary (no parameters)."""
        return {
            "agent": self.agent,
            "robot": self.robot,
            "seed": self.seed,
            "config": self.config.to_dict(),
            "curve": self.curve.to_dict(),
            "metrics": dict(self.metrics),
        }


def summarize(history: dict[str, list[float]], curve: Curve, skipped: int) -> dict[str, float]:
    """Summary metrics of a run (``TrainResult.metrics``) from its curve and per-iteration history."""
    out: dict[str, float] = {
        "initial_return": curve.returns[0],
        "final_return": curve.returns[-1],
        "best_return": max(curve.returns),
        "env_steps": float(curve.env_steps[-1]),
        "wall_s": curve.wall_s[-1],
        "steps_per_s": curve.env_steps[-1] / curve.wall_s[-1] if curve.wall_s[-1] > 0 else 0.0,
        "skipped_updates": float(skipped),
    }
    g = np.asarray(history.get("grad_norm", []), np.float64)
    g = g[np.isfinite(g)]
    if g.size:
        out.update(grad_norm_mean=float(g.mean()), grad_norm_median=float(np.median(g)),
                   grad_norm_max=float(g.max()), grad_norm_min=float(g.min()))
    a = np.asarray(history.get("alpha", []), np.float64)
    if a.size:  # the hybrid's weight of the analytic gradient, per update
        out.update(alpha_mean=float(a.mean()), alpha_median=float(np.median(a)))
    a = np.asarray(history.get("gi_alpha", []), np.float64)
    if a.size:  # gippo's step toward the alpha-policy, per update
        out.update(gi_alpha_median=float(np.median(a)), gi_alpha_max=float(a.max()))
    return out
