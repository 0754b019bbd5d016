"""Scale-out with JAX's own sharding: env batches and ES populations over devices.

A 1-D :class:`~jax.sharding.Mesh` with one axis, ``"batch"``, spans the chosen
devices. Arrays whose leading axis is the env batch (``num_envs``) or the ES
population get ``NamedSharding(mesh, P("batch"))``: each device holds
``batch / n_devices`` robots. Everything else (parameters, optimiser state,
observation statistics, keys) is replicated (``P()``). ``jax.jit`` then
partitions the whole jitted step from these input shardings (GSPMD): each
device simulates its slice of the batch and the gradient/statistics reductions
become cross-device all-reduces. Nothing here is CPU- or GPU-specific; on one
CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` fakes 4 devices.

Multi-host: call ``jax.distributed.initialize()`` (``gradgym.distributed.initialize``
sets up CPU collectives too) in every process (one per host, or one per
accelerator) *before anything else touches JAX*; afterwards
``jax.devices()`` lists the devices of all hosts, ``resolve_devices(None)``
uses them all and :func:`place_state` builds global arrays from the (identical)
host-local values each process computed from the same seed. Every process must
run the same program (same agent, config and seed).

Example::

    mesh = make_mesh(4)                      # the first 4 of jax.devices()
    env_state = shard_batch(env_state, mesh) # leading axis split 4 ways
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "batch"
"""Name of the mesh axis the env batch / ES population is split along."""


def resolve_devices(devices: int | str | Sequence[jax.Device] | None = None) -> list[jax.Device]:
    """The devices to use: ``None``/``"all"`` = all of ``jax.devices()``, an int n = the first n.

    A list of ``jax.Device`` objects is returned as a list unchanged.

    Raises:
        ValueError: ``devices`` is not positive, more than are available, or not an int.
    """
    available = jax.devices()
    if devices is None or (isinstance(devices, str) and devices.lower() == "all"):
        return list(available)
    if isinstance(devices, (list, tuple)) and devices and all(isinstance(d, jax.Device) for d in devices):
        return list(devices)
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)):
        raise ValueError(f"devices must be a positive int, None or 'all', got {devices!r}.")
    n = int(devices)
    if n < 1:
        raise ValueError(f"devices must be a positive int (1 to {len(available)} here), None or 'all', got {n}.")
    if n > len(available):
        raise ValueError(
            f"devices={n} is not available: jax.devices() has {len(available)} {available[0].platform} "
            f"device(s); pass 1 to {len(available)}, or None/'all' for all of them. (On CPU, "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N set before JAX starts fakes N devices.)"
        )
    return list(available[:n])


def make_mesh(devices: int | str | Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` over :func:`resolve_devices` ``(devices)``.

    The axis is ``AxisType.Auto``: shardings propagate through ``jit`` (GSPMD)
    without explicit-sharding type rules.
    """
    devs = resolve_devices(devices)
    return Mesh(np.asarray(devs), (AXIS,), axis_types=(AxisType.Auto,))


