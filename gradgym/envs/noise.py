"""The noise model: reset, action and observation noise and physics randomisation.

Every draw comes from the key passed to ``BraxEnv.reset``: holding that key
fixed holds every noise source fixed (pathwise gradients); resampling it
resamples them (score-function / ES estimates).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def _check_range(name: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of floats or None, got {value!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"{name} must satisfy 0 < low <= high (finite), got {value!r}.")
    return (lo, hi)


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """The noise model; every draw comes from the key passed to ``reset``.

    Attributes:
        reset_noise_scale: scale of the initial-state noise. ``None`` keeps the
            robot's own Brax default. For robots whose Brax constructor takes
            ``reset_noise_scale`` (ant, halfcheetah, hopper, humanoid, walker2d)
            it replaces that value; for the others it adds U(-s, s) to the
            joint positions and s * N(0, 1) to the joint velocities on top of
            the robot's own reset distribution.
        action_noise: std of Gaussian noise added to every action before physics.
        obs_noise: std of Gaussian noise added to every observation.
        friction_range: ``(low, high)``: friction scale drawn U(low, high) per
            episode; ``None`` keeps it at 1.
        mass_range: ``(low, high)``: mass/inertia scale drawn U(low, high) per
            episode; ``None`` keeps it at 1.
    """

    reset_noise_scale: float | None = None
    action_noise: float = 0.0
    obs_noise: float = 0.0
    friction_range: tuple[float, float] | None = None
    mass_range: tuple[float, float] | None = None

    def __post_init__(self):
        for name in ("action_noise", "obs_noise"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite float >= 0, got {v!r}.")
            object.__setattr__(self, name, float(v))
        s = self.reset_noise_scale
        if s is not None:
            if not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
                raise ValueError(f"reset_noise_scale must be a finite float >= 0 or None, got {s!r}.")
            object.__setattr__(self, "reset_noise_scale", float(s))
        object.__setattr__(self, "friction_range", _check_range("friction_range", self.friction_range))
        object.__setattr__(self, "mass_range", _check_range("mass_range", self.mass_range))


NOISE_OPTIONS = tuple(f.name for f in dataclasses.fields(NoiseConfig))
"""Names of the noise options, accepted as keyword options by ``make`` and the shells."""
