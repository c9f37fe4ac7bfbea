"""The multi-agent hide-and-seek game as a PettingZoo ``ParallelEnv``."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from rlgan.config import build_config
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import HideAndSeekState
from rlgan.envs.hide_and_seek.env import agent_names
from rlgan.envs.hide_and_seek.observations import observation_space
from rlgan.envs.hide_and_seek.single import SingleGrid
from rlgan.envs.checks import check_render_mode


class HideAndSeekParallelEnv(ParallelEnv):
    """Every hider (``hider_0..``) and seeker (``seeker_0..``) acts each step.

    Spaces, rewards and rules are those of :class:`HideAndSeekEnv` (``role`` is ignored).
    ``infos[agent]`` has ``unsafe`` (a hider seen this step; never for seekers), ``cost``,
    ``seen`` and ``prep``. After ``max_steps`` every agent is truncated.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 6,
                "name": "rlgan_hide_and_seek_v0", "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, **overrides: Any) -> None:
        self.config = build_config(HideAndSeekConfig, overrides)
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.possible_agents = agent_names(self.config)
        self.agents: list[str] = []
        self._index = {name: index for index, name in enumerate(self.possible_agents)}
        self._observation_space = observation_space(self.config)
        self._action_space = spaces.Discrete(self.config.n_actions)
        self.grid = SingleGrid(self.config)
        self._renderer = None
        self._seed_rng = np.random.default_rng()

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    def _observations(self) -> dict[str, np.ndarray]:
        return {name: self.grid.observe(index) for name, index in self._index.items()}

    def _infos(self, seen: list[bool], prep: bool) -> dict[str, dict[str, Any]]:
        infos = {}
        for name, index in self._index.items():
            unsafe = bool(seen[index]) if index < self.config.n_hiders else False
            infos[name] = {"unsafe": unsafe, "cost": float(unsafe), "seen": any(seen),
                           "prep": bool(prep)}
        return infos

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._seed_rng = np.random.default_rng(seed)
        self.grid.reset(int(self._seed_rng.integers(2**31)))
        self.agents = list(self.possible_agents)
        if self.render_mode == "human":
            self.render()
        return self._observations(), self._infos(self.grid.hider_seen(), self.grid.in_prep())

    def step(self, actions: dict[str, int]):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset()")
        missing = set(self.agents) - set(actions)
        if missing:
            raise ValueError(f"missing actions for {sorted(missing)}")
        joint = [0] * self.config.n_agents
        for name, action in actions.items():
            if name not in self._index:
                raise ValueError(f"unknown agent {name!r}; agents: {self.possible_agents}")
            if not self._action_space.contains(action):
                raise ValueError(f"invalid action {action!r} for {name}; the action space is "
                                 f"{self._action_space}")
            joint[self._index[name]] = int(action)
        result = self.grid.step(joint)
        truncated = bool(result["truncated"])
        rewards = {name: float(result["rewards"][index]) for name, index in self._index.items()}
        observations = self._observations()
        infos = self._infos(result["seen"], result["prep"])
        terminations = {name: False for name in self.agents}
        truncations = {name: truncated for name in self.agents}
        if truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

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

    def state(self) -> np.ndarray:
        """The full grid observation of ``hider_0``'s team view (PettingZoo's global state)."""
        return self.grid.observe(0)

    def get_state(self) -> HideAndSeekState:
        """The game's exact state (a small value object)."""
        return self.grid.get_state()

    def set_state(self, state: HideAndSeekState) -> dict[str, np.ndarray]:
        """Restore ``state``; return every agent's observation."""
        self.grid.set_state(state)
        self.agents = list(self.possible_agents)
        return self._observations()


def parallel_env(**kwargs: Any) -> HideAndSeekParallelEnv:
    """Make the PettingZoo parallel hide-and-seek game (keywords: :class:`HideAndSeekConfig`
    options and ``render_mode``)."""
    return HideAndSeekParallelEnv(**kwargs)
