"""Joining a multi-process JAX run (several processes on one machine, or one per host).

Every process calls :func:`initialize` with the same coordinator address and
process count and its own process id, *before anything else uses JAX*
(creating an array, listing devices). Afterwards ``jax.devices()`` lists the
devices of all processes and ``gradgym.agents.train(..., devices=None)`` splits
the env batch over all of them (see ``docs/scaling.md``, "Several processes / hosts").

On CPU the cross-process collectives (all-reduces of the gradient and the
statistics) need an implementation; :func:`initialize` selects gloo there.

The values can also come from the environment (what ``gradgym train`` reads when
its flags are not given): ``GRADGYM_COORDINATOR`` (``HOST:PORT``),
``GRADGYM_NUM_PROCESSES`` and ``GRADGYM_PROCESS_ID``.
"""

from __future__ import annotations

import os
from typing import Any

ENV_COORDINATOR = "GRADGYM_COORDINATOR"
ENV_NUM_PROCESSES = "GRADGYM_NUM_PROCESSES"
ENV_PROCESS_ID = "GRADGYM_PROCESS_ID"


def check_coordinator(coordinator: Any) -> str:
    """``coordinator`` as ``HOST:PORT`` (port 1 to 65535); ``ValueError`` naming it otherwise."""
    if not isinstance(coordinator, str) or ":" not in coordinator:
        raise ValueError(
            f"coordinator must be 'HOST:PORT' (the address of process 0, e.g. '10.0.0.1:12355' or "
            f"'127.0.0.1:12355' for processes on one machine), got {coordinator!r}."
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"coordinator must be 'HOST:PORT' with a port from 1 to 65535 (e.g. '127.0.0.1:12355'), got {coordinator!r}."
        )
    return coordinator


def check_layout(num_processes: Any, process_id: Any) -> tuple[int, int]:
    """``(num_processes, process_id)`` as ints, ``num_processes >= 1`` and ``0 <= process_id < num_processes``."""
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes must be an int >= 1 (the number of processes in the run), got {num_processes!r}.")
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id must be an int from 0 to {num_processes - 1} (num_processes={num_processes}; each process "
            f"gets its own, process 0 runs the coordinator), got {process_id!r}."
        )
    return num_processes, process_id


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an int, got {text!r}.") from None


def from_env(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> tuple[str, int, int] | None:
    """The given values, the missing ones read from ``GRADGYM_*``; ``None`` when none is set anywhere.

    Raises:
        ValueError: some but not all of the three are set, or a value is malformed.
    """
    values = {
        "coordinator (--coordinator / GRADGYM_COORDINATOR)": coordinator or os.environ.get(ENV_COORDINATOR) or None,
        "num_processes (--num-processes / GRADGYM_NUM_PROCESSES)":
            num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES),
        "process_id (--process-id / GRADGYM_PROCESS_ID)":
            process_id if process_id is not None else _env_int(ENV_PROCESS_ID),
    }
    if all(v is None for v in values.values()):
        return None
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"a multi-process run needs all of coordinator, num_processes and process_id; missing {', '.join(missing)}.")
    c, n, i = values.values()
    n, i = check_layout(n, i)
    return check_coordinator(c), n, i


def initialize(coordinator: str, num_processes: int, process_id: int, platform: str | None = None) -> None:
    """Joins this process to a run of ``num_processes`` (``jax.distributed.initialize``).

    Args:
        coordinator: ``HOST:PORT`` of process 0 (it listens there; the others connect).
        num_processes: processes in the run (e.g. one per host).
        process_id: this process's index, ``0 .. num_processes - 1``.
        platform: the JAX platform the run uses; ``None`` = ``JAX_PLATFORMS`` if it names one, else
            ``"cpu"`` when no accelerator plugin is configured. On CPU gloo collectives are selected.

    Raises:
        ValueError: a malformed value (named, with the fix).
    """
    check_coordinator(coordinator)
    check_layout(num_processes, process_id)
    import jax

    platform = platform or (os.environ.get("JAX_PLATFORMS") or os.environ.get("JAX_PLATFORM_NAME") or "").split(",")[0]
    if platform in ("", "cpu"):
        # Harmless where the run ends up on an accelerator: it only selects the CPU client's collectives.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)


def is_main_process() -> bool:
    """True in process 0 (the one that prints progress and writes checkpoints), and in a single-process run."""
    import jax

    return jax.process_index() == 0
