"""Record transitions of any Discrete-action env into an ``rlgan-transitions`` dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from tqdm import tqdm

from rlgan.data.format import TransitionWriter

#: ``observation -> action``, as :func:`record` calls it.
Policy = Callable[[np.ndarray], int]


def make_policy(agent: str, env: gymnasium.Env, seed: int = 0, epsilon: float = 0.0) -> Policy:
    """A recording policy by name (:func:`rlgan.safety.policies.load_policy`): ``"human"``
    (the keyboard; the env must render in ``"human"`` mode), ``"scripted"``, ``"random"`` or
    the directory of a ``rlgan train`` run (its best agent, greedy: on-policy data for the world
    model and the safety classifier), as ``observation -> action`` on ``env``.

    With ``epsilon > 0`` a uniformly random action replaces the policy's with that probability
    (so every action appears in the data even when the scripted driver would never take it).

    Raises:
        ValueError / FileNotFoundError: as :func:`rlgan.safety.policies.load_policy`.
    """
    from rlgan.safety.policies import load_policy

    policy = load_policy(agent, env, seed, epsilon)
    return lambda observation: policy.act(observation, env)


@dataclass
class RecordSummary:
    """What a recording produced."""

    transitions: int = 0
    episodes_finished: int = 0
    unsafe_steps: int = 0
    episode_returns: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


def record(env: gymnasium.Env, policy: Policy, writer: TransitionWriter | None, steps: int,
           seed: int = 0, first_episode: int = 0, keep_frames: bool = False,
           progress: bool = True) -> RecordSummary:
    """Run ``policy`` in ``env`` for ``steps`` steps, writing every transition to ``writer``.

    Episode ``e`` (counting from ``first_episode``) starts with ``env.reset(seed=seed + e)``,
    which makes every recorded state reproducible by replay. With ``keep_frames`` and an
    ``"rgb_array"`` env, the rendered frames are kept in the summary (for a GIF). A
    :class:`rlgan.keyboard.StopPlaying` from a human policy ends the recording early; finished
    transitions are kept either way (the caller closes the writer).
    """
    from rlgan.keyboard import StopPlaying

    summary = RecordSummary()
    episode, step_in_episode, episode_return = first_episode, 0, 0.0
    observation, _ = env.reset(seed=seed + episode)
    if keep_frames:
        summary.frames.append(env.render())
    try:
        for _ in tqdm(range(steps), desc="recording", unit="step", disable=not progress):
            action = policy(observation)
            next_observation, reward, terminated, truncated, info = env.step(action)
            if keep_frames:
                summary.frames.append(env.render())
            if writer is not None:
                writer.add(obs=observation, action=action, reward=reward, next_obs=next_observation,
                           unsafe=bool(info.get("unsafe", False)), terminated=terminated,
                           truncated=truncated, episode=episode, step=step_in_episode)
            summary.transitions += 1
            summary.unsafe_steps += bool(info.get("unsafe", False))
            episode_return += float(reward)
            step_in_episode += 1
            observation = next_observation
            if terminated or truncated:
                summary.episodes_finished += 1
                summary.episode_returns.append(episode_return)
                episode, step_in_episode, episode_return = episode + 1, 0, 0.0
                observation, _ = env.reset(seed=seed + episode)
    except StopPlaying:
        pass
    return summary


def dataset_summary(root: Any) -> dict[str, Any]:
    """Describe a recorded dataset: env, sizes, episodes, unsafe fraction, action counts."""
    from rlgan.data.format import load_metadata, load_shard

    metadata = load_metadata(root)
    n_actions = int(metadata["n_actions"])
    action_counts = np.zeros(n_actions, dtype=np.int64)
    unsafe = rewards = 0.0
    for entry in metadata["shards"]:
        shard = load_shard(root, entry)
        action_counts += np.bincount(shard["action"], minlength=n_actions)[:n_actions]
        unsafe += float(shard["unsafe"].sum())
        rewards += float(shard["reward"].sum())
    total = int(metadata["transitions"])
    return {
        "path": str(root),
        "env_id": metadata["env_id"],
        "env_kwargs": metadata["env_kwargs"],
        "policy": metadata.get("policy"),
        "seed": metadata["seed"],
        "obs_shape": metadata["obs_shape"],
        "n_actions": n_actions,
        "shards": len(metadata["shards"]),
        "transitions": total,
        "episodes": int(metadata["episodes"]),
        "unsafe_fraction": unsafe / total if total else 0.0,
        "mean_reward": rewards / total if total else 0.0,
        "action_counts": action_counts.tolist(),
    }
