"""The ``gradgym`` command. Each layer registers its own subcommands:

- ``gradgym.envs.cli``: ``list``, ``demo``, ``render``
- ``gradgym.agents.cli``: ``train``, ``compare``
- ``gradgym.diagnostics.cli``: ``diagnose``

A module exposes ``register(subparsers)``; each subparser sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = ("gradgym.envs.cli", "gradgym.agents.cli", "gradgym.diagnostics.cli")
DEFAULT_COMMAND = "compare"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradgym",
        description="Differentiable Brax robots; APG vs PPO vs ES; gradient diagnostics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a layer not installed in this build
            if e.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    from gradgym.cache import enable_compilation_cache

    if os.environ.get("GRADGYM_JAX_CACHE", "") != "off":
        # On by default: a second run skips most compiles. Exported so compare's worker processes share it.
        os.environ["GRADGYM_JAX_CACHE"] = str(enable_compilation_cache())
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        # No arguments: run the main job on its built-in default.
        default = DEFAULT_COMMAND if DEFAULT_COMMAND in parser._subparsers._group_actions[0].choices else "demo"
        argv = [default]
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"gradgym {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
