"""Validation predicates shared by every layer; each caller writes its own error message for people."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_int(value: Any, low: int = 1, *, numpy_ok: bool = False) -> bool:
    """True when ``value`` is an int (not a bool) ``>= low``; ``numpy_ok`` also accepts numpy integers."""
    types = (int, np.integer) if numpy_ok else int
    return not isinstance(value, bool) and isinstance(value, types) and value >= low
