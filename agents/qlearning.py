"""Tabular epsilon-greedy Q-learning.

``Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') - Q(s, a))`` (no bootstrap from
terminal states; truncated episodes bootstrap). States are the observation of a ``Discrete``
observation space or the env's ``encode_state()``; the table is sparse (a dict of rows), so
large state spaces cost only the states visited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from rlgan.agents.schedules import LinearSchedule
from rlgan.config import build_config
from rlgan.io import atomic_path, write_json


@dataclass(frozen=True)
class QLearningConfig:
    """Hyperparameters of :class:`QLearningAgent` (epsilon and alpha decay linearly over
    ``*_fraction`` of training)."""

    gamma: float = 0.99
    alpha_start: float = 0.5
    alpha_end: float = 0.05
    alpha_fraction: float = 1.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_fraction: float = 0.5
    initial_q: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        for name in ("alpha_start", "alpha_end", "epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def state_function(env: gymnasium.Env) -> Callable[[Any], int]:
    """How to read the tabular state: the observation if ``Discrete``, else ``encode_state()``.

    Raises:
        ValueError: the env has neither.
    """
    if isinstance(env.observation_space, gymnasium.spaces.Discrete):
        return lambda observation: int(observation)
    if hasattr(env.unwrapped, "encode_state"):
        return lambda observation: int(env.unwrapped.encode_state())
    raise ValueError(f"Q-learning needs a Discrete observation space or an env with "
                     f"encode_state(); {env.spec.id if env.spec else env} has "
                     f"{env.observation_space}")


class QLearningAgent:
    """Epsilon-greedy tabular Q-learning on one Gymnasium env.

    Args:
        env: training env with a ``Discrete`` action space.
        seed: seeds exploration and the env's resets.
        **hyperparameters: :class:`QLearningConfig` fields.
    """

    def __init__(self, env: gymnasium.Env, seed: int = 0, **hyperparameters: Any) -> None:
        if not isinstance(env.action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"Q-learning needs a Discrete action space, got {env.action_space}")
        self.config = build_config(QLearningConfig, hyperparameters)
        self.env = env
        self.n_actions = int(env.action_space.n)
        self.state_of = state_function(env)
        self.table: dict[int, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.num_timesteps = 0
        self.episodes = 0
        self.total_steps = 1
        self._observation: Any = None
        self.epsilon_schedule = LinearSchedule(self.config.epsilon_start, self.config.epsilon_end,
                                               self.config.epsilon_fraction)
        self.alpha_schedule = LinearSchedule(self.config.alpha_start, self.config.alpha_end,
                                             self.config.alpha_fraction)

    @property
    def progress(self) -> float:
        """Fraction of the planned training steps done."""
        return self.num_timesteps / max(self.total_steps, 1)

    @property
    def epsilon(self) -> float:
        return self.epsilon_schedule(self.progress)

    def row(self, state: int) -> np.ndarray:
        """The Q-values of ``state`` (created on first visit)."""
        if state not in self.table:
            self.table[state] = np.full(self.n_actions, self.config.initial_q)
        return self.table[state]

    def q_values(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray:
        """Q-values of every action in the state of ``observation`` (read from ``env``'s
        ``encode_state()`` where the observation is not the state)."""
        state_of = self.state_of if env is None else state_function(env)
        return self.row(state_of(observation)).copy()

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True, env: gymnasium.Env | None = None) -> tuple[int, None]:
        """Greedy action (ties broken by the lowest index), SB3-style ``(action, None)``."""
        return int(np.argmax(self.q_values(observation, env))), None

    def learn(self, total_steps: int, callback: Callable[["QLearningAgent", dict], None] | None = None,
              total_planned: int | None = None) -> "QLearningAgent":
        """Train for ``total_steps`` more steps; ``callback(agent, info)`` runs after each.

        ``total_planned`` is the length of the whole run (for the schedules when training in
        chunks); by default this call is the whole run.
        """
        self.total_steps = total_planned or (self.num_timesteps + total_steps)
        gamma = self.config.gamma
        if self._observation is None:
            self._observation, _ = self.env.reset(seed=self.seed + self.episodes)
        for _ in range(total_steps):
            state = self.state_of(self._observation)
            q = self.row(state)
            if self.rng.random() < self.epsilon:
                action = int(self.rng.integers(self.n_actions))
            else:  # greedy, ties broken at random so untried actions still get tried
                action = int(self.rng.choice(np.flatnonzero(q == q.max())))
            observation, reward, terminated, truncated, info = self.env.step(action)
            next_state = self.state_of(observation)
            bootstrap = 0.0 if terminated else gamma * float(self.row(next_state).max())
            q[action] += self.alpha_schedule(self.progress) * (float(reward) + bootstrap - q[action])
            self.num_timesteps += 1
            self._observation = observation
            if terminated or truncated:
                self.episodes += 1
                self._observation, _ = self.env.reset(seed=self.seed + self.episodes)
            if callback is not None:
                callback(self, info)
        return self

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``q_table.npz`` (states, values) and ``qlearning.json`` (hyperparameters,
        counters, RNG state) into ``directory``, each atomically. No pickle."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        states = np.array(sorted(self.table), dtype=np.int64)
        values = np.array([self.table[s] for s in states.tolist()], dtype=np.float64).reshape(-1, self.n_actions)
        with atomic_path(directory / "q_table.npz") as tmp:
            with open(tmp, "wb") as file:
                np.savez(file, states=states, values=values)
        write_json(directory / "qlearning.json", {
            "hyperparameters": asdict(self.config), "n_actions": self.n_actions, "seed": self.seed,
            "num_timesteps": self.num_timesteps, "episodes": self.episodes,
            "total_steps": self.total_steps, "rng_state": self.rng.bit_generator.state})

    def load(self, directory: str | Path) -> "QLearningAgent":
        """Restore what :meth:`save` wrote (the env must have the same number of actions).

        Raises:
            ValueError: missing or corrupt files, or a different number of actions.
        """
        directory = Path(directory)
        try:
            meta = json.loads((directory / "qlearning.json").read_text())
            with np.load(directory / "q_table.npz", allow_pickle=False) as data:
                states, values = data["states"], data["values"]
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"cannot load a Q-learning checkpoint from {directory}: {error}") from error
        if meta["n_actions"] != self.n_actions or values.shape != (len(states), self.n_actions):
            raise ValueError(f"checkpoint {directory} has {meta['n_actions']} actions, the env "
                             f"has {self.n_actions}")
        self.table = {int(s): v.copy() for s, v in zip(states, values)}
        self.num_timesteps, self.episodes = meta["num_timesteps"], meta["episodes"]
        self.total_steps = meta["total_steps"]
        self.rng.bit_generator.state = meta["rng_state"]
        self._observation = None
        return self
