"""Safe depths from a game tree searched level by level (a pure function shared by the
learned and the oracle search), and the search result object.

**Safe depth** of a root action ``a``: the length of the longest path of predicted steps that
starts with ``a`` and in which no step is unsafe, capped at the search depth ``D``. It is 0
when the first step is already unsafe, and ``D`` when some continuation stays safe for all
``D`` levels. A step that ends the episode without being unsafe (termination or time limit in
the true simulator) counts as safe to the horizon: nothing unsafe can follow it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Level:
    """One searched level of the tree.

    Row ``i`` holds the children (one per action) of the ``i``-th node expanded at the level
    above (the root for the first level).

    Attributes:
        unsafe: bool ``(F, A)``, the step to this child was unsafe.
        terminal: bool ``(F, A)``, the episode ended safely at this child (never expanded).
    """

    unsafe: np.ndarray
    terminal: np.ndarray

    @property
    def expandable(self) -> np.ndarray:
        """bool ``(F, A)``: children that are expanded at the next level, in row-major order."""
        return ~self.unsafe & ~self.terminal


@dataclass(frozen=True)
class SearchResult:
    """What a safety search found for the current state.

    Attributes:
        safe_depths: int64 ``(n_actions,)``, safe depth of each first action (see module doc);
            -1 for first actions the search was told to skip.
        depth: levels searched (the requested depth, or fewer when the node budget ran out;
            safe depths never exceed it).
        nodes: tree nodes evaluated (one per (node, action) pair).
        elapsed_ms: wall-clock time of the search in milliseconds.
        risks: float64 ``(n_actions,)``, the model's P(unsafe) of each first action's first
            step (the largest over noise samples; NaN for skipped actions), or None when the
            search only knows safe or unsafe (the oracle).
    """

    safe_depths: np.ndarray
    depth: int
    nodes: int
    elapsed_ms: float
    risks: np.ndarray | None = None


def safe_depths(levels: list[Level], depth: int) -> np.ndarray:
    """Safe depth of every root action from the searched ``levels`` (level 1 first).

    Nodes expandable at the last searched level count 1 (safe for that step; the search ended
    there). Terminal safe nodes at level ``l`` count ``depth - l + 1``.

    Args:
        levels: the searched levels; ``levels[0].unsafe`` has shape ``(1, A0)`` (the first
            actions searched). Level ``l + 1`` has one row per expandable child of level ``l``
            in row-major order.
        depth: the horizon (``len(levels)`` or more when the tree died out early).

    Returns:
        int64 ``(A0,)`` in ``0..depth``.
    """
    if not levels:
        raise ValueError("safe_depths needs at least one searched level")
    below: np.ndarray | None = None  # value of every child row of the level below, (F_below,)
    for number in range(len(levels), 0, -1):
        level = levels[number - 1]
        values = np.where(level.unsafe, 0, np.where(level.terminal, depth - number + 1, 1))
        values = values.astype(np.int64)
        if below is not None:
            expand = level.expandable.ravel()
            if int(expand.sum()) != len(below):
                raise ValueError(f"level {number + 1} has {len(below)} rows but level {number} "
                                 f"has {int(expand.sum())} expandable children")
            flat = values.ravel()
            flat[expand] = 1 + below
            values = flat.reshape(level.unsafe.shape)
        below = values.max(axis=1)
    if levels[0].unsafe.shape[0] != 1:
        raise ValueError(f"the first level must have one row (the root), got {levels[0].unsafe.shape[0]}")
    return values[0]
