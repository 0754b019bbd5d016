"""Writes docs/results.md and one learning-curve PNG per robot from the stored runs in docs/results/.

    python scripts/results_page.py                       # --results docs/results --out docs/results.md
    python scripts/results_page.py --figures docs/figures
    python scripts/results_page.py --results docs/results --also docs/shac_variants --out docs/shac_variants.md \
        --figures docs/figures/shac_variants --title "SHAC variants"

Stored runs: ``gradgym train ... --out docs/results/<name>.json`` (one run) or a
``gradgym compare`` ``results.json``; planned runs: ``docs/results/manifest.json``.
See :mod:`gradgym.agents.results_page`.
"""

from __future__ import annotations

import argparse
import sys

from gradgym.agents.results_page import ResultsError, write_results_page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="docs/results", help="folder of stored result JSONs and manifest.json")
    p.add_argument("--out", default="docs/results.md", help="the Markdown page to write")
    p.add_argument("--figures", default=None, help="folder for the PNGs (default: --results)")
    p.add_argument("--also", action="append", default=[], metavar="DIR",
                   help="another folder of stored runs shown beside them (repeatable; no manifest read)")
    p.add_argument("--title", default="Results", help="the page's heading")
    args = p.parse_args(argv)
    try:
        written = write_results_page(args.results, args.out, args.figures, args.also, args.title)
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("Wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
