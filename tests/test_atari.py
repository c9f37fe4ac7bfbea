"""rlgan/Atari-v0: the Nature-DQN pipeline, RGB mode, life-loss safety, exact state restore."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlgan  # noqa: F401
from rlgan.data import TransitionDataset
from rlgan.envs.atari import GAMES, AtariEnv
from conftest import record_dataset

ID = "rlgan/Atari-v0"


def test_checkers_and_spaces():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(ID, game="Breakout")
    check_env(env.unwrapped)
    sb3_check_env(gymnasium.make(ID).unwrapped)
    observation, info = env.reset(seed=0)
    assert observation.shape == (4, 84, 84) and observation.dtype == np.uint8
    assert env.action_space == gymnasium.spaces.Discrete(4) and info["lives"] == 5
    rgb = gymnasium.make(ID, game="Pong", obs_mode="rgb", obs_height=48, obs_width=64)
    assert rgb.reset(seed=0)[0].shape == (48, 64, 3)
    assert "breakout" in GAMES and "pong" in GAMES and len(GAMES) > 50


def test_same_seed_same_frames():
    def run():
        env = gymnasium.make(ID)
        frames = [env.reset(seed=3)[0]]
        for action in np.random.default_rng(0).integers(4, size=40):
            frames.append(env.step(int(action))[0])
        return np.array(frames)

    assert np.array_equal(run(), run())


def test_losing_a_life_is_unsafe():
    env = gymnasium.make(ID, game="Breakout")
    env.reset(seed=0)
    events = []
    for _ in range(200):  # NOOP after the fire-reset: the ball is missed
        _, _, terminated, _, info = env.step(0)
        events.append(info["unsafe"])
        if info["unsafe"]:
            break
    assert events[-1] and sum(events) == 1 and info["lives"] == 4 and info["cost"] == 1.0
    training = gymnasium.make(ID, terminal_on_life_loss=True, clip_rewards=True)
    training.reset(seed=0)
    for _ in range(200):
        _, reward, terminated, _, info = training.step(0)
        assert reward in (-1.0, 0.0, 1.0)
        if terminated:
            break
    assert terminated and info["unsafe"]


@pytest.mark.parametrize("obs_mode", ["nature", "rgb"])
def test_state_restore_reproduces_the_future(obs_mode):
    env = AtariEnv(game="Breakout", obs_mode=obs_mode)
    env.reset(seed=1)
    for action in np.random.default_rng(1).integers(4, size=30):
        env.step(int(action))
    state = env.get_state()
    actions = np.random.default_rng(2).integers(4, size=60)
    first = [env.step(int(a)) for a in actions]
    other = AtariEnv(game="Breakout", obs_mode=obs_mode)
    other.reset(seed=9)
    other.set_state(state)
    second = [other.step(int(a)) for a in actions]
    for (o1, r1, t1, u1, i1), (o2, r2, t2, u2, i2) in zip(first, second):
        assert np.array_equal(o1, o2) and (r1, t1, u1) == (r2, t2, u2)
        assert i1["unsafe"] == i2["unsafe"]


def _steps_equal(first, second):
    for (o1, r1, t1, u1, i1), (o2, r2, t2, u2, i2) in zip(first, second, strict=True):
        assert np.array_equal(o1, o2) and (r1, t1, u1) == (r2, t2, u2)
        assert i1.keys() == i2.keys() and all(np.array_equal(i1[k], i2[k]) for k in i1)


def test_restoring_the_same_env_after_playing_on_replays_exactly():
    """Sticky actions (0.25) may repeat the action before the save on the first frame after it;
    the state must carry that action, not the one the env took last before the restore."""
    env = gymnasium.make(ID, game="Breakout")
    assert env.unwrapped.config.repeat_action_probability == 0.25
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    right, left = (env.unwrapped.action_meanings.index(name) for name in ("RIGHT", "LEFT"))
    for _ in range(12):  # several save points: some first frames after them are sticky
        for action in [*rng.integers(4, size=4), right]:
            if env.step(int(action))[2]:
                env.reset()
        state = env.unwrapped.get_state()
        actions = [*rng.integers(4, size=9), left]
        first = [env.step(int(a)) for a in actions]
        env.unwrapped.set_state(state)
        _steps_equal(first, [env.step(int(a)) for a in actions])
        assert env.unwrapped.get_state() != state


def test_sticky_actions_repeat_the_previous_frame():
    """With probability 1 the episode's first action (NOOP) is repeated on every frame."""
    def frames(p, actions):
        env = gymnasium.make(ID, repeat_action_probability=p, noop_max=0)
        return np.array([env.reset(seed=0)[0]] + [env.step(int(a))[0] for a in actions])

    moves, idle = np.random.default_rng(0).integers(1, 4, size=20), np.zeros(20)
    assert np.array_equal(frames(1.0, moves), frames(1.0, idle))
    assert not np.array_equal(frames(0.0, moves), frames(0.0, idle))


