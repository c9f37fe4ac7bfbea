"""Ground-truth labels of classifier pairs, read from the true simulator by replaying the
recorded episodes (:func:`rlgan.data.replay.replay_states`).

A pair (frame t, frame t+1 after action a) is unsafe when its step is (the env's
``info["unsafe"]``). With a doom horizon ``h > 0`` it is also unsafe when the step lands in a
**doomed** state: one from which every sequence of ``h`` actions meets an unsafe step (the
oracle search's best safe depth from there is below ``h``). A search on a classifier trained so
flags an action up to ``h`` steps before the crash it makes unavoidable, from a one-step prediction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np

from rlgan.config import check_int_range
from rlgan.data import TransitionDataset
from rlgan.data.replay import replay_states, step_outcomes
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.search import SearchConfig

#: The deepest doom horizon: labelling costs up to ``n_actions ** h`` simulator steps per pair.
MAX_DOOM_HORIZON = 4
#: A node budget no doom search reaches, so it always covers the whole tree.
FULL_TREE = 10**9


def check_doom_horizon(value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer in ``0..MAX_DOOM_HORIZON``."""
    check_int_range("doom_horizon", value, 0, MAX_DOOM_HORIZON)


def outcome_labels(env: gymnasium.Env, actions: Sequence[int], oracle: OracleSearch | None = None) -> np.ndarray:
    """The unsafe (or doomed) outcomes of :func:`step_outcomes`, bool ``(len(actions),)``."""
    return step_outcomes(env, actions, oracle)[0]


def doom_oracle(env_id: str, env_kwargs: Mapping[str, Any], doom_horizon: int) -> OracleSearch | None:
    """The oracle search :func:`outcome_labels` needs for ``doom_horizon`` (None for 0)."""
    check_doom_horizon(doom_horizon)
    if not doom_horizon:
        return None
    return OracleSearch(env_id, dict(env_kwargs), SearchConfig(depth=doom_horizon, node_budget=FULL_TREE))


def replayed_outcomes(dataset: TransitionDataset, items: np.ndarray, actions: np.ndarray, env_id: str,
                      env_kwargs: Mapping[str, Any], doom_horizon: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`step_outcomes` of ``actions[i]`` from the state of ``items[i]`` (dataset item
    indices), rebuilt by replaying the recorded episodes.

    Args:
        actions: int ``(len(items), k)``, the actions to try from each state.
        doom_horizon: see the module docstring; 0 labels the step alone.

    Returns:
        ``(unsafe, next_frames)``: bool ``(len(items), k)`` and the true frames t+1, uint8
        ``(len(items), k, H, W, C)``.

    Raises:
        ValueError: a bad horizon or shape, an env without ``get_state``/``set_state``, or data
            that does not replay (recorded with other env options).
    """
    actions = _check_actions(items, actions)
    labels = np.zeros(actions.shape, dtype=bool)
    frames = np.zeros((*actions.shape, *dataset.arrays["obs"].shape[1:]), dtype=np.uint8)
    for position, outcome, observations in _replay_outcomes(dataset, items, actions, env_id, env_kwargs,
                                                            doom_horizon):
        labels[position], frames[position] = outcome, observations
    return labels, frames


def replayed_labels(dataset: TransitionDataset, items: np.ndarray, actions: np.ndarray, env_id: str,
                    env_kwargs: Mapping[str, Any], doom_horizon: int = 0) -> np.ndarray:
    """The labels of :func:`replayed_outcomes` alone, bool ``(len(items), k)`` (no frames kept)."""
    actions = _check_actions(items, actions)
    labels = np.zeros(actions.shape, dtype=bool)
    for position, outcome, _ in _replay_outcomes(dataset, items, actions, env_id, env_kwargs, doom_horizon):
        labels[position] = outcome
    return labels


def _check_actions(items: np.ndarray, actions: np.ndarray) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.int64)
    if actions.ndim != 2 or len(actions) != len(items):
        raise ValueError(f"actions must have shape (len(items), k) = ({len(items)}, k), got {actions.shape}")
    return actions


def _replay_outcomes(dataset: TransitionDataset, items: np.ndarray, actions: np.ndarray, env_id: str,
                     env_kwargs: Mapping[str, Any], doom_horizon: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(position, unsafe, observations)`` of :func:`step_outcomes` for every item."""
    oracle = doom_oracle(env_id, env_kwargs, doom_horizon)
    try:
        for position, env in replay_states(dataset, items, env_id, env_kwargs):
            yield (position, *step_outcomes(env, actions[position], oracle))
    finally:
        if oracle is not None:
            oracle.close()
