"""Benchmark and profile (not a test): what the gradient of a spring window costs, and why.

For each robot and window length it builds the loss of a batch of ``--envs``
robots that each run a tanh-linear policy for the window from a reset state
(``-mean(sum of rewards)``), then compiles ``jit(loss)`` (the forward) and
``jit(grad(loss))`` w.r.t. the policy's weights, on each physics path:

* ``raw``: Brax's own ``brax_env.step`` (the reference: no gradgym code at all);
* ``brax``, ``remat``, ``fast``: gradgym's ``BraxEnv.step`` with
  ``make(robot, grad_path=...)`` (see ``gradgym/envs/spring_grad.py``).

It reports, per path: first-compile seconds, jaxpr / StableHLO / optimised HLO
sizes, forward and gradient env-steps/s (best of ``--rounds`` interleaved
windows of ``--seconds``, so every path sees the same machine load), the ratio
gradient / forward, the XLA kernels executed per call and where their time
goes (JAX profiler; the parts of Brax's spring substep are tagged with
``jax.named_scope``: contact detection, collision impulses, joint forces,
integration, kinematics, inverse inertia, actuators; each in the forward, the
backward's recomputation, or the transposed backward), and the gradient's
difference from the ``brax`` path in float32 (same batch) and float64
(``--f64-envs`` envs, ``dtype="float64"``).

Usage::

    python scripts/profile_spring_grad.py --out docs/spring_grad.json        # ant + halfcheetah, 4 and 32 steps (~1 h on 2 loaded cores)
    python scripts/profile_spring_grad.py --out docs/spring_grad.json --resume   # after an interruption: redo only missing cases
    python scripts/profile_spring_grad.py --float32-errors --out docs/spring_grad_f32.json   # float32 vs float64 gradients only
    python scripts/profile_spring_grad.py --robots reacher --windows 2 --envs 4 --f64-envs 2   # smoke run
    python scripts/profile_spring_grad.py --table docs/spring_grad.json   # the markdown table of a stored run

Each robot and window runs in a fresh child process (its memory is returned
and no compiled code is shared); ``--out`` is rewritten after every case.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import glob
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

VARIANTS = ("raw", "brax", "remat", "fast")
SCOPES = ("contact_detection", "collision_impulse", "joint_forces", "integrator", "kinematics", "inv_inertia", "actuator")
"""Named scopes put around Brax's functions; the first that appears in an op's name path wins."""


@contextlib.contextmanager
def scoped_brax():
    """Wraps the parts of Brax's spring substep in ``jax.named_scope`` (metadata only; restored after)."""
    from brax import actuator, com, contact, kinematics
    from brax.spring import collisions, integrator, joints

    targets = [
        (contact, "get", "contact_detection"),  # mjx collision: which geom pairs touch, distance, frame
        (collisions, "resolve", "collision_impulse"),  # impulses from contacts (calls contact.get)
        (joints, "resolve", "joint_forces"),
        (integrator, "integrate", "integrator"),
        (com, "to_world", "integrator"),
        (kinematics, "world_to_joint", "kinematics"),
        (kinematics, "inverse", "kinematics"),
        (com, "inv_inertia", "inv_inertia"),
        (actuator, "to_tau", "actuator"),
    ]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]

    def scoped(fn, scope):
        def wrapper(*args, **kwargs):
            with jax.named_scope(scope):
                return fn(*args, **kwargs)

        return wrapper

    for mod, name, scope in targets:
        setattr(mod, name, scoped(getattr(mod, name), scope))
    try:
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def window_loss(robot: str, variant: str, window: int, n_envs: int, dtype: str = "float32"):
    """``(loss, params, states)``: ``loss(params, states)`` = -mean over envs of the window's summed reward."""
    from gradgym.envs import make

    env = make(robot, "spring", dtype=dtype, grad_path="brax" if variant == "raw" else variant)
    keys = jax.random.split(jax.random.PRNGKey(0), n_envs)
    states = jax.jit(jax.vmap(env.reset))(keys)
    step = env.step
    if variant == "raw":  # Brax's own step from the same physics states
        step, states = env.brax_env.step, states.inner
    f = jnp.float64 if dtype == "float64" else jnp.float32
    kw, kb = jax.random.split(jax.random.PRNGKey(1))
    params = {
        "w": 0.1 * jax.random.normal(kw, (states.obs.shape[-1], env.action_size), f),
        "b": 0.1 * jax.random.normal(kb, (env.action_size,), f),
    }

    def one(p, s):
        def body(s, _):
            s = step(s, jnp.tanh(s.obs @ p["w"] + p["b"]))
            return s, s.reward

        return jnp.sum(jax.lax.scan(body, s, None, window)[1])

    def loss(p, s):
        return -jnp.mean(jax.vmap(one, in_axes=(None, 0))(p, s))

    return loss, params, states


