"""rlgan/Driving-v0: API conformance, determinism, exact state restore, maps, vector form."""

from __future__ import annotations

import copy
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlgan  # noqa: F401
from rlgan.envs.driving import MAPS, DrivingEnv
from rlgan.envs.driving.simulation import CONTACT_GAP, HAZARD_AHEAD, HAZARD_BESIDE

ID = "rlgan/Driving-v0"


def rollout(env, actions, seed):
    observation, _ = env.reset(seed=seed)
    frames, rewards, infos = [observation], [], []
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        frames.append(observation)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return frames, rewards, infos


def test_env_checkers_pass():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(gymnasium.make(ID).unwrapped)
    sb3_check_env(gymnasium.make(ID).unwrapped)
    check_env(gymnasium.make(ID, actions=5, grayscale=True).unwrapped)


def test_spaces_shapes_and_info():
    env = gymnasium.make(ID)
    assert env.action_space == gymnasium.spaces.Discrete(3)
    observation, info = env.reset(seed=0)
    assert observation.shape == (64, 64, 3) and observation.dtype == np.uint8
    observation, reward, terminated, truncated, info = env.step(2)
    assert set(info) >= {"unsafe", "cost", "speed", "distance", "lane", "crash", "offroad"}
    assert info["cost"] == float(info["unsafe"])
    gray = gymnasium.make(ID, grayscale=True, obs_height=48, obs_width=80, actions=5)
    assert gray.reset(seed=0)[0].shape == (48, 80, 1)
    assert gray.action_space.n == 5


def test_same_seed_same_episode_and_different_seeds_differ():
    actions = np.random.default_rng(0).integers(3, size=120)
    frames_a, rewards_a, _ = rollout(gymnasium.make(ID), actions, seed=7)
    frames_b, rewards_b, _ = rollout(gymnasium.make(ID), actions, seed=7)
    assert rewards_a == rewards_b
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b))
    env_a, env_b = DrivingEnv(), DrivingEnv()
    env_a.reset(seed=1)
    env_b.reset(seed=2)
    assert not np.array_equal(env_a.roads.car_position, env_b.roads.car_position)


def test_state_restore_reproduces_the_future_exactly():
    env = DrivingEnv(on_unsafe="respawn")
    env.reset(seed=3)
    for _ in range(30):
        env.step(env.scripted_action())
    state = copy.deepcopy(env.get_state())
    actions = np.random.default_rng(1).integers(3, size=200)  # random actions: crashes, respawns
    first = [env.step(int(a)) for a in actions]
    observation = env.set_state(state)
    assert env.get_state() == state
    second = [env.step(int(a)) for a in actions]
    for (o1, r1, t1, u1, i1), (o2, r2, t2, u2, i2) in zip(first, second):
        assert np.array_equal(o1, o2) and r1 == r2 and t1 == t2 and u1 == u2 and i1 == i2
    other = DrivingEnv(on_unsafe="respawn")  # a fresh env restores it too
    assert np.array_equal(other.set_state(state), observation)
    assert any(info["unsafe"] for *_, info in first)


def test_state_is_a_detached_value():
    env = DrivingEnv()
    env.reset(seed=0)
    state = env.get_state()
    before = state.car_position.copy()
    for _ in range(5):
        env.step(2)
    assert np.array_equal(state.car_position, before)
    with pytest.raises(ValueError, match="cars"):
        DrivingEnv(cars=2).set_state(state)


def test_every_map_renders_and_maps_look_different():
    means = {}
    for name in DrivingEnv.MAPS:
        env = gymnasium.make(ID, map=name, render_mode="rgb_array")
        observation, _ = env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
        means[name] = observation.reshape(-1, 3).mean(axis=0)
    names = list(means)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(means[a] - means[b]).max() > 15, (a, b)
    assert set(MAPS) == set(DrivingEnv.MAPS) and len(MAPS) >= 4


