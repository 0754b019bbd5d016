"""Cheaper reverse mode through Brax's ``spring`` pipeline: ``make(..., grad_path=...)``.

A Brax spring env advances one control step with ``lax.scan`` over
``n_frames`` substeps of ``brax.spring.pipeline.step`` (ant 10, halfcheetah
16, reacher 4, ...). On CPU with 64 envs each XLA kernel of a substep touches
a few hundred floats, so a program costs about its number of kernel launches,
and reverse mode launches ~5.6x the forward's: every substep stacks its ~750
residual arrays (~14x the physics state) one by one, copies them out of the
nested substep scan, then runs the transposed substep (measured in
``scripts/profile_spring_grad.py``; see docs/benchmarks.md, "The spring
gradient's cost").

``grad_path`` picks how the substep scan is differentiated:

* ``"brax"``: Brax's own ``pipeline_step``, untouched.
* ``"remat"``: each substep is wrapped in
  ``jax.checkpoint(policy=nothing_saveable, prevent_cse=False)``, so the
  forward pass keeps only the physics state per substep and the backward
  pass recomputes a substep's intermediates just before transposing it. The
  forward program is the same computation (identical values), the gradient
  equals Brax's path up to float rounding (XLA fuses the recomputation
  differently), and memory per substep drops to the state.
* ``"fast"`` (the default on spring): ``"remat"`` plus one saving in the step itself: Brax's spring
  step converts the maximal coordinates back to joint coordinates ``(q, qd)``
  (``kinematics.inverse``) after every substep, but within a control step
  only the actuators' bias terms read them, and those are zero on every
  robot gradgym ships. ``"fast"`` computes ``(q, qd)`` once, after the last
  substep (it falls back to every substep when a robot has a nonzero bias).
  States, rewards and gradients equal Brax's up to float rounding.

Other backends always use Brax's own step (``grad_path`` must be ``None`` or
``"brax"`` there).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

GRAD_PATHS: tuple[str, ...] = ("brax", "remat", "fast")
DEFAULT_SPRING_GRAD_PATH = "fast"
"""Used on spring when ``grad_path=None``.

Measured in ``scripts/profile_spring_grad.py`` (64 envs, 4-step window, 2 cores):
the gradient runs 1.65x (ant) and 1.64x (halfcheetah) faster than on Brax's
path and the forward 1.22x / 1.29x; states and gradients equal Brax's to float
rounding (float64: gradients within 3e-14 relative at 4 steps; tested against
finite differences in ``tests/envs/test_grad_path.py``). ``grad_path="brax"``
gives Brax's own step, bit for bit.
"""


def resolve_grad_path(backend: str, grad_path: str | None) -> str:
    """Validates ``grad_path`` for ``backend``; ``None`` gives the backend's default."""
    if grad_path is not None and (not isinstance(grad_path, str) or grad_path not in GRAD_PATHS):
        raise ValueError(
            f"Unknown grad_path {grad_path!r}; available: {', '.join(GRAD_PATHS)} "
            f"(None = {DEFAULT_SPRING_GRAD_PATH!r}; backends other than spring take only 'brax')."
        )
    if backend != "spring":
        if grad_path not in (None, "brax"):
            raise ValueError(
                f"grad_path={grad_path!r} applies to the spring backend only, got backend={backend!r}; "
                "pass grad_path=None (or 'brax'), or backend='spring'."
            )
        return "brax"
    return DEFAULT_SPRING_GRAD_PATH if grad_path is None else grad_path


def actuator_bias_free(sys: Any) -> bool:
    """True when no actuator force depends on ``q`` or ``qd`` (all bias terms are zero)."""
    act = sys.actuator
    return not (np.any(np.asarray(act.bias_q) != 0) or np.any(np.asarray(act.bias_qd) != 0))


def substep(sys: Any, state: Any, act: jax.Array, with_q: bool = True) -> Any:
    """``brax.spring.pipeline.step`` (brax 0.14.2, debug off), with the ``(q, qd)`` update optional.

    With ``with_q=False`` the returned state keeps the incoming ``q``/``qd``;
    every other field is Brax's.
    """
    from brax import actuator, com, fluid, kinematics
    from brax.base import Motion
    from brax.spring import collisions, integrator, joints

    state = state.replace(i_inv=com.inv_inertia(sys, state.x))
    tau = actuator.to_tau(sys, act, state.q, state.qd)
    xdd_i = Motion.create(vel=sys.gravity)
    xf_i = joints.resolve(sys, state, tau)
    if sys.enable_fluid:
        inertia = sys.link.inertia.i ** (1 - sys.spring_inertia_scale)
        xf_i += fluid.force(sys, state.x, state.xd, state.mass, inertia)
    xdd_i += Motion(
        ang=jax.vmap(lambda x, y: x @ y)(state.i_inv, xf_i.ang),
        vel=jax.vmap(lambda x, y: x / y)(xf_i.vel, state.mass),
    )
    state = state.replace(xd_i=state.xd_i + xdd_i * sys.opt.timestep)
    xdv_i = collisions.resolve(sys, state)
    x_i, xd_i = integrator.integrate(sys, state.x_i, state.xd_i, xdv_i)
    x, xd = com.to_world(sys, x_i, xd_i)
    j, jd, a_p, a_c = kinematics.world_to_joint(sys, x, xd)
    state = state.replace(x=x, xd=xd, x_i=x_i, xd_i=xd_i, j=j, jd=jd, a_p=a_p, a_c=a_c)
    if with_q:
        q, qd = kinematics.inverse(sys, j, jd)
        state = state.replace(q=q, qd=qd)
    return state


def spring_pipeline_step(brax_env: Any, grad_path: str):
    """A replacement for ``brax_env.pipeline_step`` (a spring ``PipelineEnv``) on ``grad_path``.

    Returns ``None`` for ``"brax"`` (keep Brax's). The system is read from
    ``brax_env.sys`` at trace time, so gradgym's scaled (friction, mass)
    system reaches the physics as it does on Brax's path.
    """
    if grad_path not in GRAD_PATHS:
        raise ValueError(f"Unknown grad_path {grad_path!r}; available: {', '.join(GRAD_PATHS)}.")
    if grad_path == "brax":
        return None
    from brax import kinematics
    from brax.spring import pipeline

    n_frames = int(brax_env._n_frames)
    debug = bool(getattr(brax_env, "_debug", False))
    lean = grad_path == "fast" and not debug and actuator_bias_free(brax_env.sys)

    def pipeline_step(pipeline_state: Any, action: jax.Array) -> Any:
        sys = brax_env.sys
        if lean:
            def one(state):
                return substep(sys, state, action, with_q=False)
        else:
            def one(state):
                return pipeline.step(sys, state, action, debug)
        one = jax.checkpoint(one, policy=jax.checkpoint_policies.nothing_saveable, prevent_cse=False)
        state = jax.lax.scan(lambda s, _: (one(s), None), pipeline_state, (), n_frames)[0]
        if lean:
            q, qd = kinematics.inverse(sys, state.j, state.jd)
            state = state.replace(q=q, qd=qd)
        return state

    return pipeline_step
