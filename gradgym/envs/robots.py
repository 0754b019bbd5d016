"""Registry of the Brax robots gradgym exposes, with their Gymnasium names.

Each entry records which physics backends Brax supports for the robot, the
Gymnasium episode limit (taken from Gymnasium's MuJoCo v5 registrations) and
whether the Brax constructor takes ``reset_noise_scale`` natively.
"""

from __future__ import annotations

import dataclasses

BACKENDS: tuple[str, ...] = ("generalized", "positional", "spring", "mjx")
DEFAULT_BACKEND = "spring"
"""Default physics backend: the fastest on CPU (see docs/benchmarks.md).

Robots that Brax does not implement on ``spring`` (swimmer) fall back to
their first supported backend.
"""


@dataclasses.dataclass(frozen=True)
class RobotSpec:
    """Static facts about one robot.

    Attributes:
        name: Brax registry name, e.g. ``"ant"``.
        gym_name: CamelCase name used in the Gymnasium id ``gradgym/<gym_name>-v0``.
        max_episode_steps: episode limit registered with Gymnasium.
        backends: physics backends Brax implements for this robot.
        native_reset_noise: the Brax constructor accepts ``reset_noise_scale``.
    """

    name: str
    gym_name: str
    max_episode_steps: int
    backends: tuple[str, ...] = BACKENDS
    native_reset_noise: bool = False

    @property
    def gym_id(self) -> str:
        return f"gradgym/{self.gym_name}-v0"

    @property
    def default_backend(self) -> str:
        return DEFAULT_BACKEND if DEFAULT_BACKEND in self.backends else self.backends[0]


ROBOTS: dict[str, RobotSpec] = {
    spec.name: spec
    for spec in (
        RobotSpec("ant", "Ant", 1000, native_reset_noise=True),
        RobotSpec("halfcheetah", "HalfCheetah", 1000, native_reset_noise=True),
        RobotSpec("hopper", "Hopper", 1000, native_reset_noise=True),
        RobotSpec("humanoid", "Humanoid", 1000, native_reset_noise=True),
        RobotSpec("humanoidstandup", "HumanoidStandup", 1000),
        RobotSpec("inverted_pendulum", "InvertedPendulum", 1000),
        RobotSpec("inverted_double_pendulum", "InvertedDoublePendulum", 1000),
        RobotSpec("pusher", "Pusher", 100),
        RobotSpec("reacher", "Reacher", 50),
        RobotSpec("swimmer", "Swimmer", 1000, backends=("generalized",)),
        RobotSpec("walker2d", "Walker2d", 1000, native_reset_noise=True),
    )
}


def get_robot(name: str) -> RobotSpec:
    """Looks a robot up by its Brax name; the error lists the valid names."""
    if not isinstance(name, str) or name not in ROBOTS:
        raise ValueError(
            f"Unknown robot {name!r}; available: {', '.join(ROBOTS)}. Pass one of these names, e.g. robot='ant'."
        )
    return ROBOTS[name]


def resolve_backend(robot: RobotSpec, backend: str | None) -> str:
    """Returns the backend to use, validating it against the robot's list."""
    if backend is None:
        return robot.default_backend
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"Unknown backend {backend!r}; available: {', '.join(BACKENDS)} (default {DEFAULT_BACKEND!r})."
        )
    if backend not in robot.backends:
        raise ValueError(
            f"Robot {robot.name!r} has no {backend!r} backend in Brax; use one of: {', '.join(robot.backends)}."
        )
    return backend
