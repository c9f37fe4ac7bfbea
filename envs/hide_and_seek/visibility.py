"""Exact line of sight on a grid, precomputed once per grid size.

Cells are unit squares; sight runs along the straight segment between two cell centres. A
cell other than the two end cells blocks it when it is a wall or a box and its closed square
touches the segment (so a wall touching the line only at a corner blocks it too). The table
``between[from * C + to]`` lists the cells each segment touches (padded with the index C, a
cell that never blocks), so visibility over a whole batch is one gather and one ``any``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

EPSILON = 1e-9


@lru_cache(maxsize=8)
def between_table(size: int) -> np.ndarray:
    """``(C * C, L)`` int16 cells touched by the segment between every pair of cell centres.

    ``C = size * size`` cells (index ``row * size + col``); rows are padded with ``C``.
    """
    cells = size * size
    rows, cols = np.divmod(np.arange(cells), size)
    centres = np.stack([rows + 0.5, cols + 0.5], axis=1)
    lists: list[np.ndarray] = []
    for start in range(cells):
        direction = centres - centres[start]  # (C targets, 2)
        # Liang-Barsky clipping of every segment (start -> target) against every cell square.
        lower = np.stack([rows, cols], axis=1)[None, :, :] - centres[start]  # (1, C cells, 2)
        upper = lower + 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = lower / direction[:, None, :]
            t2 = upper / direction[:, None, :]
        t_low = np.minimum(t1, t2)
        t_high = np.maximum(t1, t2)
        zero = direction[:, None, :] == 0
        inside = (lower <= EPSILON) & (upper >= -EPSILON)  # segment's fixed coordinate in slab
        t_low = np.where(zero, np.where(inside, -np.inf, np.inf), t_low)
        t_high = np.where(zero, np.where(inside, np.inf, -np.inf), t_high)
        enter = np.maximum(t_low.max(axis=2), 0.0)
        leave = np.minimum(t_high.min(axis=2), 1.0)
        touches = enter <= leave + EPSILON  # (C targets, C cells)
        touches[:, start] = False
        touches[np.arange(cells), np.arange(cells)] = False
        lists.extend(np.flatnonzero(row) for row in touches)
    width = max(1, max(len(cells_) for cells_ in lists))
    table = np.full((cells * cells, width), cells, dtype=np.int16)
    for index, cells_ in enumerate(lists):
        table[index, : len(cells_)] = cells_
    return table


def line_of_sight(blocking: np.ndarray, table: np.ndarray, start: np.ndarray,
                  target: np.ndarray) -> np.ndarray:
    """Whether ``start`` sees ``target`` on each grid of a batch.

    Args:
        blocking: ``(B, C + 1)`` bool, walls and boxes, with a False sentinel at index C.
        table: :func:`between_table` of the grid size.
        start, target: ``(B, ...)`` int cell indices (same shape).

    Returns:
        ``(B, ...)`` bool.
    """
    cells = blocking.shape[1] - 1
    pairs = table[start * cells + target]  # (B, ..., L)
    batch = np.arange(blocking.shape[0]).reshape((-1,) + (1,) * (pairs.ndim - 1))
    return ~blocking[batch, pairs].any(axis=-1)
