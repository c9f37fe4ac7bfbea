"""A tiny deterministic pixel env used to test env-independent code (recorder, loaders)."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces


class MovingSquareEnv(gymnasium.Env):
    """A 2x2 white square on a 16x16 black RGB frame; actions 0/1/2 move it left/right/not.

    ``info["unsafe"]`` is True when the square touches the left or right border. Episodes
    truncate after ``max_steps``. Deterministic given the reset seed (random start column).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, max_steps: int = 7) -> None:
        self.observation_space = spaces.Box(0, 255, (16, 16, 3), np.uint8)
        self.action_space = spaces.Discrete(3)
        self.render_mode = render_mode
        self.max_steps = max_steps
        self.column = 7
        self.steps = 0

    def _obs(self) -> np.ndarray:
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[7:9, self.column:self.column + 2] = 255
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.column = int(self.np_random.integers(2, 13))
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.column = int(np.clip(self.column + (-1, 1, 0)[int(action)], 0, 14))
        self.steps += 1
        unsafe = self.column in (0, 14)
        return self._obs(), float(self.column), False, self.steps >= self.max_steps, {
            "unsafe": unsafe, "cost": float(unsafe)}

    def scripted_action(self) -> int:
        return 2

    def render(self):
        return self._obs()
