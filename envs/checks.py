"""Argument checks every rlgan env constructor shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_render_mode(render_mode: str | None, metadata: Mapping[str, Any]) -> str | None:
    """Return ``render_mode`` when it is None or one of ``metadata["render_modes"]``.

    Raises:
        ValueError: any other value, naming the valid ones.
    """
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(f"unknown render_mode {render_mode!r}; valid: "
                         f"{metadata['render_modes']} or None")
    return render_mode
