"""Evaluate any policy on a Gymnasium env: return, length, unsafe steps per 1000."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

Act = Callable[[Any, gymnasium.Env], int]


def evaluate_agent(act: Act, env: gymnasium.Env, episodes: int, seed: int = 0,
                   keep_frames: bool = False) -> dict[str, Any]:
    """Run ``episodes`` episodes (episode ``e`` resets with ``seed + e``) with ``act(obs, env)``.

    Returns a JSON-friendly dict: ``mean_return``, ``std_return``, ``mean_length``,
    ``unsafe_per_1000`` (unsafe steps per 1000 steps), ``episodes``, ``returns``, and, for envs
    that report ``info["distance"]``, ``mean_distance_before_unsafe`` (metres driven before the
    first unsafe event or the episode's end). With ``keep_frames`` the rendered frames are in
    ``frames`` (the env must render ``rgb_array``).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    returns, lengths, distances, frames = [], [], [], []
    unsafe_steps = 0
    for episode in range(episodes):
        observation, info = env.reset(seed=seed + episode)
        if keep_frames:
            frames.append(env.render())
        total, length, distance, safe_so_far = 0.0, 0, None, True
        while True:
            observation, reward, terminated, truncated, info = env.step(act(observation, env))
            if keep_frames:
                frames.append(env.render())
            total += float(reward)
            length += 1
            unsafe = bool(info.get("unsafe", False))
            unsafe_steps += unsafe
            if safe_so_far and "distance" in info and (unsafe or terminated or truncated):
                distance, safe_so_far = float(info["distance"]), False
            if terminated or truncated:
                break
        returns.append(total)
        lengths.append(length)
        if distance is not None:
            distances.append(distance)
    result: dict[str, Any] = {
        "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "unsafe_per_1000": 1000.0 * unsafe_steps / max(sum(lengths), 1),
        "episodes": episodes, "returns": returns,
    }
    if distances:
        result["mean_distance_before_unsafe"] = float(np.mean(distances))
    if keep_frames:
        result["frames"] = frames
    return result


def random_policy(seed: int = 0) -> Act:
    """Uniformly random actions from a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return lambda observation, env: int(rng.integers(env.action_space.n))


def scripted_policy() -> Act:
    """The env's built-in ``scripted_action()``.

    Raises (when called): ValueError for an env without one.
    """
    def act(observation: Any, env: gymnasium.Env) -> int:
        if not hasattr(env.unwrapped, "scripted_action"):
            raise ValueError(f"{env.spec.id if env.spec else env} has no scripted policy")
        return int(env.unwrapped.scripted_action())

    return act
