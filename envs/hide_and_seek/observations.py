"""The observations of hide-and-seek agents: symbolic planes, or pixels.

With ``observation="pixels"`` an agent sees a top-down RGB image ``(obs_height, obs_width,
3)`` uint8 (:mod:`rlgan.envs.hide_and_seek.pixels`). Otherwise, a flat ``uint8`` vector:
``CHANNELS`` binary planes over a ``k x k`` window centred on the agent
(``observation="egocentric"``; cells outside the grid count as walls) or over the whole
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
from rlgan.envs.hide_and_seek.pixels import frames

CHANNELS = ("walls", "boxes", "locked_boxes", "self", "teammates", "opponents_seen")
EXTRAS = ("step", "prep", "row", "col")


def plane_side(config: HideAndSeekConfig) -> int:
    """Side of the square window the symbolic planes cover: ``view_size`` (egocentric) or the
    grid's ``size`` (full)."""
    return config.view_size if config.observation == "egocentric" else config.size


def observation_space(config: HideAndSeekConfig) -> spaces.Box:
    """``Box(0, 255, (len(CHANNELS) * side * side + 4,), uint8)``, or for pixels
    ``Box(0, 255, (obs_height, obs_width, 3), uint8)``."""
    if config.observation == "pixels":
        return spaces.Box(0, 255, (config.obs_height, config.obs_width, 3), np.uint8)
    side = plane_side(config)
    return spaces.Box(0, 255, (len(CHANNELS) * side * side + len(EXTRAS),), np.uint8)


def team_sight(grid: GridBatch) -> np.ndarray:
    """(B, A) whether each agent is seen by the other team right now."""
    seen = np.empty((grid.num_grids, grid.n_agents), dtype=bool)
    seen[:, ~grid.is_seeker] = grid.hider_seen()
    seen[:, grid.is_seeker] = grid.seeker_seen()
    return seen


@lru_cache(maxsize=16)
def window_cells(size: int, side: int) -> np.ndarray:
    """``(C, side * side)`` int64: the cells of the ``side x side`` window centred on every
    cell, ``C`` (the index of an outside cell) where the window leaves the grid."""
    radius = side // 2
    rows, cols = np.divmod(np.arange(size * size), size)
    offsets = np.arange(side) - radius
    window_rows = rows[:, None, None] + offsets[None, :, None]
    window_cols = cols[:, None, None] + offsets[None, None, :]
    inside = (window_rows >= 0) & (window_rows < size) & (window_cols >= 0) & (window_cols < size)
    cells = np.where(inside, window_rows * size + window_cols, size * size)
    return cells.reshape(size * size, side * side)


def _cell_codes(grid: GridBatch, agents: np.ndarray) -> np.ndarray:
    """(B, C + 1) uint8 every cell's planes as bits (bit ``i`` is ``CHANNELS[i]``) as seen
    by agent ``agents[b]`` on grid ``b``; cell C stands for outside the grid (a wall)."""
    codes = np.empty((grid.num_grids, grid.cells + 1), dtype=np.uint8)
    codes[:, grid.cells] = 1
    cells = codes[:, : grid.cells]
    cells[...] = grid.boxes != FREE
    cells <<= 1
    cells |= np.left_shift(grid.boxes > BOX, 2, dtype=np.uint8)
    cells |= grid.walls
    is_self = np.arange(grid.n_agents)[None, :] == agents[:, None]  # (B, A)
    same_team = grid.is_seeker[None, :] == grid.is_seeker[agents][:, None]
    marks = (is_self << 3) | ((same_team & ~is_self) << 4) | ((~same_team & team_sight(grid)) << 5)
    cells[grid.row_major[:, None], grid.agents] |= marks.astype(np.uint8)
    return codes


def observe(grid: GridBatch, agents: np.ndarray) -> np.ndarray:
    """Observations of agent ``agents[b]`` on every grid ``b``: ``(B, obs_size)`` uint8, or
    ``(B, obs_height, obs_width, 3)`` uint8 for pixels."""
    config = grid.config
    if config.observation == "pixels":
        return frames(grid, agents, config.obs_height, config.obs_width)
    here = grid.agents[grid.row_major, agents]
    if config.observation == "egocentric":
        cells = window_cells(grid.size, config.view_size)[here]  # (B, W)
    else:
        cells = np.broadcast_to(np.arange(grid.cells), (grid.num_grids, grid.cells))
    codes = _cell_codes(grid, agents)
    window = np.take(codes, cells + (grid.row_major * codes.shape[1])[:, None])  # (B, W)
    width = window.shape[1]
    observation = np.empty((grid.num_grids, len(CHANNELS) * width + len(EXTRAS)), dtype=np.uint8)
    planes = observation[:, : len(CHANNELS) * width].reshape(-1, len(CHANNELS), width)
    for channel in range(len(CHANNELS)):
        np.right_shift(window, channel, out=planes[:, channel])
    planes &= 1
    observation[:, -4] = grid.steps
    observation[:, -3] = grid.in_prep()
    observation[:, -2] = grid.rows[here]
    observation[:, -1] = grid.cols[here]
    return observation
