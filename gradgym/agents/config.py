"""Typed, validated configs shared by every agent, and per-robot defaults.

Each agent defines a frozen dataclass (``ApgConfig``, ``PpoConfig``, ...) that
inherits the common fields below. ``__post_init__`` validates every field and
raises ``ValueError`` naming the field and the fix. ``make_config`` builds an
agent's config from the robot's tuned defaults plus user overrides.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from gradgym.checks import is_int
from gradgym.nets import ACTIVATIONS

LR_SCHEDULES = ("constant", "linear")  # "linear": decays over the run (gradgym.agents.base.scheduled_lr)


def check_int(name: str, value: Any, low: int = 1) -> None:
    """Raises ``ValueError`` unless ``value`` is an int >= ``low``."""
    if not is_int(value, low):
        raise ValueError(f"config field {name!r} must be an int >= {low}, got {value!r}.")


def check_float(name: str, value: Any, low: float = 0.0, high: float = math.inf, *, low_open: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is a finite real in [low, high] (or (low, high])."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"config field {name!r} must be a finite number in {bracket}{low}, {high}], got {value!r}.")


def check_sizes(name: str, value: Any, allow_empty: bool = False) -> tuple[int, ...]:
    """Layer sizes: returns ``value`` as a tuple; ``ValueError`` unless a sequence of positive ints
    (non-empty unless ``allow_empty``)."""
    sizes = tuple(value) if isinstance(value, (list, tuple)) else None
    if sizes is None or (not sizes and not allow_empty) or any(
            not is_int(h) for h in sizes):
        what = "tuple of positive ints (empty: a linear policy)" if allow_empty else "non-empty tuple of positive ints"
        raise ValueError(f"config field {name!r} must be a {what}, got {value!r}.")
    return sizes


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"config field {name!r} must be a bool, got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"config field {name!r} must be one of {', '.join(map(repr, choices))}, got {value!r}.")


def check_actor_critic(cfg: Any) -> None:
    """Validates the fields the actor-critic configs (PPO, SHAC) share, the same way for both.

    ``lr_schedule``, ``gamma``, ``max_grad_norm``, ``reward_scale``,
    ``value_hidden`` (stored back as a tuple) and ``obs_norm``.
    """
    check_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    check_float("gamma", cfg.gamma, 0.0, 1.0)
    check_float("max_grad_norm", cfg.max_grad_norm, 0.0, low_open=True)
    check_float("reward_scale", cfg.reward_scale, 0.0, low_open=True)
    object.__setattr__(cfg, "value_hidden", check_sizes("value_hidden", cfg.value_hidden))
    check_bool("obs_norm", cfg.obs_norm)


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """Fields every agent has.

    Attributes:
        total_steps: training budget in environment steps (every simulated
            transition counts, including ES population rollouts).
        num_evals: number of evaluation points on the learning curve (plus one
            for the initial policy).
        eval_episodes: episodes per evaluation (fixed keys: the same start
            states at every evaluation, so curves compare like with like).
        eval_horizon: steps per evaluation episode; ``None`` = the env's
            ``episode_length`` (or 1000 if it has none).
        hidden: hidden layer sizes of the policy MLP; ``()`` = a linear policy.
        activation: hidden activation, one of ``swish, tanh, relu, elu``.
    """

    #: Fields added after checkpoints were first written: :meth:`to_dict` records each only when it differs
    #: from its default, so the header of an older checkpoint (which lacks them) still matches the same run.
    RECORDED_IF_SET: ClassVar[tuple[str, ...]] = ()

    total_steps: int = 100_000
    num_evals: int = 10
    eval_episodes: int = 8
    eval_horizon: int | None = None
    hidden: tuple[int, ...] = (32, 32, 32, 32)
    activation: str = "swish"

    def __post_init__(self) -> None:
        check_int("total_steps", self.total_steps)
        check_int("num_evals", self.num_evals)
        check_int("eval_episodes", self.eval_episodes)
        if self.eval_horizon is not None:
            check_int("eval_horizon", self.eval_horizon)
        object.__setattr__(self, "hidden", check_sizes("hidden", self.hidden, allow_empty=True))
        check_choice("activation", self.activation, tuple(ACTIVATIONS))

    def program_config(self) -> CommonConfig:
        """This config with the fields that do not change the compiled programs set to 1.

        The trainer builds (and caches) agents from it, so runs that differ only
        in budget or evaluation share compiled code. A learning-rate schedule
        over the run (``lr_schedule="linear"``) makes the budget part of the
        program, so then ``total_steps`` is kept.
        """
        total = self.total_steps if getattr(self, "lr_schedule", "constant") != "constant" else 1
        return dataclasses.replace(self, total_steps=total, num_evals=1, eval_episodes=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields (tuples become lists), without the ``RECORDED_IF_SET`` ones at their default.

        :func:`from_dict` fills a missing field with its default, so the dict always rebuilds the same config.
        """
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if not (k in self.RECORDED_IF_SET and v == defaults[k])}


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Builds ``cls`` from a dict, rejecting unknown fields by name; a missing field takes its default."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"Unknown config field(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
            f"valid fields: {', '.join(sorted(names))}."
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def resolve_config(cls: type, robot: str, overrides: Any, robot_defaults: dict[str, dict[str, Any]]) -> Any:
    """Config for ``robot``: class defaults < per-robot defaults < ``overrides``.

    ``overrides`` may be ``None``, a dict of field values, or an instance of
    ``cls`` (returned unchanged).
    """
    if isinstance(overrides, cls):
        return overrides
    if overrides is not None and not isinstance(overrides, dict):
        raise TypeError(f"config must be None, a dict or a {cls.__name__}, got {type(overrides).__name__}.")
    values = dict(robot_defaults.get(robot, {}))
    values.update(overrides or {})
    return from_dict(cls, values)
