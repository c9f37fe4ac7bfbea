"""One hide-and-seek grid in plain Python: the rules of :mod:`core`, fast at batch size one.

A numpy call costs about a microsecond whatever its size, so stepping a single grid with the
batched core spends its time in overhead. :class:`SingleGrid` keeps one grid in Python lists
and ints and applies exactly the same rules, line of sight and scripted policies (a test checks
it step for step against :class:`GridBatch`). Layouts are generated and states converted by
the batched core, so both draw the same random numbers.
"""

from __future__ import annotations

import math

import numpy as np

from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import BOX, FREE, LOCK, LOCKED_BY_HIDERS, LOCKED_BY_SEEKERS, MOVES, GridBatch, HideAndSeekState
from rlgan.envs.hide_and_seek.observations import CHANNELS
from rlgan.envs.hide_and_seek.pixels import frames
from rlgan.envs.hide_and_seek.scripted import waypoints

STEPS = [(int(r), int(c)) for r, c in MOVES]
CONE = math.cos(math.pi / 4)


class SingleGrid:
    """A single grid with the interface the single-agent and PettingZoo envs need."""

    def __init__(self, config: HideAndSeekConfig) -> None:
        self.config = config
        self.size = n = config.size
        self.cells = n * n
        self.batch = GridBatch(1, config)
        self.between = [tuple(int(c) for c in row if c < self.cells) for row in self.batch.table]
        self.is_seeker = [bool(s) for s in self.batch.is_seeker]
        self.hiders = [a for a, s in enumerate(self.is_seeker) if not s]
        self.seekers = [a for a, s in enumerate(self.is_seeker) if s]
        self.points = [int(p) for p in waypoints(n)]
        self.range2 = None if config.vision_range is None else config.vision_range**2
        side = config.view_size if config.observation == "egocentric" else n
        radius = side // 2
        padded = n + 2 * radius
        offsets = np.arange(side)
        self.padded = padded
        self.radius = radius
        self.windows = [((r + offsets)[:, None] * padded + (c + offsets)[None, :]).ravel()
                        for r, c in (divmod(cell, n) for cell in range(self.cells))]
        self.inner = (np.arange(n)[:, None] + radius) * padded + (np.arange(n)[None, :] + radius)
        self._load(self.batch.get_state(0))

    # -- conversion -----------------------------------------------------------------------
    def _load(self, state: HideAndSeekState) -> None:
        self.walls = [bool(w) for w in state.walls]
        self.wall_array = state.walls.astype(np.uint8)
        self.boxes = [int(b) for b in state.boxes]
        self.agents = [int(a) for a in state.agents]
        self.facing = [int(f) for f in state.facing]
        self.last_seen = [int(s) for s in state.last_seen]
        self.waypoint = [int(w) for w in state.waypoint]
        self.steps = state.steps
        self.rng_state = state.rng_state

    def get_state(self) -> HideAndSeekState:
        return HideAndSeekState(
            walls=np.array(self.walls, dtype=bool), boxes=np.array(self.boxes, dtype=np.int8),
            agents=np.array(self.agents, dtype=np.int64), facing=np.array(self.facing, dtype=np.int64),
            last_seen=np.array(self.last_seen, dtype=np.int64),
            waypoint=np.array(self.waypoint, dtype=np.int64), steps=self.steps,
            rng_state=self.rng_state)

    def set_state(self, state: HideAndSeekState) -> None:
        self.batch.set_state(0, state)
        self._load(self.batch.get_state(0))

    def reset(self, seed: int | None = None) -> None:
        if seed is None:
            self.batch.set_state(0, self.get_state())
        self.batch.reset(0, seed)
        self._load(self.batch.get_state(0))

    def as_batch(self) -> GridBatch:
        """The grid as a batch of one (for rendering)."""
        self.batch.set_state(0, self.get_state())
        return self.batch

    # -- rules ----------------------------------------------------------------------------
    def in_prep(self) -> bool:
        return self.steps < self.config.prep_steps

    def sees(self, viewer: int, target: int, facing: int | None = None) -> bool:
        """Line of sight, range and (with ``facing``) view cone, as :meth:`GridBatch.sees`."""
        for cell in self.between[viewer * self.cells + target]:
            if self.walls[cell] or self.boxes[cell] != FREE:
                return False
        d_row = target // self.size - viewer // self.size
        d_col = target % self.size - viewer % self.size
        if self.range2 is not None and d_row * d_row + d_col * d_col > self.range2:
            return False
        if facing is not None and self.config.view_cone:
            direction = STEPS[facing]
            along = d_row * direction[0] + d_col * direction[1]
            if along < CONE * math.sqrt(d_row * d_row + d_col * d_col) - 1e-9:
                return False
        return True

    def hider_seen(self) -> list[bool]:
        return [any(self.sees(self.agents[s], self.agents[h], self.facing[s]) for s in self.seekers)
                for h in self.hiders]

    def step(self, actions: list[int]) -> dict:
        """Apply one action per agent; same result keys as :meth:`GridBatch.step`, unbatched."""
        prep = self.in_prep()
        n, agents, boxes, walls = self.size, self.agents, self.boxes, self.walls
        for agent, action in enumerate(actions):
            if self.is_seeker[agent] and prep:
                action = 0
            moving = 1 <= action <= 4
            if moving:
                self.facing[agent] = action
            if self.config.lockable and action == LOCK:
                self._toggle_lock(agent)
            if not moving:
                continue
            d_row, d_col = STEPS[action]
            here = agents[agent]
            row, col = here // n + d_row, here % n + d_col
            target = row * n + col
            occupied = target in agents
            box = boxes[target]
            b_row, b_col = row + d_row, col + d_col
            inside = 0 <= b_row < n and 0 <= b_col < n
            behind = b_row * n + b_col if inside else 0
            behind_free = inside and not walls[behind] and boxes[behind] == FREE and behind not in agents
            push = box == BOX and behind_free and not occupied
            walk = not walls[target] and box == FREE and not occupied
            if push:
                boxes[behind], boxes[target] = BOX, FREE
            if walk or push:
                agents[agent] = target
        self.steps += 1
        seen = self.hider_seen()
        self._remember_sightings()
        hider_reward = 0.0 if prep else (-1.0 if any(seen) else 1.0)
        rewards = [-hider_reward if s else hider_reward for s in self.is_seeker]
        return {"rewards": rewards, "seen": seen, "prep": prep,
                "truncated": self.steps >= self.config.max_steps}

    def _toggle_lock(self, agent: int) -> None:
        d_row, d_col = STEPS[self.facing[agent]]
        here = self.agents[agent]
        front = (here // self.size + d_row) * self.size + here % self.size + d_col
        own = LOCKED_BY_SEEKERS if self.is_seeker[agent] else LOCKED_BY_HIDERS
        box = self.boxes[front]
        self.boxes[front] = own if box == BOX else (BOX if box == own else box)

    def _remember_sightings(self) -> None:
        for seeker in self.seekers:
            for hider in self.hiders:
                if self.sees(self.agents[seeker], self.agents[hider], self.facing[seeker]):
                    self.last_seen[seeker] = self.agents[hider]
                    break

    # -- scripted policies (as in scripted.py) ------------------------------------------------
    def _neighbours(self, cell: int) -> list[int]:
        n = self.size
        row, col = divmod(cell, n)
        return [min(max(row + dr, 0), n - 1) * n + min(max(col + dc, 0), n - 1) for dr, dc in STEPS]

    def _walkable(self, cell: int) -> bool:
        return not self.walls[cell] and self.boxes[cell] == FREE and cell not in self.agents

    def seeker_action(self, agent: int) -> int:
        n = self.size
        here = self.agents[agent]
        chasing = self.last_seen[agent] >= 0
        if chasing and self.last_seen[agent] == here:
            self.last_seen[agent] = -1
            chasing = False
        target = self.last_seen[agent] if chasing else self.points[self.waypoint[agent] % len(self.points)]
        t_row, t_col = divmod(target, n)
        options = self._neighbours(here)
        distance = [abs(o // n - t_row) + abs(o % n - t_col) for o in options]
        walkable = [True] + [self._walkable(o) for o in options[1:]]
        better = [walkable[k] and distance[k] < distance[0] for k in range(5)]
        action = min((k for k in range(5) if better[k]), key=lambda k: distance[k], default=0)
        stuck = not any(better) and not chasing
        arrived = distance[0] <= 1 and not chasing
        self.waypoint[agent] += stuck or arrived
        if stuck and any(walkable[1:]):
            action = walkable[1:].index(True) + 1
        return action

    def hider_action(self, agent: int) -> int:
        n = self.size
        options = self._neighbours(self.agents[agent])
        best, best_score = 0, None
        for k, option in enumerate(options):
            if k > 0 and not self._walkable(option):
                d_row, d_col = STEPS[k]
                row, col = option // n + d_row, option % n + d_col
                behind = min(max(row, 0), n - 1) * n + min(max(col, 0), n - 1)
                if not (self.boxes[option] == BOX and self._walkable(behind)):
                    continue
            visible = any(self.sees(self.agents[s], option, self.facing[s]) for s in self.seekers)
            distance = min(abs(option // n - self.agents[s] // n) + abs(option % n - self.agents[s] % n)
                           for s in self.seekers)
            score = visible * 1000 - distance
            if best_score is None or score < best_score:
                best, best_score = k, score
        return best

    def scripted_actions(self, skip: int | None = None) -> list[int]:
        return [0 if agent == skip else
                (self.seeker_action(agent) if self.is_seeker[agent] else self.hider_action(agent))
                for agent in range(len(self.agents))]

    # -- observations (as in observations.py) -------------------------------------------------
    def observe(self, agent: int) -> np.ndarray:
        if self.config.observation == "pixels":  # drawn by the batched core, as one grid
            return frames(self.as_batch(), np.array([agent]), self.config.obs_height,
                          self.config.obs_width)[0]
        seen = self.hider_seen()
        team_seen = dict(zip(self.hiders, seen))
        for seeker in self.seekers:
            team_seen[seeker] = any(self.sees(self.agents[h], self.agents[seeker]) for h in self.hiders)
        planes = np.zeros((len(CHANNELS), self.cells), dtype=np.uint8)
        planes[0] = self.wall_array
        for cell, box in enumerate(self.boxes):
            if box != FREE:
                planes[1, cell] = 1
                planes[2, cell] = box > BOX
        me = self.is_seeker[agent]
        for other, cell in enumerate(self.agents):
            if other == agent:
                planes[3, cell] = 1
            elif self.is_seeker[other] == me:
                planes[4, cell] = 1
            elif team_seen[other]:
                planes[5, cell] = 1
        row, col = divmod(self.agents[agent], self.size)
        if self.config.observation == "egocentric":
            padded = np.zeros((len(CHANNELS), self.padded * self.padded), dtype=np.uint8)
            padded[0] = 1
            padded[:, self.inner.ravel()] = planes
            view = padded[:, self.windows[self.agents[agent]]]
        else:
            view = planes
        extras = np.array([self.steps, self.in_prep(), row, col], dtype=np.uint8)
        return np.concatenate([view.ravel(), extras])
