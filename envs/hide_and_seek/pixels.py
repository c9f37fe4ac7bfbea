"""The pixel observation of hide-and-seek agents: a top-down RGB image of the grid.

Drawn with numpy for a whole :class:`GridBatch` at once (no pygame), so the single-agent env
(a batch of one) and the vector env produce identical frames. Pixel ``(y, x)`` of an
``H x W`` image shows cell ``(y * size // H, x * size // W)``; cells are ``H / size`` pixels
high (not always a whole number: some rows of cells are a pixel taller).

Each cell shows a background and, in its middle, at most one object:

- background: floor, floor some seeker sees right now (the cells where a hider is seen, under
  the line-of-sight, ``vision_range`` and ``view_cone`` rules; so a model can foresee being
  seen from the frame alone), or wall. Walls take a second colour during the preparation
  phase, while the seekers are frozen.
- object: a box (the central 80% of the cell) in one of three colours (free, locked by
  hiders, locked by seekers), or an agent (the central 60%): the observing agent, the other
  hiders and the seekers each in their own colour.

The seekers' facing direction is not drawn; with ``view_cone`` the shaded cells show it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rlgan.envs.hide_and_seek.core import FREE, GridBatch

#: Colours (RGB) by name, in code order: backgrounds, then boxes (by lock state), then agents.
PALETTE = {
    "floor": (225, 225, 215), "seen": (250, 200, 90), "wall": (60, 60, 70),
    "prep_wall": (40, 70, 120),
    "box": (160, 110, 50), "box_locked_by_hiders": (90, 150, 240),
    "box_locked_by_seekers": (240, 120, 110),
    "self": (30, 200, 60), "hider": (30, 70, 200), "seeker": (200, 30, 30),
}
FLOOR, SEEN, WALL, PREP_WALL = range(4)
BOX_CODE, SELF, HIDER, SEEKER = 4, 7, 8, 9  # a box's code is BOX_CODE - 1 + its boxes value
NOTHING = -1  # no object on the cell
COLOURS = np.array(list(PALETTE.values()), dtype=np.uint8)  # (10, 3)
BOX_SIZE, AGENT_SIZE = 0.8, 0.6  # fraction of a cell's side


@lru_cache(maxsize=16)
def pixel_sources(size: int, height: int, width: int) -> np.ndarray:
    """Where each byte of an ``height x width`` RGB image of a ``size x size`` grid comes from.

    A pixel shows its cell's background, box or agent depending on how far its centre lies
    from the cell's centre (the part of the cell: 0 outside the box square, 1 in the box
    square, 2 in the agent square).

    Returns:
        int64 ``(height * width * 3,)``: for each byte of the image (row-major, RGB last) its
        index ``(cell * 3 + part) * 3 + channel`` into :func:`cell_colours`.
    """
    def axis(pixels: int) -> tuple[np.ndarray, np.ndarray]:
        position = (np.arange(pixels) + 0.5) * size / pixels  # pixel centres [cells]
        index = np.floor(position).astype(np.int64)
        return index, np.abs(position - index - 0.5)  # distance from the cell centre [cells]

    rows, row_offset = axis(height)
    cols, col_offset = axis(width)
    cells = rows[:, None] * size + cols[None, :]  # (H, W)
    offset = np.maximum(row_offset[:, None], col_offset[None, :])
    part = (offset <= BOX_SIZE / 2).astype(np.int64) + (offset <= AGENT_SIZE / 2)
    return (((cells * 3 + part) * 3)[..., None] + np.arange(3)).ravel()


def cell_colours(grid: GridBatch, agents: np.ndarray) -> np.ndarray:
    """The colours of every cell's three parts as seen by agent ``agents[b]`` on grid ``b``.

    Returns:
        uint8 ``(B, C * 3 * 3)``: cell, part (outside the box square, box square, agent
        square; see :func:`pixel_sources`), RGB.
    """
    background = np.where(grid.walls, np.where(grid.in_prep()[:, None], PREP_WALL, WALL),
                          np.where(grid.seen_cells(), SEEN, FLOOR))
    objects = np.where(grid.boxes != FREE, BOX_CODE - 1 + grid.boxes, NOTHING)  # (B, C)
    marks = np.where(grid.is_seeker[None, :], SEEKER, HIDER)  # (1, A)
    marks = np.where(np.arange(grid.n_agents)[None, :] == agents[:, None], SELF, marks)  # (B, A)
    objects[grid.row_major[:, None], grid.agents] = marks
    parts = np.stack([background,
                      np.where(grid.boxes != FREE, objects, background),
                      np.where(objects != NOTHING, objects, background)], axis=2)  # (B, C, 3)
    return COLOURS[parts].reshape(grid.num_grids, -1)


def frames(grid: GridBatch, agents: np.ndarray, height: int, width: int) -> np.ndarray:
    """Top-down images of every grid ``b`` as seen by agent ``agents[b]`` (int, (B,)).

    Returns:
        uint8 ``(B, height, width, 3)``.
    """
    sources = pixel_sources(grid.size, height, width)
    return cell_colours(grid, agents)[:, sources].reshape(grid.num_grids, height, width, 3)
