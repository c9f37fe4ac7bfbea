"""Rebuild recorded states by replaying their episodes, and try every action from them.

Episode ``e`` of a dataset was reset with :func:`rlgan.data.episode_seed` and the envs are
deterministic, so stepping the recorded actions from that reset rebuilds every recorded state;
an env with ``get_state()``/``set_state()`` then shows what each action would have led to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np

from rlgan.data.format import episode_seed
from rlgan.data.torch_dataset import TransitionDataset


def replay_states(dataset: TransitionDataset, items: np.ndarray, env_id: str,
                  env_kwargs: Mapping[str, Any]) -> Iterator[tuple[int, gymnasium.Env]]:
    """Rebuild the states of ``items`` (dataset item indices) one by one.

    Yields ``(position, env)``: ``env`` stands at the state just before the recorded step of
    ``items[position]``. The caller may step it (e.g. after ``env.unwrapped.set_state``); the
    state is restored before the replay goes on. Items come episode by episode, not in order.

    Raises:
        ValueError: the env cannot save/restore states, or the replay does not reproduce the
            recorded frames (the data was recorded with other env options).
    """
    from rlgan.make import make_env

    env = make_env(env_id, **env_kwargs)
    try:
        if not hasattr(env.unwrapped, "get_state"):
            raise ValueError(f"{env_id} has no get_state()/set_state(): the outcome of actions "
                             "that were not taken cannot be replayed")
        arrays, rows = dataset.arrays, dataset.indices[np.asarray(items, dtype=np.int64)]
        wanted: dict[int, dict[int, int]] = {}
        for position, row in enumerate(rows):
            wanted.setdefault(int(arrays["episode"][row]), {})[int(arrays["step"][row])] = position
        for episode, steps in wanted.items():
            episode_rows = np.flatnonzero(arrays["episode"] == episode)
            observation, _ = env.reset(seed=episode_seed(dataset.metadata, episode))
            for row in episode_rows[:max(steps) + 1]:
                step = int(arrays["step"][row])
                if not np.array_equal(observation, arrays["obs"][row]):
                    raise ValueError(
                        f"replaying episode {episode} in {env_id} {dict(env_kwargs)} does not "
                        f"reproduce the recorded frame at step {step}: the data was recorded "
                        "with other env options (e.g. another --map)")
                if step in steps:
                    state = env.unwrapped.get_state()
                    yield steps[step], env
                    env.unwrapped.set_state(state)
                observation = env.step(int(arrays["action"][row]))[0]
    finally:
        env.close()


def replay_every_action(dataset: TransitionDataset, items: np.ndarray, env_id: str,
                        env_kwargs: Mapping[str, Any], n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """The true outcome of every action from the states of ``items`` (dataset item indices).

    Returns:
        ``(next_frames, unsafe)``: uint8 ``(len(items), n_actions, H, W, C)`` frames t+1 and
        bool ``(len(items), n_actions)`` ground-truth ``info["unsafe"]`` of each action.

    Raises:
        ValueError: as :func:`replay_states`.
    """
    frames = np.zeros((len(items), n_actions, *dataset.arrays["obs"].shape[1:]), np.uint8)
    unsafe = np.zeros((len(items), n_actions), bool)
    for position, env in replay_states(dataset, items, env_id, env_kwargs):
        unsafe[position], frames[position] = step_outcomes(env, range(n_actions))
    return frames, unsafe


def step_outcomes(env: gymnasium.Env, actions: Sequence[int],
                  oracle: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Unsafe (or doomed) outcome and next observation of each of ``actions`` taken from the
    current state of ``env``, which is left as it was.

    Args:
        oracle: an oracle search of depth ``h`` on the same env
            (:class:`rlgan.safety.oracle.OracleSearch`): a safe step that lands where its best
            safe depth is below ``h`` counts as unsafe (doomed, see
            :mod:`rlgan.safety.labels`); None labels the step alone.

    Returns:
        ``(unsafe, observations)``: bool ``(len(actions),)`` and the observations after each
        action, stacked ``(len(actions), *observation_shape)``.
    """
    state = env.unwrapped.get_state()
    labels = np.zeros(len(actions), dtype=bool)
    observations = []
    for column, action in enumerate(actions):
        env.unwrapped.set_state(state)
        observation, _, terminated, truncated, info = env.step(int(action))
        unsafe = bool(info.get("unsafe", False))
        if not unsafe and oracle is not None and not (terminated or truncated):
            best = oracle.search_state(env.unwrapped.get_state()).safe_depths.max()
            unsafe = bool(best < oracle.config.depth)
        labels[column] = unsafe
        observations.append(observation)
    env.unwrapped.set_state(state)
    return labels, np.stack(observations)
