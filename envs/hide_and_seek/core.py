"""The hide-and-seek game on a batch of B grids, stepped together with numpy.

Cells are indexed ``row * size + col``. Agents ``0 .. n_hiders - 1`` are hiders, the rest
seekers. Actions: 0 stay, 1 up, 2 down, 3 left, 4 right, and with ``lockable`` 5 lock/unlock
the box in front (in the direction of the agent's last move).

Moves are resolved one agent at a time in index order (hiders first): a move into a wall, an
agent or the grid edge fails (the agent stays); a move into a box pushes it one cell when the
cell behind it is floor with no agent or box and the box is not locked. During the preparation
phase seekers are frozen and nobody is rewarded; afterwards hiders get +1 when every hider is
hidden from every seeker, else -1, and seekers the negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlgan.envs.hide_and_seek.config import HideAndSeekConfig, layout_rows
from rlgan.envs.hide_and_seek.visibility import between_table, line_of_sight

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
LOCK = 5
FREE, BOX, LOCKED_BY_HIDERS, LOCKED_BY_SEEKERS = 0, 1, 2, 3


@dataclass(frozen=True)
class HideAndSeekState:
    """One grid's exact state (a value: private copies, RNG state included).

    ``ended``: the episode ended on this state, so a vector env with next-step autoreset resets
    the grid on its next step (set by the vector env; the grid and single env ignore it).
    """

    walls: np.ndarray
    boxes: np.ndarray
    agents: np.ndarray
    facing: np.ndarray
    last_seen: np.ndarray
    waypoint: np.ndarray
    steps: int
    rng_state: dict[str, Any]
    ended: bool = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HideAndSeekState):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f))
                   if isinstance(getattr(self, f), np.ndarray) else getattr(self, f) == getattr(other, f)
                   for f in self.__dataclass_fields__)

    __hash__ = None


class GridBatch:
    """B hide-and-seek grids.

    Arrays: ``walls`` (B, C) bool, ``boxes`` (B, C) int8 (0 none, 1 box, 2/3 locked by
    hiders/seekers), ``agents`` (B, A) cell, ``facing`` (B, A) move index 1..4, ``steps`` (B,),
    ``last_seen`` (B, A) the cell where each seeker last saw a hider (-1 never; scripted
    seekers use it), ``waypoint`` (B, A) the scripted seekers' sweep position.
    """

    def __init__(self, num_grids: int, config: HideAndSeekConfig) -> None:
        self.config = config
        self.size = config.size
        self.cells = config.size * config.size
        self.num_grids = num_grids
        self.n_agents = config.n_agents
        self.table = between_table(config.size)
        self.rngs = [np.random.default_rng() for _ in range(num_grids)]
        self.walls = np.zeros((num_grids, self.cells), dtype=bool)
        self.boxes = np.zeros((num_grids, self.cells), dtype=np.int8)
        self.agents = np.zeros((num_grids, self.n_agents), dtype=np.int64)
        self.facing = np.ones((num_grids, self.n_agents), dtype=np.int64)
        self.last_seen = np.full((num_grids, self.n_agents), -1, dtype=np.int64)
        self.waypoint = np.zeros((num_grids, self.n_agents), dtype=np.int64)
        self.steps = np.zeros(num_grids, dtype=np.int64)
        self.is_seeker = np.arange(self.n_agents) >= config.n_hiders
        rows, cols = np.divmod(np.arange(self.cells), self.size)
        self.rows, self.cols = rows, cols
        self.row_major = np.arange(num_grids)
        self.grid_offsets = self.row_major * self.cells  # (B,) grid b's cells in flat (B * C) order
        # (C, 5) the cell after each action 0..4 (stay, moves), clipped to the grid
        neighbour_rows = np.clip(rows[:, None] + MOVES[:, 0], 0, self.size - 1)
        self.neighbours = neighbour_rows * self.size + np.clip(cols[:, None] + MOVES[:, 1], 0, self.size - 1)
        # (C,) bool: the outer walls; the cells boxes start on (two cells from the border)
        self._border = (rows == 0) | (rows == self.size - 1) | (cols == 0) | (cols == self.size - 1)
        self._inner = (rows > 1) & (rows < self.size - 2) & (cols > 1) & (cols < self.size - 2)
        # (2, size, C) bool: the interior wall along column / row i (without its door)
        lines = np.arange(self.size)[:, None]
        self._wall_lines = np.stack([(cols == lines) & ~self._border, (rows == lines) & ~self._border])
        self._blocking = np.zeros((num_grids, self.cells + 1), dtype=bool)
        self._sight: tuple[np.ndarray, np.ndarray] | None = None  # team_sight() until a change
        self._blocking_valid = False

    # -- layouts --------------------------------------------------------------------------
    def reset(self, index: int, seed: int | None = None) -> None:
        """New layout and positions on grid ``index`` (re-seeding it when given a seed)."""
        self.reset_grids(np.array([index]), None if seed is None else [seed])

    def reset_grids(self, indices: np.ndarray, seeds: Sequence[int | None] | None = None) -> None:
        """New layouts and positions on grids ``indices`` (int, (K,)), each exactly as
        :meth:`reset` would make it; ``seeds`` (K ints or Nones) re-seed grids first."""
        indices = np.asarray(indices, dtype=np.int64)
        for index, seed in zip(indices, seeds if seeds is not None else []):
            if seed is not None:
                self.rngs[index] = np.random.default_rng(seed)
        if self.config.layout is not None:
            for index in indices:
                self._parse_layout(index)
        elif len(indices):
            self._generate(indices)
        self.facing[indices] = 1
        self.last_seen[indices] = -1
        self.waypoint[indices] = np.arange(self.n_agents)
        self.steps[indices] = 0
        self._changed()

    def _parse_layout(self, index: int) -> None:
        text = "".join(layout_rows(self.config.layout))
        self.walls[index] = np.array([ch == "#" for ch in text])
        self.boxes[index] = np.array([BOX if ch == "B" else FREE for ch in text], dtype=np.int8)
        hiders = [i for i, ch in enumerate(text) if ch == "H"]
        seekers = [i for i, ch in enumerate(text) if ch == "S"]
        self.agents[index] = hiders + seekers

    def _generate(self, indices: np.ndarray) -> None:
        """Random connected rooms, boxes and agents on grids ``indices`` (K,), each drawing
        from its own generator: up to 50 wall attempts until the floor is connected (else no
        interior walls), then the box cells, then the agent cells."""
        walls = np.empty((len(indices), self.cells), dtype=bool)
        pending = np.arange(len(indices))
        for _ in range(50):
            walls[pending] = self._draw_walls([self.rngs[index] for index in indices[pending]])
            pending = pending[~_connected(walls[pending], self.size)]
            if not len(pending):
                break
        walls[pending] = self._border
        box_cells = np.empty((len(indices), self.config.n_boxes), dtype=np.int64)
        agent_cells = np.empty((len(indices), self.n_agents), dtype=np.int64)
        for row, index in enumerate(indices):
            box_cells[row], agent_cells[row] = self._place(walls[row], self.rngs[index])
        self.walls[indices] = walls
        self.boxes[indices] = FREE
        self.boxes[indices[:, None], box_cells] = BOX
        self.agents[indices] = agent_cells

    def _draw_walls(self, rngs: list[np.random.Generator]) -> np.ndarray:
        """(K, C) bool one attempt at interior walls from each of K generators: each of
        ``config.walls`` lines is drawn as (line, door, orientation), then set and its door
        cleared, in order."""
        size, count = self.size, self.config.walls
        draws = np.array([[int(rng.integers(2, size - 2)), int(rng.integers(1, size - 1)), rng.random() < 0.5]
                          for rng in rngs for _ in range(count)], dtype=np.int64).reshape(len(rngs), count, 3)
        walls = np.repeat(self._border[None], len(rngs), axis=0)
        grids = np.arange(len(rngs))
        for line, door, horizontal in draws.transpose(1, 2, 0):  # each (K,)
            walls |= self._wall_lines[horizontal, line]
            walls[grids, np.where(horizontal, line * size + door, door * size + line)] = False
        return walls

    def _place(self, walls: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Box cells (n_boxes,) and agent cells (A,) on the floor of ``walls`` (C,) bool.

        Boxes stay off the cells next to the outer wall, where they could never be pulled back.
        """
        floor = ~walls
        inner = np.flatnonzero(floor & self._inner)
        pool = inner if len(inner) >= self.config.n_boxes else np.flatnonzero(floor)
        box_cells = rng.choice(pool, size=self.config.n_boxes, replace=False)
        floor[box_cells] = False
        agent_cells = rng.choice(np.flatnonzero(floor), size=self.n_agents, replace=False)
        return box_cells, agent_cells

    # -- states ---------------------------------------------------------------------------
    def get_state(self, index: int) -> HideAndSeekState:
        """Copy grid ``index``."""
        return HideAndSeekState(
            walls=self.walls[index].copy(), boxes=self.boxes[index].copy(),
            agents=self.agents[index].copy(), facing=self.facing[index].copy(),
            last_seen=self.last_seen[index].copy(), waypoint=self.waypoint[index].copy(),
            steps=int(self.steps[index]),
            rng_state=_copy(self.rngs[index].bit_generator.state))

    def set_state(self, index: int, state: HideAndSeekState) -> None:
        """Restore grid ``index`` from ``state``.

        Raises:
            ValueError: the state belongs to another grid size or team sizes.
        """
        if not isinstance(state, HideAndSeekState):
            raise TypeError(f"expected a HideAndSeekState, got {type(state).__name__}")
        if state.walls.shape != (self.cells,) or state.agents.shape != (self.n_agents,):
            raise ValueError(f"state is for {len(state.walls)} cells and {len(state.agents)} "
                             f"agents, this game has {self.cells} cells and {self.n_agents} agents")
        self.walls[index], self.boxes[index] = state.walls, state.boxes
        self.agents[index], self.facing[index] = state.agents, state.facing
        self.last_seen[index], self.waypoint[index] = state.last_seen, state.waypoint
        self.steps[index] = state.steps
        rng = np.random.default_rng()
        rng.bit_generator.state = _copy(state.rng_state)
        self.rngs[index] = rng
        self._changed()

    # -- rules ----------------------------------------------------------------------------
    def in_prep(self) -> np.ndarray:
        """(B,) True while the preparation phase lasts (seekers frozen, no reward)."""
        return self.steps < self.config.prep_steps

    def _changed(self) -> None:
        """Drop what was derived from the grids (blocking cells, sight) after they change."""
        self._blocking_valid = False
        self._sight = None

    def blocking(self) -> np.ndarray:
        """(B, C + 1) bool walls and boxes, with a never-blocking sentinel cell at index C.

        A buffer kept until the grids change: read it, do not modify or keep it.
        """
        if not self._blocking_valid:
            cells = self._blocking[:, : self.cells]
            np.not_equal(self.boxes, FREE, out=cells)
            cells |= self.walls
            self._blocking_valid = True
        return self._blocking

    def sees(self, viewer: np.ndarray, target: np.ndarray, facing: np.ndarray | None = None,
             blocking: np.ndarray | None = None) -> np.ndarray:
        """Whether cells ``viewer`` see cells ``target`` (broadcastable (B, ...)) under the
        range and, when ``facing`` is given and ``view_cone`` is on, the cone rules."""
        if blocking is None:
            blocking = self.blocking()
        visible = line_of_sight(blocking, self.table, viewer, target)
        visible &= self.in_view(viewer, target, facing)
        return visible

    def in_view(self, viewer: np.ndarray, target: np.ndarray,
                 facing: np.ndarray | None) -> np.ndarray | bool:
        """Whether ``target`` is within the vision range of ``viewer`` and, with ``facing``
        and ``view_cone``, within its cone (bool array of the broadcast shape, or True)."""
        visible: np.ndarray | bool = True
        d_row = self.rows[target] - self.rows[viewer]
        d_col = self.cols[target] - self.cols[viewer]
        if self.config.vision_range is not None:
            visible = d_row**2 + d_col**2 <= self.config.vision_range**2
        if facing is not None and self.config.view_cone:
            direction = MOVES[facing]
            along = d_row * direction[..., 0] + d_col * direction[..., 1]
            distance = np.sqrt(d_row**2 + d_col**2)
            visible = visible & (along >= np.cos(np.pi / 4) * distance - 1e-9)
        return visible

    def team_sight(self) -> tuple[np.ndarray, np.ndarray]:
        """Whether each seeker sees each hider, and whether each hider sees each seeker,
        both (B, n_seekers, n_hiders) bool; cached until the grids change.

        Line of sight is symmetric (the between table lists the same cells both ways, which
        a test checks), so one lookup serves both teams; only the seekers' cone differs.
        """
        if self._sight is None:
            seekers = self.agents[:, self.is_seeker][:, :, None]  # (B, S, 1)
            hiders = self.agents[:, ~self.is_seeker][:, None, :]  # (B, 1, H)
            facing = self.facing[:, self.is_seeker][:, :, None]
            clear = line_of_sight(self.blocking(), self.table, seekers, hiders)
            clear &= self.in_view(seekers, hiders, None)
            self._sight = (clear & self.in_view(seekers, hiders, facing), clear)
        return self._sight

    def seen_cells(self) -> np.ndarray:
        """(B, C) bool: the cells some seeker sees right now (line of sight, range and cone,
        as for hiders: a hider is seen exactly when it stands on one of them)."""
        cells = np.broadcast_to(np.arange(self.cells), (self.num_grids, self.cells))
        seen = np.zeros((self.num_grids, self.cells), dtype=bool)
        for seeker in np.flatnonzero(self.is_seeker):
            viewer = np.broadcast_to(self.agents[:, seeker, None], cells.shape)
            facing = np.broadcast_to(self.facing[:, seeker, None], cells.shape)
            seen |= self.sees(viewer, cells, facing)
        return seen

    def seeker_sight(self) -> np.ndarray:
        """(B, n_seekers, n_hiders) whether each seeker sees each hider."""
        return self.team_sight()[0]

    def occupied(self, cells: np.ndarray) -> np.ndarray:
        """Whether an agent stands on ``cells`` ((B, ...) int), same shape bool."""
        agents = self.agents.reshape(self.agents.shape + (1,) * (cells.ndim - 1))
        occupied = cells == agents[:, 0]
        for agent in range(1, self.n_agents):
            occupied |= cells == agents[:, agent]
        return occupied

    def hider_seen(self) -> np.ndarray:
        """(B, n_hiders) whether any seeker sees each hider."""
        return self.seeker_sight().any(axis=1)

    def seeker_seen(self) -> np.ndarray:
        """(B, n_seekers) whether any hider sees each seeker (line of sight and range)."""
        return self.team_sight()[1].any(axis=2)

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Apply ``actions`` (B, A) and return rewards (B, A), ``seen`` (B, n_hiders),
        ``truncated`` (B,), ``prep`` (B,) (whether this step was in the preparation phase) and
        ``pushed`` (B, A) bool (the agent pushed a box one cell this step)."""
        prep = self.in_prep()
        grids = self.row_major
        pushed = np.zeros((self.num_grids, self.n_agents), dtype=bool)
        self._changed()
        for agent in range(self.n_agents):
            action = actions[:, agent]
            if self.is_seeker[agent]:
                action = np.where(prep, 0, action)
            moving = (action >= 1) & (action <= 4)
            self.facing[:, agent] = np.where(moving, action, self.facing[:, agent])
            if self.config.lockable:
                self._toggle_locks(agent, action == LOCK)
            if not moving.any():
                continue
            move = np.where(moving, action, 0)
            here = self.agents[:, agent]
            target = self.neighbours[here, move]  # never leaves the grid: the border is walls
            # Beyond the border the table repeats the border cell: a wall, so never free.
            behind = self.neighbours[target, move]
            occupied = self.occupied(target)
            box = np.take(self.boxes, target + self.grid_offsets)
            behind_box = np.take(self.boxes, behind + self.grid_offsets)
            behind_free = ~np.take(self.walls, behind + self.grid_offsets) & (behind_box == FREE) \
                & ~self.occupied(behind)
            push = moving & (box == BOX) & behind_free & ~occupied
            walk = moving & ~np.take(self.walls, target + self.grid_offsets) & (box == FREE) & ~occupied
            pushed[:, agent] = push
            if push.any():
                self.boxes[grids[push], behind[push]] = BOX
                self.boxes[grids[push], target[push]] = FREE
            self.agents[:, agent] = np.where(walk | push, target, here)
        self.steps += 1
        sight = self.seeker_sight()
        seen = sight.any(axis=1)
        self._remember_sightings(sight)
        hidden = ~seen.any(axis=1)
        hider_reward = np.where(prep, 0.0, np.where(hidden, 1.0, -1.0))
        rewards = np.where(self.is_seeker[None, :], -hider_reward[:, None], hider_reward[:, None])
        return {"rewards": rewards, "seen": seen, "prep": prep, "pushed": pushed,
                "truncated": self.steps >= self.config.max_steps}

    def _toggle_locks(self, agent: int, locking: np.ndarray) -> None:
        if not locking.any():
            return
        grids = np.flatnonzero(locking)
        here = self.agents[grids, agent]
        delta = MOVES[self.facing[grids, agent]]
        front = (self.rows[here] + delta[:, 0]) * self.size + self.cols[here] + delta[:, 1]
        own = LOCKED_BY_SEEKERS if self.is_seeker[agent] else LOCKED_BY_HIDERS
        box = self.boxes[grids, front]
        self.boxes[grids, front] = np.where(box == BOX, own, np.where(box == own, BOX, box))

    def _remember_sightings(self, sight: np.ndarray) -> None:
        """Each seeker remembers where it last saw a hider (for the scripted seekers);
        ``sight`` is :meth:`seeker_sight`."""
        hiders = self.agents[:, ~self.is_seeker]
        first = sight.argmax(axis=2)  # (B, S) first hider each seeker sees
        spotted = sight.any(axis=2)
        seekers = np.flatnonzero(self.is_seeker)
        spotted_cell = np.take_along_axis(hiders, first, axis=1)
        self.last_seen[:, seekers] = np.where(spotted, spotted_cell, self.last_seen[:, seekers])


def _connected(walls: np.ndarray, size: int) -> np.ndarray:
    """(P,) whether every floor cell of each (P, C) bool wall layout is reachable from every
    other (4-neighbour flood fill from the first floor cell; the border must be walls)."""
    floor = ~walls
    reached = np.zeros_like(floor)
    reached[np.arange(len(floor)), floor.argmax(axis=1)] = True
    while True:
        grown = reached.copy()
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown[:, size:] |= reached[:, :-size]
        grown[:, :-size] |= reached[:, size:]
        grown &= floor
        if np.array_equal(grown, reached):
            return (reached == floor).all(axis=1)
        reached = grown


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in state.items()}
