"""``rlgan/Atari-v0`` batched on ale-py's native multi-threaded vector environment."""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlgan.config import build_config
from rlgan.envs.atari.config import AtariConfig


_NO_STATES = ("AtariVectorEnv cannot save or restore states (ale-py's C++ vector env has no "
              "clone/restore); use single rlgan/Atari-v0 envs: env.unwrapped.get_state() and "
              "set_state(state)")


class AtariVectorEnv(VectorEnv):
    """``num_envs`` games in ale-py's C++ ``AtariVectorEnv`` (threads, no Python per step).

    Same spaces, preprocessing settings and ``info["unsafe"]`` (life lost) as
    :class:`AtariEnv`. The frames are equivalent, not identical, to N single envs: ale-py
    resizes and draws its no-op starts and sticky actions in C++ with its own generator.

    It cannot save or restore states: ale-py's C++ vector interface has no clone or restore,
    so there is no ``get_states()``/``set_states()`` (reading either raises an
    ``AttributeError`` that says so, and ``hasattr`` is False). Restore single
    :class:`AtariEnv` copies with ``get_state()``/``set_state()`` instead.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, render_mode: str | None = None, num_threads: int = 0,
                 **overrides: Any) -> None:
        from ale_py.vector_env import AtariVectorEnv as NativeVectorEnv

        if render_mode is not None:
            raise ValueError("AtariVectorEnv does not render; render a single env instead")
        self.config = config = build_config(AtariConfig, overrides)
        nature = config.obs_mode == "nature"
        self.native = NativeVectorEnv(
            config.rom, num_envs, num_threads=num_threads,
            max_num_frames_per_episode=config.max_steps * config.frame_skip,
            repeat_action_probability=config.repeat_action_probability,
            full_action_space=config.full_action_space,
            img_height=84 if nature else config.obs_height,
            img_width=84 if nature else config.obs_width,
            grayscale=nature, stack_num=4 if nature else 1, frameskip=config.frame_skip,
            noop_max=config.noop_max, episodic_life=config.terminal_on_life_loss,
            reward_clipping=config.clip_rewards, use_fire_reset=True)
        self.num_envs = num_envs
        self.render_mode = None
        native_space = self.native.single_observation_space
        shape = native_space.shape if nature else native_space.shape[1:]
        self.single_observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.single_action_space = self.native.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._lives = np.zeros(num_envs, dtype=np.int64)

    def _observations(self, observations: np.ndarray) -> np.ndarray:
        return observations if self.config.obs_mode == "nature" else observations[:, 0]

    def _with_unsafe(self, info: dict[str, Any], unsafe: np.ndarray) -> dict[str, Any]:
        mask = np.ones(self.num_envs, dtype=bool)
        return {**info, "unsafe": unsafe, "_unsafe": mask, "cost": unsafe.astype(np.float64),
                "_cost": mask}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        observations, info = self.native.reset(seed=seed, options=options)
        self._lives = np.asarray(info["lives"], dtype=np.int64)
        return self._observations(observations), self._with_unsafe(info, np.zeros(self.num_envs, bool))

    def step(self, actions):
        actions = np.asarray(actions)
        n = self.single_action_space.n
        if actions.shape != (self.num_envs,) or not np.all((actions >= 0) & (actions < n)):
            raise ValueError(f"invalid actions {actions!r}: expected {self.num_envs} integers in 0..{n - 1}")
        observations, rewards, terminated, truncated, info = self.native.step(actions.astype(np.int64))
        lives = np.asarray(info["lives"], dtype=np.int64)
        unsafe = lives < self._lives
        self._lives = lives
        return (self._observations(observations), rewards.astype(np.float64), terminated, truncated,
                self._with_unsafe(info, unsafe))

    @property
    def get_states(self) -> NoReturn:
        """Not available: always raises.

        Raises:
            AttributeError: ale-py's vector env cannot clone its games.
        """
        raise AttributeError(_NO_STATES)

    @property
    def set_states(self) -> NoReturn:
        """Not available: always raises.

        Raises:
            AttributeError: ale-py's vector env cannot restore its games.
        """
        raise AttributeError(_NO_STATES)

    def close_extras(self, **kwargs: Any) -> None:
        self.native.close()