def compile_timed(fn, *args) -> tuple[object, dict]:
    t = time.perf_counter()
    traced = jax.jit(fn).trace(*args)
    jaxpr_lines = str(traced.jaxpr).count("\n")
    lowered = traced.lower()
    t_lower = time.perf_counter() - t
    t = time.perf_counter()
    compiled = lowered.compile()
    t_compile = time.perf_counter() - t
    return compiled, {
        "trace_lower_s": round(t_lower, 1),
        "compile_s": round(t_compile, 1),
        "jaxpr_lines": jaxpr_lines,
        "stablehlo_lines": lowered.as_text().count("\n"),
        "hlo_lines": compiled.as_text().count("\n"),
    }


def seconds_per_call(f, args, seconds: float) -> float:
    jax.block_until_ready(f(*args))
    n, t0 = 0, time.perf_counter()
    while True:
        jax.block_until_ready(f(*args))
        n += 1
        if time.perf_counter() - t0 >= seconds:
            return (time.perf_counter() - t0) / n


# -- profile --------------------------------------------------------------------------------------


def hlo_ops(text: str) -> dict[str, tuple[str, str]]:
    """Instruction name -> (opcode, op_name metadata) of an optimised HLO module.

    A fusion without metadata takes the most common op_name of its fused computation.
    """
    info, comps, cur = {}, collections.defaultdict(list), None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.rstrip().endswith("{"):
            m = re.match(r"^(?:ENTRY )?%?([\w.\-]+)", line)
            cur = m.group(1) if m else None
            continue
        m = re.match(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.*)$", line)
        if not m:
            continue
        name, rest = m.groups()
        op = re.search(r"(?<![\w\[])([a-z][\w\-]*)\(", rest)
        meta = re.search(r'op_name="([^"]*)"', rest)
        calls = re.search(r"calls=%?([\w.\-]+)", rest)
        info[name] = [op.group(1) if op else "?", meta.group(1) if meta else None, calls.group(1) if calls else None]
        comps[cur].append(name)
    for v in info.values():
        if v[1] is None and v[2] is not None:
            names = [info[n][1] for n in comps.get(v[2], []) if info[n][1]]
            if names:
                v[1] = collections.Counter(names).most_common(1)[0][0]
    return {k: (v[0], v[1]) for k, v in info.items()}


def classify(op_name: str | None) -> tuple[str, str]:
    """(part of the substep, phase) of one kernel from its op_name path."""
    if op_name is None:
        return "untagged", "untagged"
    if "rematted_computation" in op_name:
        phase = "bwd-recompute"
    elif "transpose(" in op_name:
        phase = "bwd"
    else:
        phase = "fwd"
    for scope in SCOPES:
        if f"/{scope}/" in op_name or op_name.endswith(f"/{scope}"):
            return scope, phase
    return "other", phase


