"""Stress test of JAX's persistent compilation cache shared by concurrent processes.

JAX writes a cache entry with a plain ``write_bytes`` unless the cache has a size limit, in which case every
read and write holds a file lock (``jax._src.lru_cache.LRUCache``). Without the lock a process can read an
entry another process is still writing, and deserialize half an executable. This script starts ``--procs``
processes at once on a fresh cache folder; each compiles the same ``--programs`` small programs in the same
order (so they race on the same keys), runs them and checks the results against plain numpy. Rounds repeat
with a fresh folder, and a second pass reruns them warm. ``--mode locked`` uses gradgym's setting
(:func:`gradgym.cache.enable_compilation_cache`, size-limited and locked); ``--mode unlocked`` JAX's default
(no limit, no lock), for contrast.

    python scripts/stress_compile_cache.py --rounds 20 --procs 2 --programs 150 --mode locked
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys
import numpy as np
import jax, jax.numpy as jnp
from gradgym.cache import enable_compilation_cache
path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
enable_compilation_cache(path)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # cache even these small programs
if mode == "unlocked":
    jax.config.update("jax_compilation_cache_max_size", -1)
bad = 0
for i in range(n):
    f = jax.jit(lambda x, i=i: jnp.sin(x * (i + 1)).cumsum() + i)
    x = np.linspace(0.0, 1.0, 8 + i, dtype=np.float32)
    if not np.allclose(np.asarray(f(x)), np.cumsum(np.sin(x * (i + 1))) + i, atol=1e-4):
        bad += 1
print(bad)
"""


def run_round(path: str, mode: str, procs: int, programs: int) -> list[tuple[int, str]]:
    ps = [subprocess.Popen([sys.executable, "-c", CHILD, path, mode, str(programs)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(procs)]
    out = []
    for p in ps:
        stdout, stderr = p.communicate()
        out.append((p.returncode, stdout.strip() or stderr.strip().splitlines()[-1:]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--programs", type=int, default=150)
    p.add_argument("--mode", choices=("locked", "unlocked"), default="locked")
    p.add_argument("--out", default=None, help="write the tally as JSON here")
    args = p.parse_args()
    tally = {"mode": args.mode, "rounds": args.rounds, "procs": args.procs, "programs": args.programs,
             "crashes": 0, "wrong_results": 0, "failures": [], "loadavg_start": os.getloadavg()}
    t0 = time.perf_counter()
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="gradgym-cache-stress-") as d:
            for phase in ("cold", "warm"):
                for code, out in run_round(d, args.mode, args.procs, args.programs):
                    if code != 0:
                        tally["crashes"] += 1
                        tally["failures"].append({"round": r, "phase": phase, "exit": code, "tail": out})
                    elif out != "0":
                        tally["wrong_results"] += 1
                        tally["failures"].append({"round": r, "phase": phase, "wrong": out})
        print(f"round {r + 1}/{args.rounds}: crashes {tally['crashes']}, wrong results {tally['wrong_results']} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    tally["wall_s"] = time.perf_counter() - t0
    tally["loadavg_end"] = os.getloadavg()
    print(json.dumps({k: v for k, v in tally.items() if k != "failures"}))
    if args.out:
        from gradgym.fileio import atomic_write

        atomic_write(args.out, json.dumps(tally, indent=1).encode())


if __name__ == "__main__":
    main()
