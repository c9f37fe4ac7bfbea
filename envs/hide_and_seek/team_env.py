"""Hide-and-seek for two learning teams: N grids, every agent acting, one numpy step.

The batched form of :func:`rlgan.envs.hide_and_seek.parallel_env` (same rules, spaces and
rewards): observations come per team as arrays, actions go in as one ``(N, n_agents)`` array,
and a grid that ends resets within the step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from rlgan.config import build_config
from rlgan.envs.hide_and_seek.behaviour import hider_cover, hider_locked_boxes
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import GridBatch
from rlgan.envs.hide_and_seek.observations import observation_space, observe

#: The teams, in agent order (hiders are agents ``0 .. n_hiders - 1``).
TEAMS = ("hider", "seeker")


class TeamVectorEnv:
    """``num_grids`` hide-and-seek games in which both teams act.

    - Observations: ``{"hider": (N, n_hiders, D), "seeker": (N, n_seekers, D)}`` uint8, each
      agent's observation of :mod:`rlgan.envs.hide_and_seek.observations` (one vectorised
      call per agent index over all grids).
    - Actions: ``(N, n_agents)`` int, hiders first; ``Discrete(5)`` per agent (6 with
      ``lockable``).
    - Rewards: ``(N, n_agents)``, as in the PettingZoo env: 0 during preparation, then +1 per
      step to every hider when all hiders are hidden, else -1; seekers get the negative.
    - Episodes end by truncation after ``max_steps``; the grid is then reset at once (the
      observations returned are the new episode's) and ``done`` is True for it.
    - ``info`` (all for the step just taken, before any reset): ``prep`` (N,), ``seen``
      (N, n_hiders), ``cover`` (N, n_hiders) (:func:`hider_cover`), ``pushed`` (N, n_agents),
      ``hider_locked`` (N,) boxes locked by hiders.

    Args:
        num_grids: games stepped together (>= 1).
        **overrides: :class:`HideAndSeekConfig` options (``role`` is ignored; pixels are not
            supported).

    Raises:
        ValueError: ``num_grids < 1``, pixel observations, or a bad option (named).
    """

    def __init__(self, num_grids: int, **overrides: Any) -> None:
        if num_grids < 1:
            raise ValueError(f"num_grids must be >= 1, got {num_grids}")
        self.config = build_config(HideAndSeekConfig, overrides)
        if self.config.observation == "pixels":
            raise ValueError("TeamVectorEnv gives symbolic observations; use observation="
                             "'egocentric' or 'full'")
        self.num_grids = num_grids
        self.n_agents = self.config.n_agents
        self.grid = GridBatch(num_grids, self.config)
        agents = np.arange(self.n_agents)
        self.team_agents = {"hider": agents[: self.config.n_hiders],
                            "seeker": agents[self.config.n_hiders:]}
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = spaces.Discrete(self.config.n_actions)
        self.observation_size = int(self.single_observation_space.shape[0])

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """New games on every grid (grid ``i`` seeded ``seed + i`` when given); returns the
        observations."""
        seeds = None if seed is None else [seed + index for index in range(self.num_grids)]
        self.grid.reset_grids(np.arange(self.num_grids), seeds)
        return self.observe()

    def observe(self) -> dict[str, np.ndarray]:
        """``{team: (N, n_team, D) uint8}`` every agent's observation."""
        result = {}
        for team, agents in self.team_agents.items():
            out = np.empty((self.num_grids, len(agents), self.observation_size), dtype=np.uint8)
            for column, agent in enumerate(agents):
                out[:, column] = observe(self.grid, np.full(self.num_grids, agent))
            result[team] = out
        return result

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                  dict[str, np.ndarray]]:
        """Apply ``actions`` (N, n_agents); return ``(observations, rewards, done, info)``.

        Raises:
            ValueError: actions of the wrong shape or outside the action space.
        """
        actions = np.asarray(actions)
        n_actions = self.config.n_actions
        if actions.shape != (self.num_grids, self.n_agents) or not np.issubdtype(
                actions.dtype, np.integer) or actions.min() < 0 or actions.max() >= n_actions:
            raise ValueError(f"actions must be integers in 0..{n_actions - 1} of shape "
                             f"({self.num_grids}, {self.n_agents}), got {actions.dtype} "
                             f"{actions.shape}")
        result = self.grid.step(actions)
        info = {"prep": result["prep"], "seen": result["seen"], "pushed": result["pushed"],
                "cover": hider_cover(self.grid), "hider_locked": hider_locked_boxes(self.grid)}
        done = result["truncated"].copy()
        if done.any():
            self.grid.reset_grids(np.flatnonzero(done))
        return self.observe(), result["rewards"], done, info
