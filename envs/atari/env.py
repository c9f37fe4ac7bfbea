"""``rlgan/Atari-v0``: an ALE game with the Nature-DQN preprocessing and safety signals."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from rlgan.config import build_config
from rlgan.envs.atari.config import AtariConfig, ale_env_id
from rlgan.envs.atari.sticky import StickyActions
from rlgan.envs.checks import check_render_mode


@dataclass(frozen=True)
class AtariState:
    """Everything that decides the next observations (a value: bytes and array copies).

    ``ale`` is ALE's serialised ``cloneState(include_rng=True)``; the rest is the wrapper
    pipeline: the action sticky actions would repeat, the max-pool buffer, the frame stack,
    lives, the generator of the no-op starts and sticky actions, and the step count.
    """

    ale: bytes
    last_action: int
    np_random_state: dict[str, Any]
    pool_buffer: tuple[np.ndarray, ...]
    frames: tuple[np.ndarray, ...]
    preprocessing_lives: int
    game_over: bool
    lives: int
    steps: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AtariState):
            return NotImplemented
        return (self.ale == other.ale and self.last_action == other.last_action
                and self.lives == other.lives and self.steps == other.steps
                and all(np.array_equal(a, b) for a, b in zip(self.frames, other.frames)))

    __hash__ = None


class AtariEnv(gymnasium.Env):
    """An ALE game through ale-py and Gymnasium's own wrappers (``AtariPreprocessing``,
    ``FrameStackObservation``), with fire-on-reset and optional reward clipping.

    - Observation: ``"nature"``: ``Box(0, 255, (4, 84, 84), uint8)``; ``"rgb"``:
      ``Box(0, 255, (obs_height, obs_width, 3), uint8)``.
    - Actions: the game's minimal action set (``full_action_space`` for all 18).
    - ``info``: ALE's keys plus ``unsafe`` (a life was lost this step), ``cost``, ``lives``.
    - ``render_mode="rgb_array"`` returns the 210x160 RGB screen; ``"human"`` shows it, scaled
      3x, in a pygame window.
    - Sticky actions are drawn in Python (:class:`~rlgan.envs.atari.sticky.StickyActions`, from
      the ALE env's ``np_random``), not inside ALE, so :meth:`get_state` / :meth:`set_state`
      restore the action they repeat and a restored game replays exactly.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 15}

    def __init__(self, render_mode: str | None = None, **overrides: Any) -> None:
        import ale_py

        self.config = build_config(AtariConfig, overrides)
        self.render_mode = check_render_mode(render_mode, self.metadata)
        config = self.config
        gymnasium.register_envs(ale_py)
        base = gymnasium.make(ale_env_id(config.rom), frameskip=1, repeat_action_probability=0.0,
                              full_action_space=config.full_action_space,
                              render_mode="rgb_array" if render_mode else None)
        self.sticky = StickyActions(base, config.repeat_action_probability)
        nature = config.obs_mode == "nature"
        self.preprocessing = AtariPreprocessing(
            self.sticky, noop_max=config.noop_max, frame_skip=config.frame_skip,
            screen_size=84 if nature else (config.obs_width, config.obs_height),
            terminal_on_life_loss=config.terminal_on_life_loss, grayscale_obs=nature)
        self.pipeline = FrameStackObservation(self.preprocessing, 4) if nature else self.preprocessing
        self.ale = base.unwrapped.ale
        self.observation_space = self.pipeline.observation_space
        self.action_space = self.pipeline.action_space
        self.action_meanings = base.unwrapped.get_action_meanings()
        self._n_actions = int(self.action_space.n)
        self._base = base
        self._lives = 0
        self._steps = 0
        self._window = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        observation, info = self.pipeline.reset(seed=seed, options=options)
        if "FIRE" in self.action_meanings:
            observation, _, terminated, truncated, info = self.pipeline.step(self.action_meanings.index("FIRE"))
            if terminated or truncated:
                observation, info = self.pipeline.reset(options=options)
        self._lives = self.ale.lives()
        self._steps = 0
        if self.render_mode == "human":
            self.render()
        return observation, {**info, "unsafe": False, "cost": 0.0, "lives": self._lives}

    def step(self, action):
        if not (isinstance(action, (int, np.integer)) and 0 <= action < self._n_actions):
            raise ValueError(f"invalid action {action!r}; the action space is {self.action_space} "
                             f"({', '.join(f'{i}={m}' for i, m in enumerate(self.action_meanings))})")
        observation, reward, terminated, truncated, info = self.pipeline.step(action)
        lives = self.ale.lives()
        unsafe = lives < self._lives
        self._lives = lives
        self._steps += 1
        truncated = truncated or (self._steps >= self.config.max_steps and not terminated)
        if self.config.clip_rewards:
            reward = float(np.sign(reward))
        if self.render_mode == "human":
            self.render()
        return observation, float(reward), terminated, truncated, {
            **info, "unsafe": unsafe, "cost": float(unsafe), "lives": lives}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode")
            return None
        frame = self.ale.getScreenRGB()
        if self.render_mode == "rgb_array":
            return frame
        import pygame

        scaled = np.kron(frame, np.ones((3, 3, 1), dtype=np.uint8))
        if self._window is None:
            pygame.display.init()
            pygame.display.set_caption(f"rlgan atari: {self.config.game}")
            self._window = pygame.display.set_mode((scaled.shape[1], scaled.shape[0]))
            self._clock = pygame.time.Clock()
        pygame.surfarray.blit_array(self._window, scaled.swapaxes(0, 1))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None
        self.pipeline.close()

    def get_state(self) -> AtariState:
        """The exact emulator state (RNG included), the action sticky actions would repeat and
        the pipeline's buffers."""
        frames = tuple(frame.copy() for frame in self.pipeline.obs_queue) \
            if self.config.obs_mode == "nature" else ()
        return AtariState(
            ale=self.ale.cloneState(include_rng=True).serialize(),
            last_action=self.sticky.last_action,
            np_random_state=_copy(self._base.unwrapped.np_random.bit_generator.state),
            pool_buffer=tuple(buffer.copy() for buffer in self.preprocessing.obs_buffer),
            frames=frames, preprocessing_lives=int(self.preprocessing.lives),
            game_over=bool(self.preprocessing.game_over), lives=self._lives, steps=self._steps)

    def set_state(self, state: AtariState) -> np.ndarray:
        """Restore ``state`` and return the observation there.

        Raises:
            ValueError: the state was saved in another observation mode or game.
        """
        import ale_py

        if not isinstance(state, AtariState):
            raise TypeError(f"expected an AtariState, got {type(state).__name__}")
        if (len(state.frames) == 4) != (self.config.obs_mode == "nature") or \
                state.pool_buffer[0].shape != self.preprocessing.obs_buffer[0].shape:
            raise ValueError("state was saved by an AtariEnv with another obs_mode or frame size")
        self.ale.restoreState(ale_py.ALEState(state.ale))
        self.sticky.last_action = state.last_action
        self._base.unwrapped.np_random.bit_generator.state = _copy(state.np_random_state)
        for buffer, saved in zip(self.preprocessing.obs_buffer, state.pool_buffer):
            buffer[...] = saved
        self.preprocessing.lives = state.preprocessing_lives
        self.preprocessing.game_over = state.game_over
        self._lives, self._steps = state.lives, state.steps
        if self.config.obs_mode == "nature":
            self.pipeline.obs_queue = deque((frame.copy() for frame in state.frames), maxlen=4)
            return np.stack(state.frames)
        return self.preprocessing._get_obs()

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """ALE's key map (w a s d, space to fire) as pygame key codes; no key is NOOP."""
        mapping = {tuple(sorted(ord(key) for key in keys)): int(action)
                   for keys, action in self._base.unwrapped.get_keys_to_action().items()}
        mapping[()] = 0
        return mapping


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in state.items()}
