"""Safe depths from a game tree searched level by level (a pure function shared by the
learned and the oracle search), and the search result object.

**Safe depth** of a root action ``a``: the length of the longest path of predicted steps that
starts with ``a`` and in which no step is unsafe, capped at the search depth ``D``. It is 0
when the first step is already unsafe, and ``D`` when some continuation stays safe for all
``D`` levels. A step that ends the episode without being unsafe (termination or time limit in
the true simulator) counts as safe to the horizon: nothing unsafe can follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class PathNode:
    """A safe node of a depth-first search: what its search steps from (frames or a simulator
    state), its level (0 for a root) and the actions still to be taken from it, in order."""

    payload: Any
    level: int
    untried: list[int]


#: ``(payloads, actions) -> (unsafe, ended, child payloads)``: one step from each payload with
#: its action, bool ``(N,)`` arrays and N payloads (``ended``: the episode ended safely there).
StepMany = Callable[[list[Any], np.ndarray], tuple[np.ndarray, np.ndarray, list[Any]]]


def depth_first(stacks: list[list[PathNode]], best: np.ndarray, owners: np.ndarray,
                spent: np.ndarray, depth: int, node_budget: int, n_actions: int,
                step: StepMany) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth-first safety search below root actions of one or more searches: each root
    follows one path at a time until a path stays safe to ``depth``, backtracking past unsafe
    steps; the next child of every root still searching is stepped in one ``step`` call per
    round. A step that ends the episode safely counts as safe to the horizon.

    Args:
        stacks: per root action, its stack of nodes still to expand (empty: nothing to search).
        best: int ``(R,)``, the deepest safe level each root has reached so far.
        owners: int ``(R,)``, the search (0..S-1) each root belongs to.
        spent: int ``(S,)``, nodes each search spent before (its node budget counts them).

    Returns:
        ``(safe depth of every root (R,), horizon of every search (S,), nodes stepped for every
        search (S,))``; a search out of budget stops and reports the horizon to which all its
        roots' safe depths are known.
    """
    best = best.copy()
    nodes = np.zeros(len(spent), dtype=np.int64)
    truncated = np.zeros(len(spent), dtype=bool)
    while True:
        searching = [r for r, stack in enumerate(stacks)
                     if stack and best[r] < depth and not truncated[owners[r]]]
        counts = np.bincount(owners[searching], minlength=len(spent))
        truncated |= (counts > 0) & (spent + nodes + counts > node_budget)
        searching = [r for r in searching if not truncated[owners[r]]]
        if not searching:
            break
        parents = [stacks[r][-1] for r in searching]
        actions = np.array([parent.untried.pop(0) for parent in parents], dtype=np.int64)
        unsafe, ended, children = step([parent.payload for parent in parents], actions)
        nodes += np.bincount(owners[searching], minlength=len(spent))
        for row, (r, parent) in enumerate(zip(searching, parents)):
            if not parent.untried:
                stacks[r].pop()
            if unsafe[row]:
                continue
            level = parent.level + 1
            best[r] = max(best[r], depth if ended[row] else level)
            if level < depth and not ended[row]:
                stacks[r].append(PathNode(children[row], level, list(range(n_actions))))
    horizon = np.full(len(spent), depth, dtype=np.int64)
    for search in np.flatnonzero(truncated):
        horizon[search] = min(int(best[r]) for r, stack in enumerate(stacks)
                              if owners[r] == search and stack and best[r] < depth)
    return np.minimum(best, horizon[owners]), horizon, nodes
