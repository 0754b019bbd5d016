"""Rendering helpers: RGB frames (MuJoCo offscreen), animations (GIF, MP4) and interactive HTML (brax viewer).

Frames come from MuJoCo's renderer on the robot's MJCF model, posed with the
Brax state's joint positions. Headless Linux needs an offscreen GL: this module
defaults ``MUJOCO_GL=osmesa`` when no display is present and MuJoCo has not
been imported yet (set it yourself before importing brax/mujoco otherwise).

Animations are encoded with imageio (Pillow for GIF, imageio-ffmpeg's
ffmpeg for MP4/H.264). All files are written atomically (a temporary file in the same folder, then
``os.replace``), so a crash never leaves a half-written PNG or HTML file.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradgym.checks import is_int
from gradgym.fileio import atomic_write as _atomic_write

if (
    sys.platform.startswith("linux")
    and "mujoco" not in sys.modules
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
):
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

DEFAULT_WIDTH = 480
DEFAULT_HEIGHT = 480


def _check_size(width: int, height: int) -> tuple[int, int]:
    for name, v in (("width", width), ("height", height)):
        if not is_int(v, 16, numpy_ok=True) or v > 4096:
            raise ValueError(f"{name} must be an int in [16, 4096] pixels, got {v!r}.")
    return int(width), int(height)


def default_camera(mj_model: Any) -> int | str:
    """The robot's tracking camera if its MJCF defines one, else MuJoCo's free camera (-1)."""
    import mujoco

    for i in range(mj_model.ncam):
        if mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_CAMERA, i) == "track":
            return "track"
    return -1


class FrameRenderer:
    """Renders Brax pipeline states of one robot to ``uint8`` (H, W, 3) arrays.

    Holds one MuJoCo offscreen context (creating it is the slow part), so reuse
    the instance for every frame and call :meth:`close` when done.

    Args:
        sys: the Brax ``System`` of the robot (``BraxEnv.brax_env.sys``).
        width: frame width in pixels.
        height: frame height in pixels.
        camera: camera name or id; ``None`` picks :func:`default_camera`.
    """

    def __init__(self, sys: Any, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT, camera=None):
        import mujoco

        self.width, self.height = _check_size(width, height)
        self._model = sys.mj_model
        self._camera = default_camera(self._model) if camera is None else camera
        try:
            self._renderer = mujoco.Renderer(self._model, height=self.height, width=self.width)
        except Exception as e:  # the GL backend is missing or misconfigured
            raise RuntimeError(
                f"Could not create a MuJoCo offscreen renderer ({e}). On a headless machine set "
                "MUJOCO_GL=osmesa (and install libosmesa6) before importing brax or mujoco."
            ) from e
        self._data = mujoco.MjData(self._model)

    def render(self, pipeline_state: Any) -> np.ndarray:
        """One frame of a (single, unbatched) Brax pipeline state."""
        import mujoco

        q = np.asarray(pipeline_state.q, dtype=np.float64)
        if q.ndim != 1:
            raise ValueError(f"FrameRenderer.render needs one unbatched state; got q with shape {q.shape}.")
        self._data.qpos[:] = q
        self._data.qvel[:] = np.asarray(pipeline_state.qd, dtype=np.float64)
        mujoco.mj_forward(self._model, self._data)
        self._renderer.update_scene(self._data, camera=self._camera)
        return np.array(self._renderer.render(), dtype=np.uint8)

    def close(self) -> None:
        """Frees the GL context (idempotent)."""
        renderer, self._renderer = getattr(self, "_renderer", None), None
        if renderer is not None:
            renderer.close()


def render_frames(
    sys: Any, states: Sequence[Any], width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT, camera=None
) -> list[np.ndarray]:
    """Renders a list of Brax pipeline states to ``uint8`` (H, W, 3) frames."""
    renderer = FrameRenderer(sys, width, height, camera)
    try:
        return [renderer.render(s) for s in states]
    finally:
        renderer.close()


def save_png(path: str | os.PathLike, frame: np.ndarray) -> Path:
    """Writes a ``uint8`` (H, W, 3) frame as a PNG, atomically; returns the path."""
    from PIL import Image

    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"save_png needs a uint8 (H, W, 3) array, got {frame.dtype} {frame.shape}.")
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="png")
    return _atomic_write(path, buf.getvalue())


def html_string(sys: Any, states: Sequence[Any], height: int | str = "100vh") -> str:
    """An interactive three.js viewer (brax's) of a trajectory of pipeline states.

    ``height`` is pixels (int) or a CSS length; the default fills the browser window.
    """
    from brax.io import html

    if len(states) == 0:
        raise ValueError("Cannot export an empty trajectory to HTML: reset the env and step it at least once.")
    css_height = f"{int(height)}px" if isinstance(height, (int, np.integer)) else str(height)
    return html.render(sys, list(states), height=css_height, colab=False)


def save_html(path: str | os.PathLike, sys: Any, states: Sequence[Any], height: int | str = "100vh") -> Path:
    """Writes the brax HTML viewer of ``states`` to ``path`` atomically; returns the path."""
    return _atomic_write(path, html_string(sys, states, height).encode("utf-8"))


ANIMATION_SUFFIXES = (".gif", ".mp4")
MIN_GIF_FRAME_MS = 20  # browsers play GIF delays under 2 centiseconds at 10 cs


def gif_frame_ms(dt: float) -> int:
    """A GIF frame's delay for a physics step of ``dt`` s: whole centiseconds, at least 20 ms."""
    return max(MIN_GIF_FRAME_MS, 10 * round(100 * float(dt)))


def save_animation(path: str | os.PathLike, frames: Sequence[np.ndarray], dt: float) -> Path:
    """Writes ``uint8`` (H, W, 3) frames as an animated GIF or an MP4, atomically; returns the path.

    One frame per ``dt`` seconds of simulated time: an MP4 plays at ``1/dt``
    frames per second; a GIF at :func:`gif_frame_ms` per frame (slower than
    real time when ``dt`` < 20 ms), looping. A GIF stores a run of identical
    frames as one frame shown for their summed time (Pillow's encoder), so
    its total duration, not its frame count, is ``len(frames)`` delays.
    MP4 (H.264) wants width and height divisible by 16; ffmpeg's writer
    resizes other sizes with a warning.
    """
    import imageio.v3 as iio

    suffix = Path(path).suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise ValueError(f"An animation is saved as .gif or .mp4, got {str(path)!r}; e.g. runs/ant.gif.")
    if not float(dt) > 0:
        raise ValueError(f"dt must be a positive number of seconds per frame, got {dt!r}.")
    video = np.stack([np.asarray(f) for f in frames]) if len(frames) else np.zeros((0,), np.uint8)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[0] < 1 or video.shape[3] != 3:
        raise ValueError(f"save_animation needs one or more uint8 (H, W, 3) frames, got {video.dtype} {video.shape}.")
    if suffix == ".gif":
        data = iio.imwrite("<bytes>", video, extension=".gif", duration=gif_frame_ms(dt), loop=0)
    else:
        data = iio.imwrite("<bytes>", video, extension=".mp4", fps=1.0 / float(dt))
    return _atomic_write(path, data)
