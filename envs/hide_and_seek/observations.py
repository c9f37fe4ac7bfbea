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
    seen[:, hiders] = grid.hider_seen(blocking)
    for seeker in np.flatnonzero(grid.is_seeker):
        viewer = grid.agents[:, hiders]
        target = np.repeat(grid.agents[:, seeker:seeker + 1], len(hiders), axis=1)
        seen[:, seeker] = grid.sees(viewer, target, None, blocking).any(axis=1)
    return seen


@lru_cache(maxsize=16)
def window_table(size: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Index tables on a grid padded by ``side // 2`` cells: the padded position of every
    cell ``(C,)``, and the ``side x side`` window around every cell ``(C, side * side)``."""
    radius = side // 2
    padded = size + 2 * radius
    rows, cols = np.divmod(np.arange(size * size), size)
    inner = (rows + radius) * padded + cols + radius
    offsets = np.arange(side)
    windows = ((rows[:, None, None] + offsets[None, :, None]) * padded
               + cols[:, None, None] + offsets[None, None, :]).reshape(size * size, side * side)
    return inner, windows


def observe(grid: GridBatch, agents: np.ndarray) -> np.ndarray:
    """Observations of agent ``agents[b]`` on every grid ``b``: ``(B, obs_size)`` uint8."""
    config = grid.config
    batch, size = grid.num_grids, grid.size
    rows = np.arange(batch)
    if config.observation == "egocentric":
        inner, windows = window_table(size, config.view_size)
        padded_cells = (size + 2 * (config.view_size // 2)) ** 2
    else:  # the whole grid, unpadded
        inner = np.arange(grid.cells)
        windows = np.broadcast_to(inner, (grid.cells, grid.cells))
        padded_cells = grid.cells
    seen = team_sight(grid)
    planes = np.zeros((batch, len(CHANNELS), padded_cells), dtype=np.uint8)
    planes[:, 0] = 1  # outside the grid is wall
    planes[:, 0, inner] = grid.walls
    planes[:, 1, inner] = grid.boxes != FREE
    planes[:, 2, inner] = grid.boxes > BOX
    seeker = grid.is_seeker[agents]  # (B,)
    for other in range(grid.n_agents):
        cell = inner[grid.agents[:, other]]
        same_team = grid.is_seeker[other] == seeker
        is_self = agents == other
        planes[rows, 3, cell] |= is_self
        planes[rows, 4, cell] |= same_team & ~is_self
        planes[rows, 5, cell] |= ~same_team & seen[:, other]
    here = grid.agents[rows, agents]
    plane_start = (rows[:, None] * len(CHANNELS) + np.arange(len(CHANNELS))) * padded_cells
    view = planes.ravel()[plane_start[:, :, None] + windows[here][:, None, :]]  # (B, 6, side^2)
    extras = np.stack([grid.steps, grid.in_prep(), grid.rows[here], grid.cols[here]], axis=1).astype(np.uint8)
    return np.concatenate([view.reshape(batch, -1), extras], axis=1)