def profile(compiled, args, calls: int = 1) -> dict:
    """Kernels executed per call and their summed durations, by (part, phase) and by opcode.

    Durations come from JAX's profiler and include its per-kernel overhead, so
    compare shares, not absolute times; leaf kernels only (while loops excluded).
    """
    from jax.profiler import ProfileData

    ops = hlo_ops(compiled.as_text())
    jax.block_until_ready(compiled(*args))
    tmp = tempfile.mkdtemp(prefix="spring_grad_trace_")
    try:
        with jax.profiler.trace(tmp):
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
        data = ProfileData.from_file(glob.glob(os.path.join(tmp, "**", "*.xplane.pb"), recursive=True)[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ms, count, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                if event.name not in ops or ops[event.name][0] in ("while", "conditional", "call"):
                    continue
                opcode, op_name = ops[event.name]
                key = "/".join(classify(op_name))
                ms[key] += event.duration_ns / 1e6 / calls
                count[key] += 1 / calls
                by_op[opcode] += event.duration_ns / 1e6 / calls
    return {
        "kernels_per_call": round(sum(count.values())),
        "profiled_ms": round(sum(ms.values()), 2),
        "parts": {k: {"ms": round(v, 2), "kernels": round(count[k])} for k, v in ms.most_common()},
        "by_opcode_ms": {k: round(v, 2) for k, v in by_op.most_common(8)},
    }


# -- gradient error ------------------------------------------------------------------------------


def flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def grad_error(g, ref) -> dict:
    d = np.abs(g - ref)
    return {
        "max_abs": float(d.max()),
        "max_rel": float(d.max() / np.abs(ref).max()),
        "norm_rel": float(np.linalg.norm(g - ref) / np.linalg.norm(ref)),
        "bit_identical": bool(np.array_equal(g, ref)),
    }


def float32_errors(robot: str, window: int, variants, n_envs: int) -> dict:
    """Each path's float32 gradient against Brax's float64 one on the same batch and weights.

    Brax's own row is the float32 rounding floor: how far float32 alone moves the gradient.
    """
    grads, params32 = {}, None
    for v in [v for v in variants if v != "raw"]:
        loss, params, states = window_loss(robot, v, window, n_envs)
        params32 = params
        grads[v] = flat(jax.jit(jax.grad(loss))(params, states))
    with jax.enable_x64(True):
        loss, _, states = window_loss(robot, "brax", window, n_envs, "float64")
        ref = flat(jax.jit(jax.grad(loss))(jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params32), states))
    return {v: grad_error(g, ref) for v, g in grads.items()}


# -- driver --------------------------------------------------------------------------------------


def run_case(robot: str, window: int, variants, n_envs: int, seconds: float, rounds: int, f64_envs: int,
             do_profile: bool) -> dict:
    fns, rows = {}, {}
    for v in variants:
        loss, params, states = window_loss(robot, v, window, n_envs)
        fwd, info_f = compile_timed(loss, params, states)
        grad, info_g = compile_timed(jax.grad(loss), params, states)
        fns[v] = (fwd, grad, (params, states))
        rows[v] = {"forward": info_f, "gradient": info_g}
        print(f"  {robot} {window:>2} steps {v:>5}: compiled forward {info_f['compile_s']} s, "
              f"gradient {info_g['compile_s']} s (trace+lower {info_g['trace_lower_s']} s)", flush=True)
    best = {(v, k): float("inf") for v in variants for k in ("forward", "gradient")}
    for _ in range(rounds):  # interleaved, so every path sees the same load
        for v in variants:
            fwd, grad, args = fns[v]
            best[(v, "forward")] = min(best[(v, "forward")], seconds_per_call(fwd, args, seconds))
            best[(v, "gradient")] = min(best[(v, "gradient")], seconds_per_call(grad, args, seconds))
    ref = flat(fns["brax"][1](*fns["brax"][2])) if "brax" in fns else None
    for v in variants:
        fwd, grad, args = fns[v]
        r = rows[v]
        r["forward"]["steps_per_s"] = round(n_envs * window / best[(v, "forward")])
        r["gradient"]["steps_per_s"] = round(n_envs * window / best[(v, "gradient")])
        r["ratio"] = round(best[(v, "gradient")] / best[(v, "forward")], 2)
        if "brax" in fns:
            r["ratio_to_brax_forward"] = round(best[(v, "gradient")] / best[("brax", "forward")], 2)
            r["grad_error_f32"] = grad_error(flat(grad(*args)), ref)
        if do_profile:
            r["forward"]["profile"] = profile(fwd, args)
            r["gradient"]["profile"] = profile(grad, args)
        print(f"  {robot} {window:>2} steps {v:>5}: forward {r['forward']['steps_per_s']:,} steps/s, gradient "
              f"{r['gradient']['steps_per_s']:,} steps/s, ratio {r['ratio']}x", flush=True)
    del fns
    if f64_envs and "brax" in variants:
        with jax.enable_x64(True):
            grads = {}
            for v in [v for v in variants if v != "raw"]:
                loss, params, states = window_loss(robot, v, window, f64_envs, "float64")
                grads[v] = flat(jax.jit(jax.grad(loss))(params, states))
            for v, g in grads.items():
                rows[v]["grad_error_f64"] = grad_error(g, grads["brax"])
    return rows


def fmt_err(e: dict | None) -> str:
    if e is None:
        return ""
    return "bit-identical" if e["bit_identical"] else f"{e['max_rel']:.1e}"


def markdown(results: dict) -> str:
    lines = [
        "| robot | window | path | forward steps/s | gradient steps/s | gradient / forward | gradient / brax forward "
        "| kernels/call fwd → grad | grad err f32 | grad err f64 | compile fwd / grad (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for case in results["cases"]:
        if "error" in case:
            lines.append(f"| {case['robot']} | {case['window']} | (failed: {case['error']}) |")
            continue
        for v, r in case["rows"].items():
            kf = r["forward"].get("profile", {}).get("kernels_per_call")
            kg = r["gradient"].get("profile", {}).get("kernels_per_call")
            kernels = f"{kf:,} → {kg:,}" if kf else ""
            lines.append(
                f"| {case['robot']} | {case['window']} | {v} | {r['forward']['steps_per_s']:,} | "
                f"{r['gradient']['steps_per_s']:,} | {r['ratio']:.2f}x | {r.get('ratio_to_brax_forward', float('nan')):.2f}x | "
                f"{kernels} | {fmt_err(r.get('grad_error_f32'))} | {fmt_err(r.get('grad_error_f64'))} | "
                f"{r['forward']['compile_s']} / {r['gradient']['compile_s']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", nargs="+", default=["ant", "halfcheetah"])
    p.add_argument("--windows", nargs="+", type=int, default=[4, 32])
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--seconds", type=float, default=0.5, help="length of one timing window")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing windows per function (best is kept)")
    p.add_argument("--f64-envs", type=int, default=8, help="batch for the float64 gradient check (0: skip it)")
    p.add_argument("--no-profile", action="store_true", help="skip the JAX-profiler breakdown")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--float32-errors", action="store_true",
                   help="only compare each path's float32 gradient with Brax's float64 one (--f64-envs envs)")
    p.add_argument("--resume", action="store_true", help="keep the cases already in --out (after an interrupted run)")
    p.add_argument("--table", metavar="JSON", help="only print the markdown table of a stored result and exit")
    p.add_argument("--case", help=argparse.SUPPRESS)  # ROBOT:WINDOW, the child's job
    args = p.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(markdown(json.load(f)))
        return 0
    if args.envs < 1 or min(args.windows) < 1 or args.rounds < 1 or args.seconds <= 0 or args.f64_envs < 0:
        p.error("--envs, --windows and --rounds must be positive, --seconds > 0, --f64-envs >= 0.")
    results = {
        "meta": {
            "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
            "date": datetime.date.today().isoformat(),
            "jax": jax.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "envs": args.envs,
            "policy": "tanh(obs @ w + b), loss = -mean over envs of the window's summed reward, grad w.r.t. (w, b)",
        },
        "cases": [],
    }
    if args.case and args.float32_errors:
        robot, window = args.case.split(":")
        errors = float32_errors(robot, int(window), args.variants, args.f64_envs)
        print("RESULT " + json.dumps({"robot": robot, "window": int(window), "float32_vs_brax_float64": errors}))
        return 0
    if args.case:  # the child's job: one robot and window, all paths
        robot, window = args.case.split(":")
        with scoped_brax():
            rows = run_case(robot, int(window), args.variants, args.envs, args.seconds, args.rounds, args.f64_envs,
                            not args.no_profile)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps({"robot": robot, "window": int(window), "loadavg": list(os.getloadavg()),
                                      "peak_rss_mb": round(peak), "rows": rows}), flush=True)
        return 0
    child_args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--resume"]
    done = {}
    if args.resume and args.out and os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        results["meta"]["resumed_from"] = old["meta"]
        done = {(c["robot"], c["window"]): c for c in old["cases"] if "error" not in c}
    for robot in args.robots:
        for window in args.windows:
            if (robot, window) in done:
                results["cases"].append(done[(robot, window)])
                continue
            # One fresh process per case: memory is returned and no compiled code is shared.
            cmd = [sys.executable, os.path.abspath(__file__), *child_args, "--case", f"{robot}:{window}"]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            case = None
            for line in proc.stdout:
                if line.startswith("RESULT "):
                    case = json.loads(line[len("RESULT "):])
                else:
                    print(line, end="", flush=True)
            rc = proc.wait()
            results["cases"].append(case or {"robot": robot, "window": window, "error": f"exit status {rc}"})
            if args.out:  # keep what is done if a later case fails
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)
    results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    if not args.float32_errors:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
