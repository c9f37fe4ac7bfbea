"""``rlgan/HideAndSeek-v0`` batched: N grids with one learner each, in one numpy step."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlgan.config import build_config
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import GridBatch, HideAndSeekState
from rlgan.envs.hide_and_seek.observations import observation_space, observe
from rlgan.envs.hide_and_seek.scripted import scripted_actions
from rlgan.envs.vector import add_final, check_autoreset_mode


class HideAndSeekVectorEnv(VectorEnv):
    """``num_envs`` :class:`HideAndSeekEnv` games (scripted opponents and teammates) stepped
    together; exactly the single envs seeded ``seed, seed + 1, ...``, with next-step autoreset.
    ``infos`` has ``unsafe``, ``cost``, ``seen`` and ``prep`` arrays (and ``_key`` masks).
    ``autoreset_mode=AutoresetMode.SAME_STEP`` resets finished grids within the step, with
    ``infos["final_obs"]`` and ``infos["final_info"]``."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 **overrides: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        if render_mode is not None:
            raise ValueError("HideAndSeekVectorEnv does not render; render a single env instead")
        self.config = build_config(HideAndSeekConfig, overrides)
        self.num_envs = num_envs
        self.render_mode = None
        self.learner = 0 if self.config.role == "hider" else self.config.n_hiders
        # A learning hider's scripted action is never needed; a learning seeker's is still
        # computed, since it advances the sweep memory that scripted_action() relies on.
        self._scripted_skip = self.learner if self.config.role == "hider" else None
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = spaces.Discrete(self.config.n_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.grid = GridBatch(num_envs, self.config)
        self._learners = np.full(num_envs, self.learner)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._seeded = False

    def _infos(self, seen: np.ndarray, prep: np.ndarray) -> dict[str, np.ndarray]:
        if self.config.role == "hider":
            unsafe = seen[:, self.learner].copy()
        else:
            unsafe = np.zeros(self.num_envs, dtype=bool)
        infos = {"unsafe": unsafe, "cost": unsafe.astype(np.float64),
                 "seen": seen.any(axis=1), "prep": prep}
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
        self.grid.reset_grids(np.arange(self.num_envs), seeds)
        self._seeded = True
        self._needs_reset[:] = False
        return observe(self.grid, self._learners), self._infos(self.grid.hider_seen(), self.grid.in_prep())

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.all(
                (actions >= 0) & (actions < self.config.n_actions) & (actions == np.round(actions))):
            raise ValueError(f"invalid actions {actions!r}: expected {self.num_envs} integers in "
                             f"0..{self.config.n_actions - 1}")
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            return self._step_same_step(actions)
        resetting = self._needs_reset.copy()
        joint = scripted_actions(self.grid, skip=self._scripted_skip)
        joint[:, self.learner] = actions
        result = self.grid.step(joint)
        if resetting.any():
            self.grid.reset_grids(np.flatnonzero(resetting))
        seen = np.where(resetting[:, None], self.grid.hider_seen(), result["seen"])
        prep = np.where(resetting, self.grid.in_prep(), result["prep"])
        rewards = np.where(resetting, 0.0, result["rewards"][:, self.learner])
        truncated = result["truncated"] & ~resetting
        self._needs_reset = truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        return observe(self.grid, self._learners), rewards, terminated, truncated, self._infos(seen, prep)

    def _step_same_step(self, actions: np.ndarray):
        joint = scripted_actions(self.grid, skip=self._scripted_skip)
        joint[:, self.learner] = actions
        result = self.grid.step(joint)
        observations = observe(self.grid, self._learners)
        infos = self._infos(result["seen"], result["prep"])
        truncated = result["truncated"]
        done = np.flatnonzero(truncated)
        if len(done):
            finished = add_final(infos, observations, done)
            self.grid.reset_grids(done)
            observations = observe(self.grid, self._learners)
            reset_infos = self._infos(self.grid.hider_seen(), self.grid.in_prep())
            for key, value in reset_infos.items():
                if not key.startswith("_"):
                    infos[key][done] = value[done]
            infos.update(finished)
        terminated = np.zeros(self.num_envs, dtype=bool)
        return observations, result["rewards"][:, self.learner], terminated, truncated, infos

    def get_states(self) -> list[HideAndSeekState]:
        """The exact state of every grid; ``ended`` marks the grids the next step resets."""
        return [dataclasses.replace(self.grid.get_state(index), ended=bool(self._needs_reset[index]))
                for index in range(self.num_envs)]

    def set_states(self, states: Sequence[HideAndSeekState]) -> np.ndarray:
        """Restore one state per grid; return the learners' observations. The next step resets
        the grids whose state has ``ended`` (next-step autoreset), as it would have then.

        Raises:
            ValueError: not exactly ``num_envs`` states.
        """
        if len(states) != self.num_envs:
            raise ValueError(f"got {len(states)} states for {self.num_envs} envs")
        for index, state in enumerate(states):
            self.grid.set_state(index, state)
        self._needs_reset[:] = [state.ended for state in states]
        self._seeded = True
        return observe(self.grid, self._learners)
