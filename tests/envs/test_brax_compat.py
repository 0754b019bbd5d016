"""The brax/mujoco shims: no "Failed to import warp" noise, and nothing else silenced."""

import io
import subprocess
import sys

from gradgym.envs.brax_compat import MISSING_WARP, _DropLines


def test_import_and_make_print_no_warp_noise():
    code = "import gradgym; gradgym.make('ant'); import mujoco.mjx; print('done')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Failed to import" not in proc.stdout + proc.stderr
    assert "warp" not in proc.stdout + proc.stderr
    assert proc.stdout == "done\n"


def test_only_the_missing_warp_lines_are_dropped():
    out = io.StringIO()
    stream = _DropLines(out, MISSING_WARP)
    print("Failed to import warp:", ModuleNotFoundError("No module named 'warp'"), file=stream)
    print("Failed to import mujoco_warp:", ModuleNotFoundError("No module named 'warp.config'"), file=stream)
    print("Failed to import warp: CUDA driver too old", file=stream)  # installed but broken: kept
    print("something else", file=stream)
    stream.write("no newline")
    stream.flush()
    assert out.getvalue() == "Failed to import warp: CUDA driver too old\nsomething else\nno newline"
