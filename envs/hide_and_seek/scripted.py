"""Built-in policies for every agent of a :class:`GridBatch`, vectorised over the batch.

- Seekers chase the cell where they last saw a hider; otherwise they sweep the grid, walking
  greedily towards a cycle of waypoints (the four inner corners and the centre).
- Hiders pick, among staying and the four moves (a move into a box pushes it), the cell the
  seekers cannot see, preferring cells far from the nearest seeker.

Deterministic given the state (no randomness).
"""

from __future__ import annotations

import numpy as np

from rlgan.envs.hide_and_seek.core import BOX, GridBatch


def waypoints(size: int) -> np.ndarray:
    """Sweep targets: inner corners and centre, as cell indices."""
    points = [(1, 1), (1, size - 2), (size - 2, size - 2), (size - 2, 1), (size // 2, size // 2)]
    return np.array([row * size + col for row, col in points])


def _walkable(grid: GridBatch, cells: np.ndarray) -> np.ndarray:
    """(B, M) whether cells are floor without a box or an agent."""
    blocking = grid.blocking()
    offsets = grid.row_major[:, None] * blocking.shape[1]
    return ~np.take(blocking, cells + offsets) & ~grid.occupied(cells)


def seeker_actions(grid: GridBatch, agent: int) -> np.ndarray:
    """(B,) actions of seeker ``agent``; also advances its sweep waypoint when reached."""
    points = waypoints(grid.size)
    here = grid.agents[:, agent]
    chasing = grid.last_seen[:, agent] >= 0
    reached = chasing & (grid.last_seen[:, agent] == here)
    grid.last_seen[:, agent] = np.where(reached, -1, grid.last_seen[:, agent])
    chasing &= ~reached
    waypoint = points[grid.waypoint[:, agent] % len(points)]
    target = np.where(chasing, grid.last_seen[:, agent], waypoint)
    options = grid.neighbours[here]  # (B, 5) after stay/up/down/left/right
    distance = np.abs(grid.rows[options] - grid.rows[target][:, None]) \
        + np.abs(grid.cols[options] - grid.cols[target][:, None])
    walkable = _walkable(grid, options)
    walkable[:, 0] = True
    current = distance[:, 0]
    better = walkable & (distance < current[:, None])
    score = np.where(better, distance, np.iinfo(np.int64).max)
    action = score.argmin(axis=1)  # 0 (stay) when no move is better
    stuck = ~better.any(axis=1) & ~chasing
    arrived = (current <= 1) & ~chasing
    grid.waypoint[:, agent] += (stuck | arrived)
    # When stuck on the way, sidestep to the first free perpendicular cell.
    sidestep = walkable[:, 1:].argmax(axis=1) + 1
    return np.where(stuck & walkable[:, 1:].any(axis=1), sidestep, action)


def hider_actions(grid: GridBatch, agent: int) -> np.ndarray:
    """(B,) actions of hider ``agent``: out of sight first, then far from the seekers."""
    here = grid.agents[:, agent]
    options = grid.neighbours[here]  # (B, 5) after stay/up/down/left/right
    grids = grid.row_major[:, None]
    walkable = _walkable(grid, options)
    behind = grid.neighbours[options, np.arange(5)]
    pushable = (grid.boxes[grids, options] == BOX) & _walkable(grid, behind)
    valid = walkable | pushable
    valid[:, 0] = True
    seekers = grid.agents[:, grid.is_seeker]  # (B, S)
    n_seekers = seekers.shape[1]
    viewer = np.repeat(seekers[:, None, :], 5, axis=1)
    target = np.repeat(options[:, :, None], n_seekers, axis=2)
    facing = np.repeat(grid.facing[:, grid.is_seeker][:, None, :], 5, axis=1)
    visible = grid.sees(viewer, target, facing).any(axis=2)  # (B, 5)
    distance = (np.abs(grid.rows[target] - grid.rows[viewer])
                + np.abs(grid.cols[target] - grid.cols[viewer])).min(axis=2)
    score = np.where(valid, visible * 1000 - distance, np.iinfo(np.int64).max)
    return score.argmin(axis=1)


def scripted_actions(grid: GridBatch, skip: int | None = None) -> np.ndarray:
    """(B, A) the built-in policy's action for every agent (0 for agent ``skip``, whose
    action comes from elsewhere)."""
    actions = np.zeros((grid.num_grids, grid.n_agents), dtype=np.int64)
    for agent in range(grid.n_agents):
        if agent == skip:
            continue
        actions[:, agent] = seeker_actions(grid, agent) if grid.is_seeker[agent] \
            else hider_actions(grid, agent)
    return actions
