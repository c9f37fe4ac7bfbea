"""What the agents of a :class:`GridBatch` are doing, read from its state: where the hiders
take cover and which boxes the hiders have locked. Pure functions of the grids (no I/O)."""

from __future__ import annotations

import numpy as np

from rlgan.envs.hide_and_seek.core import LOCKED_BY_HIDERS, GridBatch
from rlgan.envs.hide_and_seek.visibility import line_of_sight

#: Values of :func:`hider_cover`.
SEEN, BEHIND_WALL, BEHIND_BOX = 0, 1, 2


def hider_cover(grid: GridBatch) -> np.ndarray:
    """(B, n_hiders) int8: ``SEEN`` (some seeker sees the hider), ``BEHIND_BOX`` (hidden, but
    a seeker would see it were the boxes gone: a box is its cover) or ``BEHIND_WALL`` (hidden
    by walls alone, or out of every seeker's range and cone)."""
    seen = grid.hider_seen()
    walls_only = np.zeros((grid.num_grids, grid.cells + 1), dtype=bool)
    walls_only[:, : grid.cells] = grid.walls
    seekers = grid.agents[:, grid.is_seeker][:, :, None]  # (B, S, 1)
    hiders = grid.agents[:, ~grid.is_seeker][:, None, :]  # (B, 1, H)
    facing = grid.facing[:, grid.is_seeker][:, :, None]
    without_boxes = line_of_sight(walls_only, grid.table, seekers, hiders)
    without_boxes &= grid.in_view(seekers, hiders, facing)
    box_cover = without_boxes.any(axis=1) & ~seen
    return np.where(seen, SEEN, np.where(box_cover, BEHIND_BOX, BEHIND_WALL)).astype(np.int8)


def hider_locked_boxes(grid: GridBatch) -> np.ndarray:
    """(B,) int: boxes locked by the hiders."""
    return (grid.boxes == LOCKED_BY_HIDERS).sum(axis=1)