def test_random_palettes_recolour_the_map_but_keep_its_road_and_traffic():
    from rlgan.envs.driving.palette import MIN_CONTRAST, MIN_GROUND_CONTRAST, contrast, random_palette

    day = MAPS["day"]
    palettes = [random_palette(day, seed) for seed in range(200)]
    assert random_palette(day, 7) == palettes[7] and palettes[7] != palettes[8]
    for palette in palettes:
        assert (palette.lanes, palette.max_curvature, palette.cars, palette.scenery_style) == (
            day.lanes, day.max_curvature, day.cars, day.scenery_style)
        assert contrast(palette.lane_mark, palette.road[0]) >= MIN_CONTRAST
        assert contrast(palette.grass[0], palette.road[0]) >= MIN_GROUND_CONTRAST
        assert all(contrast(car, palette.road[0]) >= MIN_CONTRAST for car in palette.car_colours)
    roads = np.array([palette.road[0] for palette in palettes])
    assert roads.min() < 40 and roads.max() > 215  # dim and bright ones
    assert 0.3 < np.mean([palette.fog_distance > 0 for palette in palettes]) < 0.7

    actions = [2, 2, 0, 2, 1, 2, 2, 2] * 5
    own, own_rewards, own_infos = rollout(gymnasium.make(ID), actions, seed=4)
    recoloured, rewards, infos = rollout(gymnasium.make(ID, palette_seed=3), actions, seed=4)
    again, *_ = rollout(gymnasium.make(ID, palette_seed=3), actions, seed=4)
    assert rewards == own_rewards and [i["lane"] for i in infos] == [i["lane"] for i in own_infos]
    assert all(np.array_equal(a, b) for a, b in zip(recoloured, again))
    assert np.abs(recoloured[0].astype(int) - own[0]).mean() > 20
    check_env(gymnasium.make(ID, palette_seed=3).unwrapped)
    with pytest.raises(ValueError, match="palette_seed must be None or an integer >= 0"):
        gymnasium.make(ID, palette_seed=-1)
    for bad in (1.5, True, "3"):  # refused by its type before the range check
        with pytest.raises(TypeError, match="option 'palette_seed' expects int | None"):
            gymnasium.make(ID, palette_seed=bad)


def test_motion_is_visible_between_frames():
    env = gymnasium.make(ID)
    first, _ = env.reset(seed=0)
    second, *_ = env.step(2)
    assert (first != second).any(axis=-1).mean() > 0.05


def test_human_mode_runs_headless():
    env = gymnasium.make(ID, render_mode="human")
    env.reset(seed=0)
    for _ in range(3):
        assert env.step(2)[0].shape == (64, 64, 3)
    env.close()


def test_terminate_and_respawn_on_unsafe():
    env = gymnasium.make(ID)
    env.reset(seed=0)
    for _ in range(200):  # steer left until leaving the road
        _, reward, terminated, _, info = env.step(0)
        if terminated:
            break
    assert terminated and info["unsafe"] and info["offroad"] and reward < 0
    env = gymnasium.make(ID, on_unsafe="respawn", max_steps=150)
    env.reset(seed=0)
    unsafe = 0
    for _ in range(150):
        _, _, terminated, truncated, info = env.step(0)
        unsafe += info["unsafe"]
        assert not terminated
    assert truncated and unsafe > 0