def test_vector_env_says_it_cannot_restore():
    vector = gymnasium.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point")
    assert not hasattr(vector.unwrapped, "set_states")
    with pytest.raises(AttributeError, match="cannot save or restore states.*get_state"):
        vector.unwrapped.get_states()
    vector.close()


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="unknown Atari game 'Breakot'. Did you mean 'breakout'.*pong"):
        gymnasium.make(ID, game="Breakot")
    assert AtariEnv(game="ALE/MontezumaRevenge-v5").config.rom == "montezuma_revenge"
    env = gymnasium.make(ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action 9.*NOOP"):
        env.step(9)
    with pytest.raises(TypeError, match="no option 'frameskip'. Did you mean 'frame_skip'"):
        gymnasium.make(ID, frameskip=4)
    assert not hasattr(env.unwrapped, "scripted_action")  # no built-in policy for Atari


def test_vector_env_shapes_and_unsafe():
    vector = gymnasium.make_vec(ID, num_envs=4, vectorization_mode="vector_entry_point", game="Breakout")
    observations, _ = vector.reset(seed=0)
    assert observations.shape == (4, 4, 84, 84) and observations.dtype == np.uint8
    assert vector.single_observation_space == gymnasium.make(ID).observation_space
    unsafe = 0
    for _ in range(100):
        observations, rewards, terminated, truncated, infos = vector.step(np.zeros(4, dtype=np.int64))
        unsafe += int(infos["unsafe"].sum())
    assert unsafe >= 1
    vector.close()
    rgb = gymnasium.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", obs_mode="rgb")
    assert rgb.reset(seed=0)[0].shape == (2, 64, 64, 3)
    rgb.close()


def test_recording_round_trips(tmp_path):
    kwargs = {"game": "Pong", "obs_mode": "rgb"}
    record_dataset(tmp_path / "pong", gymnasium.make(ID, **kwargs), ID, kwargs, "random", 20,
                   seed=0, shard_size=8)
    dataset = TransitionDataset(tmp_path / "pong")
    replay = gymnasium.make(ID, game="Pong", obs_mode="rgb")
    observation, _ = replay.reset(seed=0)
    for row in range(20):
        assert np.array_equal(dataset.arrays["obs"][row], observation)
        observation, *_ = replay.step(int(dataset.arrays["action"][row]))
        assert np.array_equal(dataset.arrays["next_obs"][row], observation)


def test_human_render_and_rgb_array():
    env = gymnasium.make(ID, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (210, 160, 3)
    human = gymnasium.make(ID, render_mode="human")
    human.reset(seed=0)
    human.step(0)
    human.close()
    keys = human.unwrapped.get_keys_to_action()
    assert keys[()] == 0 and keys[(ord(" "),)] == 1


def test_sb3_dqn_runs_a_few_hundred_steps():
    from stable_baselines3 import DQN

    env = gymnasium.make(ID)
    model = DQN("CnnPolicy", env, buffer_size=1000, learning_starts=100, train_freq=4, seed=0,
                device="cpu")
    model.learn(300)
    assert model.num_timesteps == 300
    assert model.replay_buffer.size() == 300
    assert model._n_updates == (300 - 100) // 4  # it learned on the frames it stored
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))
