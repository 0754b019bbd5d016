"""``gradgym diagnose``: writes a gradient-health report folder for a robot and a random policy."""

from __future__ import annotations

import argparse
from pathlib import Path

# The same shapes as the quick modes of scripts/fig2*.py and fig5 (unrolls up to 8, 8 seeds, 12 Jacobian steps,
# 21-point slices with one key), so that in one process the Ant programs compile once for all of them.
QUICK = {"horizons": (1, 2, 4, 8), "num_seeds": 8, "spectrum_steps": 12, "slice_points": 21}


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 1,2,4,8, got {text!r}") from None
    return vals


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 1,0.01, got {text!r}") from None


def register(subparsers) -> None:
    """Adds the ``diagnose`` subcommand."""
    p = subparsers.add_parser(
        "diagnose",
        help="gradient variance vs unroll length, Jacobian spectra, Lyapunov exponents, recommended truncation",
        description="Diagnoses exact gradients through a robot's dynamics and writes report.json, PNG plots and "
        "summary.md (with the recommended truncation horizon) to --out.",
    )
    p.add_argument("--env", default="ant", help="robot name (see `gradgym list`); default ant")
    p.add_argument("--backend", default=None, help="physics backend; default: the robot's default")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--horizons", type=_ints, default=None, help="unroll lengths, e.g. 1,2,4,8,16,32,64")
    p.add_argument("--seeds", type=int, default=None, help="rollout seeds per unroll length (default 16)")
    p.add_argument("--init-scales", type=_floats, default=(1.0, 0.01), help="policy init scales (default 1,0.01)")
    p.add_argument("--spectrum-steps", type=int, default=None, help="steps of the Jacobian trajectory (default 100)")
    p.add_argument("--max-ratio", type=float, default=100.0, help="variance growth allowed by the truncation rule")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="report folder (default runs/diagnose-<env>)")
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke test (seconds after compile)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradgym.diagnostics.report import DiagnoseConfig, run_diagnosis, summary_markdown, write_report
    from gradgym.envs.robots import get_robot

    get_robot(args.env)  # unknown names fail here with the list of robots
    kw = dict(QUICK) if args.quick else {}
    for field, val in (("horizons", args.horizons), ("num_seeds", args.seeds), ("spectrum_steps", args.spectrum_steps)):
        if val is not None:
            kw[field] = val
    cfg = DiagnoseConfig(
        env=args.env,
        backend=args.backend,
        dtype=args.dtype,
        init_scales=args.init_scales,
        max_ratio=args.max_ratio,
        seed=args.seed,
        **kw,
    )
    out = args.out if args.out is not None else Path("runs") / f"diagnose-{args.env}"
    print(f"gradgym diagnose: {cfg}")
    res = run_diagnosis(cfg)
    write_report(res, out)
    print(summary_markdown(res).split("## Evidence")[0])
    print(f"Report written to {out}/ (summary.md, report.json, horizon.png, spectrum.png, slices.png)")
    return 0
