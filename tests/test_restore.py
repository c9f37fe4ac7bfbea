"""Restoring a saved state into the same env after playing on replays exactly (single and vector).

Atari's single env has its own test in test_atari.py (sticky actions); its vector env cannot
restore.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import rlgan  # noqa: F401

IDS = ["rlgan/Driving-v0", "rlgan/HideAndSeek-v0"]


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, np.ndarray) and a.dtype == object:
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def _assert_same_steps(first: list[tuple], second: list[tuple]) -> None:
    assert len(first) == len(second)
    for index, (one, two) in enumerate(zip(first, second)):
        for name, x, y in zip(("obs", "reward", "terminated", "truncated", "info"), one, two):
            assert _equal(x, y), f"step {index} after the restore: {name} differs"


@pytest.mark.parametrize("env_id", IDS)
def test_single_env_restored_after_playing_on_replays_exactly(env_id):
    env = gymnasium.make(env_id)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    n = int(env.action_space.n)
    for _ in range(3):
        for action in rng.integers(n, size=7):
            if any(env.step(int(action))[2:4]):
                env.reset()
        state = env.unwrapped.get_state()
        actions = rng.integers(n, size=25)

        def play():
            steps = []
            for action in actions:
                steps.append(env.step(int(action)))
                if steps[-1][2] or steps[-1][3]:
                    break
            return steps

        first = play()
        env.unwrapped.set_state(state)
        _assert_same_steps(first, play())


def _vector(env_id: str, mode: str):
    return gymnasium.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point",
                              autoreset_mode=mode, max_steps=40)  # short episodes: resets happen


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
@pytest.mark.parametrize("env_id", IDS)
def test_vector_env_restored_after_playing_on_replays_exactly(env_id, mode):
    vector = _vector(env_id, mode).unwrapped
    vector.reset(seed=3)
    rng = np.random.default_rng(0)
    n = int(vector.single_action_space.n)
    for _ in range(10):
        vector.step(rng.integers(n, size=3))
    states = vector.get_states()
    actions = rng.integers(n, size=(100, 3))
    first = [vector.step(a) for a in actions]
    assert any(step[2].any() or step[3].any() for step in first)
    vector.set_states(states)
    _assert_same_steps(first, [vector.step(a) for a in actions])


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
@pytest.mark.parametrize("env_id", IDS)
def test_vector_env_saved_as_an_episode_ends_resets_it_after_the_restore(env_id, mode):
    """Saved on the step an episode ends: next-step autoreset still owes that row its reset."""
    vector = _vector(env_id, mode).unwrapped
    vector.reset(seed=3)
    rng = np.random.default_rng(0)
    n = int(vector.single_action_space.n)
    for _ in range(100):
        _, _, terminated, truncated, _ = vector.step(rng.integers(n, size=3))
        if (terminated | truncated).any():
            break
    assert (terminated | truncated).any()
    states = vector.get_states()
    assert [state.ended for state in states] == list((terminated | truncated) & (mode == "NextStep"))
    actions = rng.integers(n, size=(20, 3))
    first = [vector.step(a) for a in actions]
    vector.set_states(states)
    _assert_same_steps(first, [vector.step(a) for a in actions])
