"""``rlgan/HideAndSeek-v0``: one learner in the hide-and-seek game, the others scripted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlgan.config import build_config
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import HideAndSeekState
from rlgan.envs.hide_and_seek.observations import observation_space
from rlgan.envs.hide_and_seek.single import SingleGrid
from rlgan.envs.checks import check_render_mode

Policy = Callable[[np.ndarray], int]


def agent_names(config: HideAndSeekConfig) -> list[str]:
    """``hider_0 .. hider_{H-1}, seeker_0 .. seeker_{S-1}`` in agent index order."""
    return [f"hider_{i}" for i in range(config.n_hiders)] + \
        [f"seeker_{i}" for i in range(config.n_seekers)]


class HideAndSeekEnv(gymnasium.Env):
    """Hide-and-seek on a grid with walls and movable boxes, played by one learner.

    The learner is ``hider_0`` (``role="hider"``, default) or ``seeker_0`` (``role="seeker"``);
    every other agent follows the built-in scripted policy, or ``policies[name]`` (a callable
    from that agent's observation to its action) when given.

    - Actions: ``Discrete(5)``: 0 stay, 1 up, 2 down, 3 left, 4 right (moving into a box pushes
      it); with ``lockable=True`` ``Discrete(6)``, 5 locks/unlocks the box in front.
    - Observation: flat ``Box(0, 255, (6 * k * k + 4,), uint8)``, see
      :mod:`rlgan.envs.hide_and_seek.observations`; with ``observation="pixels"`` a top-down
      RGB image ``Box(0, 255, (obs_height, obs_width, 3), uint8)`` (64 x 64 by default) with
      the cells the seekers see shaded, see :mod:`rlgan.envs.hide_and_seek.pixels`.
    - Reward: 0 during the preparation phase; then +1 per step when every hider is hidden from
      every seeker, else -1 (the seeker's reward is the negative).
    - ``info``: ``unsafe`` (for a hider learner: it is seen this step; a seeker learner is never
      unsafe), ``cost``, ``seen`` (any hider seen), ``prep`` (the step was in the
      preparation phase).
    - Episodes are truncated after ``max_steps``; there is no termination.
    - The safety shield's task ("a hider that avoids being seen"):
      ``gymnasium.make("rlgan/HideAndSeek-v0", **SHIELD_TASK)``, pixel frames and a seeker that
      sees a short cone ahead (:data:`rlgan.envs.hide_and_seek.config.SHIELD_TASK`).
    - ``get_state()`` / ``set_state(state)`` save and restore the game exactly (the random
      generator included; the scripted agents are deterministic), for the oracle search.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 6}

    def __init__(self, render_mode: str | None = None,
                 policies: Mapping[str, Policy] | None = None, **overrides: Any) -> None:
        self.config = build_config(HideAndSeekConfig, overrides)
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.names = agent_names(self.config)
        unknown = set(policies or {}) - set(self.names)
        if unknown:
            raise ValueError(f"policies for unknown agents {sorted(unknown)}; agents: {self.names}")
        self.policies = dict(policies or {})
        self.learner = 0 if self.config.role == "hider" else self.config.n_hiders
        # A learning hider's scripted action is never needed; a learning seeker's is still
        # computed, since it advances the sweep memory that scripted_action() relies on.
        self._scripted_skip = self.learner if self.config.role == "hider" else None
        self.observation_space = observation_space(self.config)
        self.action_space = spaces.Discrete(self.config.n_actions)
        self.grid = SingleGrid(self.config)
        self._renderer = None
        self._seeded = False

    def _observation(self, agent: int | None = None) -> np.ndarray:
        return self.grid.observe(self.learner if agent is None else agent)

    def _info(self, seen: list[bool] | None = None, prep: bool | None = None) -> dict[str, Any]:
        seen = self.grid.hider_seen() if seen is None else seen
        unsafe = bool(seen[self.learner]) if self.config.role == "hider" else False
        return {"unsafe": unsafe, "cost": float(unsafe), "seen": any(seen),
                "prep": self.grid.in_prep() if prep is None else bool(prep)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(2**31))
        self.grid.reset(seed)
        self._seeded = True
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; the action space is {self.action_space} "
                             "(0 stay, 1 up, 2 down, 3 left, 4 right"
                             + (", 5 lock)" if self.config.lockable else ")"))
        actions = self.grid.scripted_actions(skip=self._scripted_skip)
        for agent, name in enumerate(self.names):
            if name in self.policies and agent != self.learner:
                actions[agent] = int(self.policies[name](self._observation(agent)))
        actions[self.learner] = int(action)
        result = self.grid.step(actions)
        if self.render_mode == "human":
            self.render()
        return (self._observation(), float(result["rewards"][self.learner]), False,
                bool(result["truncated"]), self._info(result["seen"], result["prep"]))

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode")
            return None
        from rlgan.envs.hide_and_seek.rendering import GridRenderer

        if self._renderer is None:
            self._renderer = GridRenderer(self.metadata["render_fps"])
        frame = self._renderer.frame(self.grid.as_batch(), 0)
        if self.render_mode == "human":
            self._renderer.show(frame)
            return None
        return frame

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()

    def get_state(self) -> HideAndSeekState:
        """The game's exact state (random generator included), a small value object."""
        return self.grid.get_state()

    def set_state(self, state: HideAndSeekState) -> np.ndarray:
        """Restore ``state`` exactly and return the learner's observation there."""
        self.grid.set_state(state)
        self._seeded = True
        return self._observation()

    def scripted_action(self) -> int:
        """The built-in policy's action for the learner's role."""
        waypoint, last_seen = list(self.grid.waypoint), list(self.grid.last_seen)
        action = self.grid.scripted_actions()[self.learner]
        # The seekers' sweep memory must not advance twice (here and in step()).
        self.grid.waypoint, self.grid.last_seen = waypoint, last_seen
        return action

    @property
    def n_states(self) -> int:
        """Upper bound (exclusive) of :meth:`encode_state`."""
        inner = (self.config.size - 2) ** 2
        per_box = inner * (3 if self.config.lockable else 1)
        return inner ** self.config.n_agents * per_box ** self.config.n_boxes * 2

    def encode_state(self) -> int:
        """A compact integer for tabular methods: every agent's and box's inner cell (boxes
        in ascending order, with their lock), and the phase flag. Distinct positions give
        distinct integers; it is meant for small grids (``n_states`` grows as cells^items)."""
        size, grid = self.config.size, self.grid
        inner = size - 2

        def inner_index(cell: int) -> int:
            row, col = divmod(int(cell), size)
            return (row - 1) * inner + (col - 1)

        code = int(grid.in_prep())
        for cell in grid.agents:
            code = code * inner * inner + inner_index(cell)
        lock_levels = 3 if self.config.lockable else 1
        for cell in (cell for cell, box in enumerate(grid.boxes) if box):
            lock = grid.boxes[cell] - 1 if self.config.lockable else 0
            code = (code * inner * inner + inner_index(cell)) * lock_levels + lock
        return code

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Arrow keys move, no key stays; space locks/unlocks with ``lockable``."""
        import pygame

        keys = {(): 0, (pygame.K_UP,): 1, (pygame.K_DOWN,): 2, (pygame.K_LEFT,): 3,
                (pygame.K_RIGHT,): 4}
        if self.config.lockable:
            keys[(pygame.K_SPACE,)] = 5
        return keys
