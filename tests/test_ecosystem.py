"""rlgan under the ecosystem's own checks: Gymnasium's and SB3's env checkers and a same-seed
match over every registered id; PettingZoo's parallel API, seed, render and performance tests
of hide-and-seek and a whole seeded game replayed; SB3 PPO through SuperSuit's vector envs; a
Minari dataset recorded, saved and loaded back; SB3 DQN with ``CnnPolicy`` on subprocess
vector envs made from the id string alone.

The third-party packages come with the ``ecosystem`` extra (``pip install -e
".[dev,ecosystem]"``); tests whose package is missing are skipped.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import rlgan  # noqa: F401  (registers the envs)
from rlgan.envs.hide_and_seek import parallel_env

ENV_IDS = sorted(env_id for env_id in gymnasium.registry if env_id.startswith("rlgan/"))
TINY_DRIVING = {"obs_height": 32, "obs_width": 32, "max_steps": 20}


def test_every_rlgan_id_is_checked():
    assert ENV_IDS == ["rlgan/Atari-v0", "rlgan/Driving-v0", "rlgan/HideAndSeek-v0"]


# -- Gymnasium and SB3 ------------------------------------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make(env_id)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_two_envs_made_with_the_same_seed_match(env_id):
    from gymnasium.utils.env_match import check_environments_match

    check_environments_match(gymnasium.make(env_id), gymnasium.make(env_id), num_steps=300,
                             seed=7)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env

    env = gymnasium.make(env_id)
    check_env(env, warn=True)
    env.close()


# -- PettingZoo -------------------------------------------------------------------------------
def test_pettingzoo_parallel_api_and_seed_tests():
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(parallel_env(), num_cycles=1000)
    parallel_seed_test(parallel_env)


def test_a_whole_seeded_game_replays_step_by_step():
    envs = [parallel_env(), parallel_env()]
    first = [env.reset(seed=11) for env in envs]
    np.testing.assert_equal(first[0], first[1])
    rng = np.random.default_rng(0)
    steps = 0
    while envs[0].agents:
        assert envs[0].agents == envs[1].agents
        actions = {agent: int(rng.integers(envs[0].action_space(agent).n))
                   for agent in envs[0].agents}
        results = [env.step(actions) for env in envs]
        np.testing.assert_equal(results[0], results[1])  # obs, rewards, ends, infos
        steps += 1
    assert not envs[1].agents and steps > 1


def test_pettingzoo_render_test_through_the_aec_conversion():
    from pettingzoo.test import render_test
    from pettingzoo.utils.conversions import parallel_to_aec

    render_test(lambda render_mode=None: parallel_to_aec(parallel_env(render_mode=render_mode)))
    env = parallel_to_aec(parallel_env(render_mode="rgb_array"))
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.any()


@pytest.mark.slow
def test_pettingzoo_performance_benchmark_through_the_aec_conversion(capsys):
    from pettingzoo.test import performance_benchmark
    from pettingzoo.utils.conversions import parallel_to_aec

    performance_benchmark(parallel_to_aec(parallel_env()))
    turns = float(capsys.readouterr().out.split("turns per second")[0].split()[-1])
    assert turns > 100


# -- SuperSuit + SB3 PPO ----------------------------------------------------------------------
@pytest.mark.slow
def test_sb3_ppo_trains_on_hide_and_seek_through_supersuit(one_torch_thread):
    supersuit = pytest.importorskip("supersuit")
    from stable_baselines3 import PPO

    env = parallel_env()
    first, *others = env.possible_agents  # SuperSuit's vector env needs homogeneous agents
    for agent in others:
        assert env.observation_space(agent) == env.observation_space(first)
        assert env.action_space(agent) == env.action_space(first)
    venv = supersuit.pettingzoo_env_to_vec_env_v1(env)
    venv = supersuit.concat_vec_envs_v1(venv, 2, num_cpus=0, base_class="stable_baselines3")
    assert venv.num_envs == 2 * len(env.possible_agents)
    # seed=None: SuperSuit 3.11's ConcatVecEnv has no seed(), which SB3 calls for a seed
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, verbose=0)
    model.learn(300)
    assert model.num_timesteps >= 300
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (venv.num_envs,)
    venv.close()


# -- Minari -----------------------------------------------------------------------------------
def test_a_minari_dataset_of_driving_is_saved_and_loaded_back(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    pytest.importorskip("jax")  # minari's DataCollector needs it (minari[create])

    collector = minari.DataCollector(gymnasium.make("rlgan/Driving-v0", **TINY_DRIVING),
                                     jpeg_encoding=False)
    observations = []
    for episode in range(3):
        observation, _ = collector.reset(seed=episode)
        frames, done = [observation], False
        while not done:
            observation, _, terminated, truncated, _ = collector.step(episode % 3)
            frames.append(observation)
            done = terminated or truncated
        observations.append(np.stack(frames))
    collector.create_dataset(dataset_id="rlgan/driving-constant-v0", algorithm_name="constant",
                             author="rlgan", author_email="rlgan@example.org",
                             code_permalink="https://example.org/rlgan",
                             description="Three driving episodes, one key held in each.",
                             eval_env=gymnasium.make("rlgan/Driving-v0", **TINY_DRIVING).spec)
    collector.close()
    assert (tmp_path / "rlgan" / "driving-constant-v0").is_dir()

    dataset = minari.load_dataset("rlgan/driving-constant-v0")
    assert dataset.total_episodes == 3
    assert dataset.total_steps == sum(len(frames) - 1 for frames in observations)
    assert dataset.spec.env_spec.id == "rlgan/Driving-v0"
    assert dataset.spec.env_spec.kwargs == TINY_DRIVING
    for episode, frames in zip(dataset.iterate_episodes(), observations):
        np.testing.assert_array_equal(episode.observations, frames)
        assert set(episode.actions.tolist()) == {episode.id % 3}
        assert episode.terminations[-1] or episode.truncations[-1]
    env = dataset.recover_environment()
    assert env.observation_space == dataset.observation_space
    env.close()


# -- SB3 DQN on subprocess vector envs ---------------------------------------------------------
@pytest.mark.slow
def test_sb3_dqn_with_cnn_policy_on_subprocess_frame_stacked_driving(one_torch_thread):
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack

    # the "module:id" form makes each subprocess import rlgan, which registers the id
    venv = VecFrameStack(make_vec_env("rlgan:rlgan/Driving-v0", n_envs=2, seed=0,
                                      vec_env_cls=SubprocVecEnv), n_stack=4)
    try:
        assert venv.observation_space.shape == (64, 64, 12)
        model = DQN("CnnPolicy", venv, buffer_size=500, learning_starts=100, batch_size=16,
                    train_freq=4, seed=0, verbose=0)
        model.learn(300)
        assert model.num_timesteps >= 300 and model.replay_buffer.size() > 100
    finally:
        venv.close()
