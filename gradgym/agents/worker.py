"""A ``compare`` worker process: ``python -m gradgym.agents.worker`` with a JSON job on stdin.

The job is ``{"core": int | None, "tasks": [[name, robot, episode_length, seeds, config, progress, devices,
log_dir], ...]}`` (the arguments of :func:`gradgym.agents.report.agent_runs`). The process pins itself to
``core`` before JAX starts (so XLA sizes its thread pool to one core), turns on the persistent compilation
cache when ``GRADGYM_JAX_CACHE`` asks for it, runs the tasks in order and prints a JSON list with one list
of run summaries per task on stdout. Progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    job = json.loads(sys.stdin.read())
    if job.get("core") is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(job["core"])})
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if os.environ.get("GRADGYM_JAX_CACHE", "off") not in ("", "off"):
        from gradgym.cache import enable_compilation_cache

        enable_compilation_cache()
    from gradgym.agents.report import agent_runs

    out = [agent_runs(*task) for task in job["tasks"]]
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
