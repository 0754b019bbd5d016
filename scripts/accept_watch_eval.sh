#!/usr/bin/env bash
# End-to-end check of "watch and evaluate a trained policy" through the CLI (not a CI test: ~2 min on 2 cores).
# Trains PPO on hopper for a short budget with checkpoints and logs, renders the checkpoint to HTML and GIF,
# evaluates it, and checks: eval's return equals the run's last evaluation, the GIF has --steps + 1 frames,
# TensorBoard's reader loads the scalars, and bad input gets a named error (exit status 2).
#   bash scripts/accept_watch_eval.sh [OUT_DIR]      (default runs/accept-hopper; run from the repository root)
set -euo pipefail
OUT=${1:-runs/accept-hopper}
PY=.venv/bin/python
GG=.venv/bin/gradgym
rm -rf "$OUT" && mkdir -p "$OUT"
$GG train --agent ppo --env hopper --budget 20000 --checkpoint-dir "$OUT/ckpt" --log-dir "$OUT/logs" --out "$OUT/run.json" --quiet
$GG render --checkpoint "$OUT/ckpt" --out "$OUT/hopper.html"
$GG render --checkpoint "$OUT/ckpt" --out "$OUT/hopper.gif" --steps 60
$GG eval --checkpoint "$OUT/ckpt" --out "$OUT/eval.json"
OUT="$OUT" $PY - <<'PY'
import glob, json, os
import imageio.v3 as iio
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
out = os.environ["OUT"]
run, ev = json.load(open(f"{out}/run.json")), json.load(open(f"{out}/eval.json"))
last = run["curve"]["returns"][-1]
assert ev["return_mean"] == last, (ev["return_mean"], last)
frames = iio.imread(f"{out}/hopper.gif", index=None)
assert frames.shape[0] == 61, frames.shape
acc = EventAccumulator(glob.glob(f"{out}/logs/*")[0])
acc.Reload()
assert "eval/return" in acc.Tags()["scalars"], acc.Tags()
assert [round(e.value, 3) for e in acc.Scalars("eval/return")] == [round(r, 3) for r in run["curve"]["returns"]]
print(f"ok: eval {ev['return_mean']:.3f} == last evaluation {last:.3f}; GIF {frames.shape[0]} frames; "
      f"{len(acc.Tags()['scalars'])} TensorBoard scalars")
PY
expect_error() {  # the command must fail with exit status 2 and print an error naming the problem
  if "$@" 2>"$OUT/err.txt"; then echo "expected an error: $*" >&2; exit 1; fi
  grep -q "error:" "$OUT/err.txt" && head -1 "$OUT/err.txt"
}
expect_error $GG eval --checkpoint "$OUT/missing"
expect_error $GG eval --checkpoint "$OUT/ckpt" --episodes 0
expect_error $GG render --checkpoint "$OUT/ckpt" --out "$OUT/hopper.avi"
mkdir -p "$OUT/foreign" && echo junk > "$OUT/foreign/ckpt_00000001.gradgym"
expect_error $GG eval --checkpoint "$OUT/foreign"
echo "all checks passed"
