#!/usr/bin/env bash
# Installs gradgym into ./.venv on a fresh Debian machine (Python 3.11).
# - Debian's libosmesa6 for offscreen rendering (MUJOCO_GL=osmesa), when run as root.
# - the CPU build of torch (torch==2.13.0) before anything that depends on torch,
#   so pip never pulls the multi-GB CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null) \
      || echo "warning: could not install libosmesa6; rendering will be unavailable" >&2
  else
    echo "warning: libosmesa6 missing and not root; rendering will be unavailable" >&2
  fi
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[dev]"
echo "gradgym installed in .venv"
