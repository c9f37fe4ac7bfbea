"""Write a sequence of RGB frames as a video (``.mp4``) or an animated ``.gif``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlgan.io import atomic_path

VIDEO_SUFFIXES = (".mp4", ".gif")


def check_video_path(path: str | os.PathLike) -> Path:
    """Return ``path`` as a ``Path`` if a video can be written there: a suffix of
    :data:`VIDEO_SUFFIXES` and no existing file in place of a parent directory.

    Raises:
        ValueError: an unsupported suffix, or a parent that is a file.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"unsupported video file {path.name!r}; use one of {VIDEO_SUFFIXES}")
    existing = next(parent for parent in path.parents if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"cannot write the video {path}: {existing} is a file, not a directory")
    return path


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: int = 15) -> Path:
    """Write ``frames`` (each ``(H, W, 3)`` uint8) to ``path`` atomically and return the path.

    ``.mp4`` is H.264 through imageio's bundled ffmpeg; ``.gif`` is written with Pillow.

    Raises:
        ValueError: no frames, frames of different shapes, or a path :func:`check_video_path`
            refuses.
    """
    path = check_video_path(path)
    if len(frames) == 0:
        raise ValueError("no frames to write")
    stack = np.stack([np.asarray(frame, dtype=np.uint8) for frame in frames])
    if stack.ndim != 4 or stack.shape[-1] != 3:
        raise ValueError(f"frames must be (H, W, 3) uint8, got {stack.shape[1:]}")
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            images = [Image.fromarray(frame) for frame in stack]
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=max(1, round(1000 / fps)), loop=0)
        else:
            import imageio.v3 as iio

            iio.imwrite(tmp, stack, extension=".mp4", fps=fps, codec="libx264", macro_block_size=1)
    return path