def check_divisible(batch_size: int, mesh: Mesh, what: str = "batch size") -> None:
    """``ValueError`` naming ``what`` and the device count unless ``batch_size`` splits evenly."""
    n = mesh.size
    if batch_size % n:
        lo, hi = (batch_size // n) * n, -(-batch_size // n) * n
        fix = f"{hi}" if lo == 0 else f"{lo} or {hi}"
        raise ValueError(
            f"{what} ({batch_size}) is not divisible by the number of devices ({n}): each device must hold "
            f"the same number of envs. Set {what} to a multiple of {n} (e.g. {fix}) or pass devices= a divisor "
            f"of {batch_size}."
        )


def _put(x: Any, sharding: NamedSharding) -> jax.Array:
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    # Multi-host: every process holds the same full value; each contributes its own devices' slices.
    host = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array leaf of ``tree`` replicated on every device of ``mesh`` (``P()``)."""
    rep = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: _put(x, rep), tree)


def shard_batch(tree: Any, mesh: Mesh, batch_size: int | None = None, what: str = "batch size") -> Any:
    """Places ``tree`` on ``mesh``: leaves whose leading axis is the batch are split, the rest replicated.

    Args:
        tree: a pytree of arrays (e.g. a vmapped env ``State``).
        mesh: from :func:`make_mesh`.
        batch_size: the batch (leading-axis) size; ``None`` = the leading axis of the first
            leaf with one.
        what: how to name the batch size in errors (e.g. ``"num_envs"``).

    Raises:
        ValueError: ``batch_size`` is not divisible by ``mesh.size``.
    """
    leaves = jax.tree.leaves(tree)
    if batch_size is None:
        batch_size = next((np.shape(x)[0] for x in leaves if np.ndim(x) >= 1), None)
        if batch_size is None:
            return replicate(tree, mesh)
    check_divisible(batch_size, mesh, what)
    split, rep = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
    return jax.tree.map(lambda x: _put(x, split if np.ndim(x) >= 1 and np.shape(x)[0] == batch_size else rep), tree)


def state_shardings(ts: Any, mesh: Mesh, batch_size: int) -> Any:
    """The shardings :func:`place_state` gives ``ts`` (leaves may be arrays or ``jax.ShapeDtypeStruct``)."""
    split, rep = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())

    def batched(x: Any) -> NamedSharding:
        return split if len(x.shape) >= 1 and x.shape[0] == batch_size else rep

    if not hasattr(ts, "env_state"):
        return jax.tree.map(lambda _: rep, ts)
    return jax.tree.map(lambda _: rep, ts.replace(env_state=())).replace(env_state=jax.tree.map(batched, ts.env_state))


def place_state(ts: Any, mesh: Mesh, batch_size: int, what: str = "num_envs") -> Any:
    """A training state on ``mesh``: ``ts.env_state`` split along its batch axis, the rest replicated.

    ``ts`` is a flax ``struct.dataclass`` with an ``env_state`` field (apg, ppo,
    es, shac) whose leaves have the batch as leading axis; ``jax.jit``
    propagates these shardings through the agent's ``iterate``.

    Raises:
        ValueError: ``batch_size`` is not divisible by the number of devices.
    """
    check_divisible(batch_size, mesh, what)
    return jax.tree.map(_put, ts, state_shardings(ts, mesh, batch_size))


@functools.lru_cache(maxsize=32)
def sharded_iterate(agent: Any, mesh: Mesh, batch_size: int) -> Callable:
    """``agent.iterate`` jitted with the state's shardings fixed on input and output.

    Pinning ``out_shardings`` to the :func:`place_state` layout means every
    iteration sees the same input shardings, so the step compiles once
    (``_cache_size() == 1``) whatever GSPMD would have picked for outputs; the
    metrics come back replicated. Call it under ``with mesh_context(mesh)`` so
    the agent's :func:`constrain_batch` calls see the mesh. Cached per
    (agent, mesh, batch), like the agents themselves.
    """
    template = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    shardings = state_shardings(template, mesh, batch_size)
    return jax.jit(agent.iterate, in_shardings=(shardings,), out_shardings=(shardings, NamedSharding(mesh, P())))


def mesh_context(mesh: Mesh) -> contextlib.AbstractContextManager:
    """``jax.set_mesh(mesh)`` for a multi-device mesh; a no-op context for one device.

    One device keeps JAX's default placement, so single-device runs compile
    exactly the programs they did without a mesh.
    """
    return jax.set_mesh(mesh) if mesh.size > 1 else contextlib.nullcontext()


class BatchPlacer:
    """For the vector-env shells: ``placer(outputs)`` lays a batched step's outputs over the devices.

    ``devices=None`` means no sharding: the placer returns its argument unchanged
    and the shell runs on JAX's default device as before. Otherwise every output
    leaf whose leading axis is ``num_envs`` is split over the mesh (the rest
    replicated), so the next jitted step always receives the same input shardings
    (one compiled program) and each device steps its share of the envs.

    Raises:
        ValueError: bad ``devices`` or ``num_envs`` not divisible by the device count.
    """

    def __init__(self, devices: int | str | Sequence[jax.Device] | None, num_envs: int):
        self.mesh = None if devices is None else make_mesh(devices)
        self.num_envs = num_envs
        if self.mesh is not None:
            check_divisible(num_envs, self.mesh, "num_envs")

    def __call__(self, tree: Any) -> Any:
        if self.mesh is None:
            return tree
        return shard_batch(tree, self.mesh, self.num_envs, "num_envs")


def constrain_batch(tree: Any) -> Any:
    """Inside ``jit``: split the leading axis of every leaf over the ``"batch"`` axis of the mesh in context.

    A no-op unless a mesh with a ``"batch"`` axis of more than one device is set
    (``with jax.set_mesh(mesh)``), so agents can call it unconditionally: ES uses
    it on the population that evosax's ``ask`` creates inside the jitted step.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or AXIS not in mesh.axis_names or mesh.shape[AXIS] == 1:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, P(AXIS)) if np.ndim(x) >= 1 else x, tree)