def test_show_unsafe_draws_the_crash_in_the_frame_it_ends_on():
    def crash_into_car_beside(show_unsafe):
        env = gymnasium.make(ID, cars=1, show_unsafe=show_unsafe).unwrapped
        env.reset(seed=0)
        roads = env.roads
        roads.car_position[0, 0] = roads.position[0] + 1.0
        roads.car_lane[0, 0] = int(np.abs(roads.lane_centres - roads.lateral[0]).argmin()) + 1
        roads.car_speed[0, 0] = roads.speed[0]
        frames, unsafe, states = [env.set_state(env.get_state())], [], []
        for _ in range(20):  # steer into the car beside
            states.append(env.get_state())
            observation, _, terminated, _, info = env.step(1)
            frames.append(observation)
            unsafe.append(info["unsafe"])
            if terminated:
                break
        return env, frames, unsafe, states

    env, shown, unsafe, states = crash_into_car_beside(True)
    _, plain, _, _ = crash_into_car_beside(False)
    assert unsafe[-1] and not any(unsafe[:-1]) and len(shown) == len(plain) > 2
    for before, after in zip(plain[:-1], shown[:-1]):  # frames of safe states are as in v0
        assert np.array_equal(before, after)
    burst = np.any(shown[-1] != plain[-1], axis=-1)
    yellow = np.all(shown[-1] == (255, 200, 0), axis=-1)
    assert burst.sum() > 60 and yellow.sum() > 30
    assert env.roads.unsafe_now()[0]
    assert np.array_equal(env.set_state(env.get_state()), shown[-1])  # read from the state
    vector = gymnasium.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", cars=1,
                                show_unsafe=True)
    vector.reset(seed=0)
    vector.unwrapped.set_states([states[-1], states[0]])
    observations, _, terminated, _, _ = vector.step(np.array([1, 1]))
    assert list(terminated) == [True, False]
    assert np.array_equal(observations[0], shown[-1]) and np.array_equal(observations[1], shown[1])
    with pytest.raises(TypeError, match="option .show_unsafe. expects bool, got .yes."):
        gymnasium.make(ID, show_unsafe="yes")


def test_headway_penalty_grows_as_the_car_ahead_comes_closer():
    def reward_with_car_at(gap, lane_offset, **options):
        env = gymnasium.make(ID, cars=1, **options).unwrapped
        env.reset(seed=0)
        roads = env.roads
        roads.car_position[0, 0] = roads.position[0] + gap
        roads.car_lane[0, 0] = len(roads.lane_centres) // 2 + lane_offset
        roads.car_speed[0, 0] = roads.speed[0]  # the gap stays as set during the step
        return env.step(2)[1]

    free = reward_with_car_at(200.0, 0, headway_penalty=2.0)
    far, near = (reward_with_car_at(gap, 0, headway_penalty=2.0) for gap in (40.0, 8.0))
    beside = reward_with_car_at(8.0, 1, headway_penalty=2.0)
    assert free == pytest.approx(far) and beside == pytest.approx(free)
    bumper_gap = 8.0 - CONTACT_GAP
    assert free - near == pytest.approx(2.0 * (1 - bumper_gap / 20.0), abs=0.02)
    assert reward_with_car_at(8.0, 0) == pytest.approx(free)  # off by default
    with pytest.raises(ValueError, match="headway must be in 1..100"):
        gymnasium.make(ID, headway=0.5)


