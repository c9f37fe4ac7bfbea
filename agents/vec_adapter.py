"""Use a batched Gymnasium ``VectorEnv`` (rlgan's numpy simulators) as an SB3 ``VecEnv``.

SB3 expects finished envs to be reset within the step, with the last observation in
``info["terminal_observation"]``: that is Gymnasium's same-step autoreset, which rlgan's vector
envs offer (``autoreset_mode=AutoresetMode.SAME_STEP``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv


def make_sb3_vec_env(env_id: str, num_envs: int, seed: int = 0, **env_kwargs: Any) -> VecEnv:
    """``num_envs`` copies of ``env_id`` for SB3: its batched form when it has one (rlgan's
    envs), else SB3's ``DummyVecEnv`` of single envs; wrapped in ``VecMonitor``."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecMonitor

    spec = gymnasium.spec(env_id)
    if spec.vector_entry_point is not None:
        vector = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                    autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
        adapted = GymnasiumVecEnv(vector)
        adapted.seed(seed)
        return VecMonitor(adapted)
    return make_vec_env(env_id, n_envs=num_envs, seed=seed, env_kwargs=env_kwargs)


class GymnasiumVecEnv(VecEnv):
    """SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` in same-step autoreset mode.

    Raises:
        ValueError: the vector env does not reset on the same step.
    """

    def __init__(self, env: gymnasium.vector.VectorEnv) -> None:
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("GymnasiumVecEnv needs a vector env with autoreset_mode=SAME_STEP, "
                             f"got {env.metadata.get('autoreset_mode')}")
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if any(s is not None for s in self._seeds) else None
        observations, _ = self.env.reset(seed=seed)
        self._reset_seeds()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        observations, rewards, terminated, truncated, infos = self.env.step(self._actions)
        dones = terminated | truncated
        keys = [k for k in infos if not k.startswith("_") and k not in ("final_obs", "final_info")]
        results = []
        for index in range(self.num_envs):
            info = {k: infos[k][index] for k in keys}
            if dones[index]:
                info.update(infos["final_info"][index])
                info["terminal_observation"] = infos["final_obs"][index]
                info["TimeLimit.truncated"] = bool(truncated[index] and not terminated[index])
            results.append(info)
        return observations, rewards.astype(np.float32), dones, results

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.env, attr_name, None)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise NotImplementedError("a batched env has no per-env methods")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
