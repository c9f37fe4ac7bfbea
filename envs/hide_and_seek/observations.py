"""The symbolic observation of hide-and-seek agents.

A flat ``uint8`` vector: ``CHANNELS`` binary planes over a ``k x k`` window centred on the
agent (``observation="egocentric"``; cells outside the grid count as walls) or over the whole
``size x size`` grid (``"full"``), in channel-major order, followed by four numbers:
the step counter (0..max_steps), the preparation-phase flag (0/1), and the agent's row and
column.

Planes: walls, boxes, locked boxes, the agent itself, its teammates, and the opponents its
team sees right now (hiders see seekers in their line of sight; seekers see hiders under
their range and view-cone rules).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from gymnasium import spaces

from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import BOX, FREE, GridBatch

CHANNELS = ("walls", "boxes", "locked_boxes", "self", "teammates", "opponents_seen")
EXTRAS = ("step", "prep", "row", "col")


def observation_space(config: HideAndSeekConfig) -> spaces.Box:
    """``Box(0, 255, (len(CHANNELS) * side * side + 4,), uint8)``."""
    side = config.view_size if config.observation == "egocentric" else config.size
    return spaces.Box(0, 255, (len(CHANNELS) * side * side + len(EXTRAS),), np.uint8)


def team_sight(grid: GridBatch) -> np.ndarray:
    """(B, A) whether each agent is seen by the other team right now."""
    blocking = grid.blocking()
    seen = np.zeros((grid.num_grids, grid.n_agents), dtype=bool)
    hiders = np.flatnonzero(~grid.is_seeker)
    seen[:, hiders] = grid.hider_seen()
    for seeker in np.flatnonzero(grid.is_seeker):
        viewer = grid.agents[:, hiders]
        target = np.repeat(grid.agents[:, seeker:seeker + 1], len(hiders), axis=1)
        seen[:, seeker] = grid.sees(viewer, target, None, blocking).any(axis=1)
    return seen


@lru_cache(maxsize=16)
def window_cells(size: int, side: int) -> np.ndarray:
    """``(C, side * side)``: the cells of the ``side x side`` window centred on every cell,
    -1 where the window leaves the grid."""
    radius = side // 2
    rows, cols = np.divmod(np.arange(size * size), size)
    offsets = np.arange(side) - radius
    window_rows = rows[:, None, None] + offsets[None, :, None]
    window_cols = cols[:, None, None] + offsets[None, None, :]
    inside = (window_rows >= 0) & (window_rows < size) & (window_cols >= 0) & (window_cols < size)
    return np.where(inside, window_rows * size + window_cols, -1).reshape(size * size, side * side)


def observe(grid: GridBatch, agents: np.ndarray) -> np.ndarray:
    """Observations of agent ``agents[b]`` on every grid ``b``: ``(B, obs_size)`` uint8."""
    config = grid.config
    batch = grid.num_grids
    rows = np.arange(batch)
    here = grid.agents[rows, agents]
    if config.observation == "egocentric":
        cells = window_cells(grid.size, config.view_size)[here]  # (B, k * k)
    else:
        cells = np.broadcast_to(np.arange(grid.cells), (batch, grid.cells))
    outside = cells < 0
    safe = np.where(outside, 0, cells)
    batch_rows = rows[:, None]
    boxes = grid.boxes[batch_rows, safe]
    view = np.zeros((batch, len(CHANNELS), cells.shape[1]), dtype=np.uint8)
    view[:, 0] = outside | grid.walls[batch_rows, safe]
    view[:, 1] = ~outside & (boxes != FREE)
    view[:, 2] = ~outside & (boxes > BOX)
    seen = team_sight(grid)
    seeker = grid.is_seeker[agents]  # (B,)
    for other in range(grid.n_agents):
        at = cells == grid.agents[:, other][:, None]  # (B, k * k)
        same_team = (grid.is_seeker[other] == seeker)[:, None]
        is_self = (agents == other)[:, None]
        view[:, 3] |= at & is_self
        view[:, 4] |= at & same_team & ~is_self
        view[:, 5] |= at & ~same_team & seen[:, other][:, None]
    extras = np.stack([grid.steps, grid.in_prep(), grid.rows[here], grid.cols[here]], axis=1).astype(np.uint8)
    return np.concatenate([view.reshape(batch, -1), extras], axis=1)
