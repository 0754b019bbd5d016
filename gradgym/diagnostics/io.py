"""Atomic JSON / npz writers and readers for diagnostics results (never pickle)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gradgym.fileio import atomic_write


def jsonable(x: Any) -> Any:
    """JSON-safe copy: arrays to lists, nan/inf to ``None``, numpy scalars to Python."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "__array__") and not isinstance(x, (float, int, bool, str)):
        a = np.asarray(x)
        return jsonable(a.item() if a.ndim == 0 else a.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, complex):
        return [jsonable(x.real), jsonable(x.imag)]
    return x


def _atomic_write(path: Path, write) -> Path:
    buf = io.BytesIO()
    write(buf)
    return atomic_write(path, buf.getvalue())


def save_json(path: str | Path, data: Any) -> Path:
    """Writes ``data`` (made JSON-safe by :func:`jsonable`) atomically."""
    text = json.dumps(jsonable(data), indent=1, allow_nan=False)
    return _atomic_write(Path(path), lambda f: f.write(text.encode()))


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No results file at {path}; run the diagnostic that writes it first.")
    return json.loads(path.read_text())


def save_npz(path: str | Path, **arrays: Any) -> Path:
    """Writes numpy arrays atomically (``np.savez_compressed``)."""
    return _atomic_write(Path(path), lambda f: np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()}))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Reads arrays saved by :func:`save_npz` (``allow_pickle=False``)."""
    with np.load(Path(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_text(path: str | Path, text: str) -> Path:
    """Writes UTF-8 text atomically."""
    return _atomic_write(Path(path), lambda f: f.write(text.encode()))
