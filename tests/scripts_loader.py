"""Imports a file of ``scripts/`` as a module, so a test can call its ``main(argv)`` in this process."""

import importlib.util
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "scripts"


def load_script(path: str | Path):
    """The module of ``scripts/<path>`` (a name such as ``"horizon_trace.py"``, or a full path)."""
    path = SCRIPTS_DIR / path
    spec = importlib.util.spec_from_file_location(f"_gradgym_script_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
