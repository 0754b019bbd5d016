"""Safe, versioned checkpoints (no pickle), written atomically.

File layout::

    b"GRADGYM-CKPT\\n"              magic (foreign files are rejected)
    8 bytes little-endian          length of the JSON header
    JSON header                    format_version, agent, config, env options,
                                   iteration, env_steps, seed, history,
                                   body length and SHA-256
    msgpack body                   flax.serialization of the training state

The body is a flax state dict (arrays as msgpack ext types); it is restored
into a template built by the agent for the same config, and every leaf's
shape and dtype is checked, so a truncated, corrupt, foreign or mismatched
file raises :class:`CheckpointError` naming the file and the problem.

A kill at any moment leaves either the previous files or the new one, never a
partial ``ckpt_*.gradgym`` (the writer renames a complete temp file into
place); leftover ``.ckpt_*.tmp`` files are never read and are removed by the
next save. :func:`load_latest_checkpoint` (what ``resume=True`` uses) falls
back to the previous checkpoint, with a warning, when the newest one is
truncated or corrupt (a failing disk, a bad copy).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from gradgym.envs.spring_grad import resolve_grad_path
from gradgym.fileio import atomic_write

MAGIC = b"GRADGYM-CKPT\n"
FORMAT_VERSION = 1
PATTERN = re.compile(r"^ckpt_(\d{8})\.gradgym$")
TMP_PATTERN = re.compile(r"^\.ckpt_\d{8}\.gradgym\..*\.tmp$")  # gradgym.fileio.atomic_write's temp files


def env_options(env: Any) -> dict[str, Any]:
    """JSON-safe description of a ``BraxEnv`` (stored in checkpoint headers and reports)."""
    opts = {"robot": env.robot, "backend": env.backend, "episode_length": env.episode_length, "dtype": env.dtype,
            "noise": dataclasses.asdict(env.noise)}
    if env.grad_path != resolve_grad_path(env.backend, None):
        # Only a non-default path is recorded, so headers written before grad_path existed still match.
        opts["grad_path"] = env.grad_path
    return json.loads(json.dumps(opts))


class CheckpointError(ValueError):
    """A checkpoint could not be loaded; the message names the file and the problem."""


class CorruptCheckpointError(CheckpointError):
    """The file itself is damaged (foreign bytes, truncated, checksum mismatch), not merely from another run."""


def checkpoint_path(directory: str | os.PathLike, iteration: int) -> Path:
    return Path(directory) / f"ckpt_{iteration:08d}.gradgym"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The checkpoint files in ``directory``, oldest iteration first (temp files excluded)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest iteration in ``directory`` (``None`` if none)."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(path: str | os.PathLike, state: Any, header: dict[str, Any], keep: int = 2) -> Path:
    """Writes ``state`` (a pytree) with ``header`` to ``path``; keeps the newest ``keep`` siblings."""
    body = serialization.to_bytes(jax.device_get(state))
    header = {**header, "format_version": FORMAT_VERSION, "body_bytes": len(body),
              "body_sha256": hashlib.sha256(body).hexdigest()}
    head = json.dumps(header, sort_keys=True).encode()
    atomic_write(path, MAGIC + len(head).to_bytes(8, "little") + head + body)
    path = Path(path)
    for p in list_checkpoints(path.parent)[:-keep]:
        p.unlink()
    for p in path.parent.iterdir():  # temp files of writes that were killed
        if TMP_PATTERN.match(p.name):
            p.unlink(missing_ok=True)
    return path


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """Returns (header, body) after checking magic, version, length and checksum."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"Cannot read checkpoint {str(path)!r}: {e}.") from None
    if not data.startswith(MAGIC):
        raise CorruptCheckpointError(
            f"{str(path)!r} is not a gradgym checkpoint (missing the GRADGYM-CKPT magic); "
            "pass a file written by gradgym's train(checkpoint_dir=...)."
        )
    pos = len(MAGIC)
    if len(data) < pos + 8:
        raise CorruptCheckpointError(f"Checkpoint {str(path)!r} is truncated (no header length); delete it and retrain.")
    n = int.from_bytes(data[pos : pos + 8], "little")
    try:
        header = json.loads(data[pos + 8 : pos + 8 + n].decode())
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: deeply nested JSON
        raise CorruptCheckpointError(f"Checkpoint {str(path)!r} has a corrupt header ({e}); delete it and retrain.") from None
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {str(path)!r} has format version {version!r}; this gradgym reads version {FORMAT_VERSION}."
        )
    body = data[pos + 8 + n :]
    if len(body) != header.get("body_bytes"):
        raise CorruptCheckpointError(
            f"Checkpoint {str(path)!r} is truncated or padded: body has {len(body)} bytes, header says "
            f"{header.get('body_bytes')}; delete it and resume from an older one."
        )
    if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise CorruptCheckpointError(f"Checkpoint {str(path)!r} is corrupt (SHA-256 mismatch); delete it and retrain.")
    return header, body


