"""``rlgan/Driving-v0``: the RoadRash-like driving game as a single Gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlgan.config import build_config
from rlgan.envs.driving.config import MAPS, DrivingConfig
from rlgan.envs.driving.rendering import RoadRenderer, to_grayscale
from rlgan.envs.driving.simulation import Action, DrivingState, RoadBatch
from rlgan.envs.checks import check_render_mode


def observation_space(config: DrivingConfig) -> spaces.Box:
    """``Box(0, 255, (obs_height, obs_width, 1 or 3), uint8)``."""
    channels = 1 if config.grayscale else 3
    return spaces.Box(0, 255, (config.obs_height, config.obs_width, channels), np.uint8)


def step_info(roads: RoadBatch, index: int, crash: bool, offroad: bool) -> dict[str, Any]:
    """The ``info`` dict of road ``index`` after a step."""
    unsafe = bool(crash or offroad)
    return {
        "unsafe": unsafe, "cost": float(unsafe), "crash": bool(crash), "offroad": bool(offroad),
        "speed": float(roads.speed[index]), "distance": float(roads.distance()[index]),
        "lane": int(roads.lane_index()[index]), "crashes": int(roads.crashes[index]),
    }


class DrivingEnv(gymnasium.Env):
    """A RoadRash-like pseudo-3D road seen from behind the player's motorbike.

    - Actions: ``Discrete(3)``: 0 left, 1 right, 2 up (accelerate), as in SAD-GAN; with
      ``actions=5`` also 3 no-op and 4 brake. Not accelerating slows the bike down.
    - Observation: ``Box(0, 255, (64, 64, 3), uint8)`` RGB by default (``obs_height``,
      ``obs_width``, ``grayscale`` change it); ``show_unsafe=True`` draws a burst over the
      bike in frames of unsafe states (the frame a crash ends the episode on).
    - Reward: progress along the road per step as a fraction of the top speed's (0..1), minus
      ``crash_penalty`` on hitting a vehicle and ``offroad_penalty`` on leaving the road.
    - Termination: a crash or leaving the road ends the episode (``on_unsafe="terminate"``) or
      the bike carries on slowed down (``"respawn"``); ``max_steps`` truncates.
    - ``info``: ``unsafe`` (crash or off road), ``cost`` (1.0 when unsafe), ``crash``,
      ``offroad``, ``speed`` (m/s), ``distance`` (m this episode), ``lane`` (0 = leftmost,
      -1 off road), ``crashes``.
    - ``render_mode="rgb_array"``: a ``render_size`` square frame with a HUD; ``"human"``: the
      same in a pygame window at ``metadata["render_fps"]``.

    Options are keywords, see :class:`DrivingConfig`; ``DrivingEnv.MAPS`` names the maps.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 10}
    MAPS = tuple(MAPS)

    def __init__(self, render_mode: str | None = None, **overrides: Any) -> None:
        self.config = build_config(DrivingConfig, overrides)
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.metadata = {**self.metadata, "render_fps": int(round(1 / self.config.dt))}
        self.observation_space = observation_space(self.config)
        self.action_space = spaces.Discrete(self.config.actions)
        self.roads = RoadBatch(1, self.config)
        self.renderer = RoadRenderer(self.config.obs_height, self.config.obs_width,
                                     self.config.map_spec, self.config.show_unsafe)
        self._display_renderer: RoadRenderer | None = None
        self._display = None
        self._seeded = False

    def _observation(self) -> np.ndarray:
        frame = self.renderer.render(self.roads)[0]
        return to_grayscale(frame) if self.config.grayscale else frame

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(2**31))
        self.roads.reset(0, seed)
        self._seeded = True
        observation = self._observation()
        if self.render_mode == "human":
            self.render()
        return observation, step_info(self.roads, 0, False, False)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; the action space is {self.action_space} "
                             f"({', '.join(f'{a.value}={a.name.lower()}' for a in Action if a < self.config.actions)})")
        result = self.roads.step(np.array([int(action)]))
        observation = self._observation()
        info = step_info(self.roads, 0, result.crash[0], result.offroad[0])
        if self.render_mode == "human":
            self.render()
        return (observation, float(result.reward[0]), bool(result.terminated[0]),
                bool(result.truncated[0]), info)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; "
                                  "pass render_mode='rgb_array' or 'human' to gymnasium.make")
            return None
        from rlgan.envs.driving.display import Display

        size = self.config.render_size
        if self._display_renderer is None:
            self._display_renderer = RoadRenderer(size, size, self.config.map_spec,
                                                  self.config.show_unsafe)
            self._display = Display(size, self.metadata["render_fps"])
        frame = self._display.with_hud(self._display_renderer.render(self.roads)[0],
                                       float(self.roads.speed[0]), float(self.roads.distance()[0]),
                                       int(self.roads.crashes[0]))
        if self.render_mode == "human":
            self._display.show(frame)
            return None
        return frame

    def close(self) -> None:
        if self._display is not None:
            self._display.close()

    def get_state(self) -> DrivingState:
        """The simulator's exact state (random generator included), a small value object."""
        return self.roads.get_state(0)

    def set_state(self, state: DrivingState) -> np.ndarray:
        """Restore ``state`` exactly and return the observation there."""
        self.roads.set_state(0, state)
        self._seeded = True
        return self._observation()

    def scripted_action(self) -> int:
        """The built-in driver's action: keep a free lane, pass cars, follow curves."""
        return int(self.roads.scripted_actions()[0])

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Arrow keys: left, right, up; with 5 actions down brakes and no key is no-op.

        With 3 actions (no no-op exists) releasing every key accelerates.
        """
        import pygame

        keys = {(pygame.K_LEFT,): int(Action.LEFT), (pygame.K_RIGHT,): int(Action.RIGHT),
                (pygame.K_UP,): int(Action.UP)}
        if self.config.actions == 5:
            keys[(pygame.K_DOWN,)] = int(Action.BRAKE)
            keys[()] = int(Action.NOOP)
        else:
            keys[()] = int(Action.UP)
        return keys