def test_hazard_starts_put_a_vehicle_close_to_the_bike_and_replay_exactly():
    env = DrivingEnv(hazard_start=1.0, max_steps=60)
    kinds, unsafe_episodes = set(), 0
    for seed in range(40):
        _, info = env.reset(seed=seed)
        roads = env.roads
        assert info["distance"] == 0.0 and not roads.unsafe_now()[0]
        gap = roads.car_position[0, 0] - roads.position[0]
        lanes_apart = abs(int(roads.car_lane[0, 0]) - int(roads.lane_index()[0]))
        window = HAZARD_AHEAD if lanes_apart == 0 else HAZARD_BESIDE
        assert lanes_apart <= 1 and window[0] <= gap <= window[1]
        kinds.add(lanes_apart)
        for _ in range(60):
            _, _, terminated, truncated, info = env.step(int(env.np_random.integers(3)))
            if terminated or truncated:
                break
        unsafe_episodes += info["unsafe"]
    assert kinds == {0, 1} and unsafe_episodes >= 10
    assert 0.0 < info["distance"] < env.roads.position[0]  # counted from the hazard's start
    actions = np.random.default_rng(2).integers(3, size=40)
    first, _, _ = rollout(gymnasium.make(ID, hazard_start=1.0), actions, seed=5)
    second, _, _ = rollout(gymnasium.make(ID, hazard_start=1.0), actions, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    env.reset(seed=5)
    state = env.get_state()
    assert state.start_position > 0 and np.array_equal(DrivingEnv().set_state(state), first[0])
    plain, _, _ = rollout(gymnasium.make(ID), actions, seed=5)
    zero, _, _ = rollout(gymnasium.make(ID, hazard_start=0.0), actions, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(plain, zero))  # v0 episodes unchanged
    with pytest.raises(ValueError, match="hazard_start must be a probability in 0..1"):
        gymnasium.make(ID, hazard_start=1.5)


def test_scripted_driver_beats_random():
    def distance_before_unsafe(policy, seed):
        env = DrivingEnv(max_steps=800)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(800):
            action = env.scripted_action() if policy == "scripted" else int(rng.integers(3))
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        return info["distance"]

    scripted = np.mean([distance_before_unsafe("scripted", s) for s in range(4)])
    random = np.mean([distance_before_unsafe("random", s) for s in range(4)])
    assert scripted > 2.5 * random


def test_vector_env_equals_single_envs():
    n, seed = 3, 11
    vector = gymnasium.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", max_steps=25)
    singles = [gymnasium.make(ID, max_steps=25) for _ in range(n)]
    observations, _ = vector.reset(seed=seed)
    for i, env in enumerate(singles):
        assert np.array_equal(env.reset(seed=seed + i)[0], observations[i])
    rng = np.random.default_rng(0)
    done = [False] * n
    resets = 0
    for _ in range(70):
        actions = rng.integers(3, size=n)
        observations, rewards, terminated, truncated, infos = vector.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                expected, reward, term, trunc = env.reset()[0], 0.0, False, False
                resets += 1
            else:
                expected, reward, term, trunc, info = env.step(int(actions[i]))
                assert infos["unsafe"][i] == info["unsafe"]
            done[i] = term or trunc
            assert np.array_equal(expected, observations[i])
            assert (rewards[i], terminated[i], truncated[i]) == (reward, term, trunc)
    assert resets >= n  # autoreset happened on every road
    states = vector.unwrapped.get_states()
    assert np.array_equal(vector.unwrapped.set_states(states), observations)


def test_bad_input_names_the_problem():
    env = gymnasium.make(ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action 3.*Discrete\\(3\\)"):
        env.step(3)
    with pytest.raises(ValueError, match="unknown map 'nigth'.*'day', 'night', 'desert', 'snow'.*Did you mean 'night'"):
        gymnasium.make(ID, map="nigth")
    with pytest.raises(TypeError, match="no option 'lanse'"):
        gymnasium.make(ID, lanse=3)
    with pytest.raises(ValueError, match="obs_height must be an integer in 16..512"):
        gymnasium.make(ID, obs_height=8)
    with pytest.raises(ValueError, match="actions"):
        gymnasium.make(ID, actions=4)
    vector = gymnasium.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point")
    vector.reset(seed=0)
    with pytest.raises(ValueError, match="invalid actions"):
        vector.step(np.array([0, 7]))


def test_string_id_works_in_a_fresh_process():
    code = ("import gymnasium; env = gymnasium.make('rlgan:rlgan/Driving-v0'); "
            "print(env.reset(seed=0)[0].shape)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "(64, 64, 3)"


def test_sb3_dqn_runs_a_few_hundred_steps():
    from stable_baselines3 import DQN

    env = gymnasium.make(ID, obs_height=36, obs_width=36)
    model = DQN("CnnPolicy", env, buffer_size=500, learning_starts=100, seed=0, device="cpu")
    model.learn(300)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))
