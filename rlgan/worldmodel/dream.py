"""The real game and the world model's dream, stepped side by side with the same actions.

The dream starts from the real frames and then feeds the model's own predictions back as
input (open loop), so it drifts from the real game over time; :meth:`Dream.sync` restarts it
from the real frames. No pygame here (see :mod:`rlgan.worldmodel.dream_window`).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch

from rlgan.worldmodel.frames import observations_to_tensor, tensor_to_observations, to_uint8, to_unit
from rlgan.worldmodel.metrics import PSNR_CAP_DB, psnr
from rlgan.worldmodel.predictor import WorldModel


class Dream:
    """A real env and the model's open-loop dream of it.

    Args:
        model: the world model (trained for ``env``'s id, frame shape and actions).
        env: the real env (its observations are the model's frames).
        seed: seed of the first reset (later episodes continue the env's generator) and of z.

    Raises:
        ValueError: the model was trained for another env, frame shape or action set.
    """

    def __init__(self, model: WorldModel, env: gymnasium.Env, seed: int = 0) -> None:
        env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        model.check_compatible(f"env {env_id}", env_id, env.observation_space.shape,
                               int(env.action_space.n))
        self.model, self.env, self.seed = model, env, seed
        self.noise = torch.Generator().manual_seed(seed)
        self.real: list[np.ndarray] = []
        self.dream: torch.Tensor | None = None  # float (history, C, H, W) in [-1, 1]
        self.observation: np.ndarray | None = None
        self.steps_since_sync = 0
        self._first_reset = True

    def reset(self) -> np.ndarray:
        """Start an episode; the dream starts from its first frame. Returns the observation."""
        observation, _ = self.env.reset(seed=self.seed if self._first_reset else None)
        self._first_reset = False
        self.real = [observation] * self.model.history
        self.observation = observation
        self.sync()
        return observation

    def sync(self) -> None:
        """Restart the dream from the last ``history`` real frames."""
        self.dream = to_unit(observations_to_tensor(np.stack(self.real)))
        self.steps_since_sync = 0

    def dream_frame(self) -> np.ndarray:
        """The dream's newest frame, uint8 ``(H, W, C)``."""
        return tensor_to_observations(to_uint8(self.dream[-1]))

    def step(self, action: int) -> dict[str, Any]:
        """Take ``action`` in the real env and in the dream.

        Returns:
            ``real`` and ``dream`` frames (uint8 ``(H, W, C)``), ``psnr`` between them (dB),
            ``reward``, ``done`` and the env's ``info``.
        """
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.observation = observation
        self.real = (self.real + [observation])[-self.model.history:]
        predicted = self.model.predict(self.dream[None], [action], 1, generator=self.noise)[0, 0]
        self.dream = torch.cat([self.dream[1:], predicted.cpu()[None]], dim=0)
        self.steps_since_sync += 1
        dream = self.dream_frame()
        score = psnr(torch.from_numpy(dream).float()[None].movedim(-1, 1),
                     torch.from_numpy(observation).float()[None].movedim(-1, 1), cap=PSNR_CAP_DB)
        return {"real": observation, "dream": dream, "psnr": float(score[0]), "reward": reward,
                "done": bool(terminated or truncated), "info": info}
