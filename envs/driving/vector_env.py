"""``rlgan/Driving-v0`` as a batched Gymnasium ``VectorEnv``: N roads in one numpy step."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlgan.config import build_config
from rlgan.envs.driving.config import DrivingConfig
from rlgan.envs.driving.env import observation_space
from rlgan.envs.driving.rendering import RoadRenderer, to_grayscale
from rlgan.envs.driving.simulation import DrivingState, RoadBatch
from rlgan.envs.vector import add_final, check_autoreset_mode


class DrivingVectorEnv(VectorEnv):
    """``num_envs`` driving games stepped together; exactly the frames of ``num_envs``
    :class:`DrivingEnv` seeded ``seed, seed + 1, ...`` (Gymnasium's ``SyncVectorEnv``
    convention), with next-step autoreset.

    ``infos`` holds the single env's keys as arrays (with Gymnasium's ``_key`` masks).
    ``render()`` returns the ``rgb_array`` frames of every road, ``(num_envs, S, S, 3)``.
    ``autoreset_mode=AutoresetMode.SAME_STEP`` resets finished roads within the step instead,
    with ``infos["final_obs"]`` and ``infos["final_info"]`` (as Gymnasium's vector envs do).
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP,
                "render_fps": 10}

    def __init__(self, num_envs: int, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 **overrides: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.config = build_config(DrivingConfig, overrides)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"DrivingVectorEnv renders only 'rgb_array', got {render_mode!r}")
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = spaces.Discrete(self.config.actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.roads = RoadBatch(num_envs, self.config)
        self.renderer = RoadRenderer(self.config.obs_height, self.config.obs_width,
                                     self.config.map_spec, self.config.show_unsafe)
        self._display_renderer: RoadRenderer | None = None
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._seeded = False

    def _observations(self) -> np.ndarray:
        frames = self.renderer.render(self.roads)
        return to_grayscale(frames) if self.config.grayscale else frames

    def _infos(self, crash: np.ndarray, offroad: np.ndarray) -> dict[str, np.ndarray]:
        unsafe = crash | offroad
        infos = {
            "unsafe": unsafe, "cost": unsafe.astype(np.float64), "crash": crash,
            "offroad": offroad, "speed": self.roads.speed.copy(),
            "distance": self.roads.distance(), "lane": self.roads.lane_index(),
            "crashes": self.roads.crashes.copy(),
        }
        mask = np.ones(self.num_envs, dtype=bool)
        infos.update({f"_{key}": mask for key in list(infos)})
        return infos

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        super().reset(seed=seed if seed is None or isinstance(seed, int) else None)
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
            if not self._seeded:
                seeds = [int(s) for s in self.np_random.integers(2**31, size=self.num_envs)]
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        for index, road_seed in enumerate(seeds):
            self.roads.reset(index, road_seed)
        self._seeded = True
        self._needs_reset[:] = False
        none = np.zeros(self.num_envs, dtype=bool)
        return self._observations(), self._infos(none, none)

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.all(
                (actions >= 0) & (actions < self.config.actions) & (actions == np.round(actions))):
            raise ValueError(f"invalid actions {actions!r}: expected {self.num_envs} integers in "
                             f"0..{self.config.actions - 1} (action space {self.action_space})")
        actions = actions.astype(np.int64)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            return self._step_same_step(actions)
        resetting = self._needs_reset.copy()
        result = self.roads.step(actions)
        for index in np.nonzero(resetting)[0]:
            self.roads.reset(index)
        zeros = np.zeros(self.num_envs, dtype=bool)
        reward = np.where(resetting, 0.0, result.reward)
        terminated = np.where(resetting, False, result.terminated)
        truncated = np.where(resetting, False, result.truncated)
        crash = np.where(resetting, zeros, result.crash)
        offroad = np.where(resetting, zeros, result.offroad)
        self._needs_reset = terminated | truncated
        return self._observations(), reward, terminated, truncated, self._infos(crash, offroad)

    def _step_same_step(self, actions: np.ndarray):
        result = self.roads.step(actions)
        observations = self._observations()
        infos = self._infos(result.crash, result.offroad)
        done = np.flatnonzero(result.terminated | result.truncated)
        if len(done):
            finished = add_final(infos, observations, done)
            for index in done:
                self.roads.reset(index)
            fresh = self.renderer.render(self.roads, done)
            observations[done] = to_grayscale(fresh) if self.config.grayscale else fresh
            reset_infos = self._infos(np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))
            for key, value in reset_infos.items():
                if not key.startswith("_"):
                    infos[key][done] = value[done]
            infos.update(finished)
        return observations, result.reward, result.terminated, result.truncated, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode='rgb_array'")
            return None
        size = self.config.render_size
        if self._display_renderer is None:
            self._display_renderer = RoadRenderer(size, size, self.config.map_spec,
                                                  self.config.show_unsafe)
        return self._display_renderer.render(self.roads)

    def get_states(self) -> list[DrivingState]:
        """The exact state of every road; ``ended`` marks the roads the next step resets."""
        return [dataclasses.replace(self.roads.get_state(index), ended=bool(self._needs_reset[index]))
                for index in range(self.num_envs)]

    def set_states(self, states: Sequence[DrivingState]) -> np.ndarray:
        """Restore one state per road and return the observations there; the next step resets
        the roads whose state has ``ended`` (next-step autoreset), as it would have then.

        Raises:
            ValueError: not exactly ``num_envs`` states.
        """
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} states for {self.num_envs} envs")
        for index, state in enumerate(states):
            self.roads.set_state(index, state)
        self._needs_reset[:] = [state.ended for state in states]
        self._seeded = True
        return self._observations()

    def scripted_actions(self) -> np.ndarray:
        """The built-in driver's action on every road, ``(num_envs,)`` int64."""
        return self.roads.scripted_actions()