def load_checkpoint(path: str | os.PathLike, template: Any, expect: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Restores the state saved at ``path`` into ``template``'s structure.

    Args:
        path: checkpoint file.
        template: a state pytree of the same agent/config (e.g. ``agent.init(key)``).
        expect: header fields that must match (agent, config, env, seed).

    Returns:
        (state, header).
    """
    header, body = read_header(path)
    for k, v in expect.items():
        got = header.get(k)
        if got != v:
            if isinstance(got, dict) and isinstance(v, dict):  # name the fields that differ, not two whole dicts
                absent = "<absent: the class default>"
                fields = ", ".join(f"{f!r} is {got.get(f, absent)!r} in the file but {v.get(f, absent)!r} here"
                                   for f in sorted(set(got) | set(v)) if got.get(f, absent) != v.get(f, absent))
                what = f"its {k} differs: {fields}"
            else:
                what = f"{k} is {got!r} in the file but {v!r} here"
            raise CheckpointError(
                f"Checkpoint {str(path)!r} does not match this run: {what}; resume with the same agent, env, "
                "config and seed (pass the file's values, e.g. --config, where a default has changed since), or "
                "use a fresh checkpoint_dir."
            )
    try:
        raw = serialization.msgpack_restore(body)
        state = serialization.from_state_dict(template, raw)
    except Exception as e:  # msgpack/flax raise various types for bad data
        raise CheckpointError(f"Checkpoint {str(path)!r} cannot be restored: {type(e).__name__}: {e}.") from None
    want, got = jax.tree_util.tree_leaves_with_path(template), jax.tree_util.tree_leaves_with_path(state)
    if len(want) != len(got):
        raise CheckpointError(f"Checkpoint {str(path)!r} has {len(got)} arrays, expected {len(want)}.")
    for (kp, a), (_, b) in zip(want, got, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            raise CheckpointError(
                f"Checkpoint {str(path)!r}: array {jax.tree_util.keystr(kp)} is {b.dtype}{list(b.shape)}, "
                f"expected {a.dtype}{list(a.shape)} for this config."
            )
    return jax.tree.map(jax.numpy.asarray, state), header


def load_latest_checkpoint(
    directory: str | os.PathLike | None, template: Any, expect: dict[str, Any]
) -> tuple[Any, dict[str, Any] | None, Path | None]:
    """Restores the newest good checkpoint in ``directory`` (what ``train(resume=True)`` does).

    When the newest file is damaged (:class:`CorruptCheckpointError`) the
    previous one is tried; if one loads, the damaged newer files are renamed
    to ``<name>.corrupt`` (kept for inspection, never read again) with a
    warning. A file from another run (agent, config, env or seed differ)
    raises at once.

    Returns:
        ``(state, header, path)``, or ``(template, None, None)`` when the
        folder holds no checkpoint.

    Raises:
        CheckpointError: a mismatched file, or every checkpoint is damaged
            (the error of the newest one).
    """
    damaged: list[tuple[Path, CorruptCheckpointError]] = []
    for path in reversed(list_checkpoints(directory) if directory is not None else []):
        try:
            state, header = load_checkpoint(path, template, expect)
        except CorruptCheckpointError as e:
            damaged.append((path, e))
            continue
        for bad, e in damaged:
            aside = bad.with_name(bad.name + ".corrupt")
            os.replace(bad, aside)
            warnings.warn(f"{e} Moved it to {str(aside)!r} and resumed from {str(path)!r}.", stacklevel=2)
        return state, header, path
    if damaged:  # nothing good to fall back to: leave the files alone, report the newest
        raise damaged[0][1]
    return template, None, None
