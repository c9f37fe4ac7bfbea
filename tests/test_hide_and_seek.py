"""rlgan/HideAndSeek-v0: rules, visibility, API conformance, batched form, PettingZoo."""

from __future__ import annotations

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

import rlgan  # noqa: F401
from rlgan.envs.hide_and_seek import HideAndSeekEnv, parallel_env

ID = "rlgan/HideAndSeek-v0"
STAY, UP, DOWN, LEFT, RIGHT = range(5)


def game(layout: str, **overrides) -> HideAndSeekEnv:
    env = HideAndSeekEnv(layout=layout, **overrides)
    env.reset(seed=0)
    return env


def cell(env: HideAndSeekEnv, row: int, col: int) -> int:
    return row * env.config.size + col


def test_checkers_pass():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(gymnasium.make(ID).unwrapped)
    sb3_check_env(gymnasium.make(ID).unwrapped)
    check_env(gymnasium.make(ID, role="seeker", observation="full", lockable=True).unwrapped)
    parallel_api_test(pettingzoo.make("parallel", ID), num_cycles=150)
    parallel_seed_test(parallel_env)


def test_visibility_on_hand_built_layouts():
    corridor = game("#######\n#H...S#\n###.###\n#.....#\n#.....#\n#.....#\n#######")
    assert corridor.grid.hider_seen()[0]
    wall = game("#######\n#H#..S#\n###.###\n#.....#\n#.....#\n#.....#\n#######")
    assert not wall.grid.hider_seen()[0]
    far = game("#######\n#H...S#\n###.###\n#.....#\n#.....#\n#.....#\n#######", vision_range=3)
    assert not far.grid.hider_seen()[0]
    # A wall touching the line of sight at a corner blocks it.
    corner = game("#######\n#H....#\n##....#\n#..S..#\n#.....#\n#.....#\n#######")
    assert not corner.grid.hider_seen()[0]
    open_diagonal = game("#######\n#H....#\n#.....#\n#..S..#\n#.....#\n#.....#\n#######")
    assert open_diagonal.grid.hider_seen()[0]


def test_line_of_sight_is_symmetric():
    # GridBatch.team_sight() serves both teams from one lookup; that relies on this.
    from rlgan.envs.hide_and_seek.config import MAX_SIZE
    from rlgan.envs.hide_and_seek.visibility import between_table

    for size in range(5, MAX_SIZE + 1):
        cells = size * size
        table = between_table(size).reshape(cells, cells, -1)
        assert np.array_equal(table, table.transpose(1, 0, 2)), size


def test_hidden_behind_a_pushed_box():
    env = game("#######\n#.....#\n#H...S#\n#..B..#\n#..H..#\n#.....#\n#######", prep_fraction=0.0)
    assert env.grid.hider_seen()[0]
    env.grid.step([STAY, UP, STAY])  # hider_1 pushes the box between hider_0 and the seeker
    assert env.grid.boxes[cell(env, 2, 3)] and not env.grid.boxes[cell(env, 3, 3)]
    assert not env.grid.hider_seen()[0]


def test_box_pushing_rules():
    env = game("#######\n#HB#..#\n#.....#\n#.BB..#\n#.H...#\n#....S#\n#######")
    env.step(RIGHT)  # box against a wall: nothing moves
    assert env.grid.agents[0] == cell(env, 1, 1) and env.grid.boxes[cell(env, 1, 2)]
    env = game("#######\n#.....#\n#.....#\n#HBB..#\n#.....#\n#....S#\n#######")
    env.step(RIGHT)  # box against a box: nothing moves
    assert env.grid.agents[0] == cell(env, 3, 1)
    env = game("#######\n#.....#\n#.....#\n#HB...#\n#.....#\n#....S#\n#######")
    env.step(RIGHT)  # free behind: the box moves, the hider follows
    assert env.grid.agents[0] == cell(env, 3, 2) and env.grid.boxes[cell(env, 3, 3)]
    env = game("#######\n#.....#\n#.....#\n#HB...#\n#.....#\n#....S#\n#######", lockable=True)
    env.grid.facing[0] = RIGHT
    env.step(5)  # lock the box in front; now it cannot be pushed
    env.step(RIGHT)
    assert env.grid.agents[0] == cell(env, 3, 1)


def test_rewards_and_preparation_phase():
    layout = "#######\n#H...S#\n###.###\n#.....#\n#.....#\n#.....#\n#######"
    env = parallel_env(layout=layout, max_steps=10, prep_fraction=0.4)
    env.reset(seed=0)
    rewards = []
    for step in range(10):
        _, reward, _, truncation, info = env.step({"hider_0": STAY, "seeker_0": LEFT})
        rewards.append((reward["hider_0"], reward["seeker_0"]))
        assert info["hider_0"]["prep"] == (step < 4)
        if step < 4:  # seekers are frozen during preparation
            assert env.grid.agents[1] == 1 * 7 + 5
    assert rewards[:4] == [(0.0, 0.0)] * 4
    assert rewards[4:] == [(-1.0, 1.0)] * 6  # the hider is in plain sight afterwards
    assert all(truncation.values()) and env.agents == []
    hidden = parallel_env(layout="#######\n#H#..S#\n###.###\n#.....#\n#.....#\n#.....#\n#######",
                          max_steps=3, prep_fraction=0.0)
    hidden.reset(seed=0)
    _, reward, *_ = hidden.step({"hider_0": STAY, "seeker_0": STAY})
    assert reward == {"hider_0": 1.0, "seeker_0": -1.0}


def test_unsafe_is_being_seen():
    env = game("#######\n#H...S#\n###.###\n#.....#\n#.....#\n#.....#\n#######")
    *_, info = env.step(STAY)
    assert info["unsafe"] and info["cost"] == 1.0


def test_determinism_and_state_restore():
    def run(seed):
        env = gymnasium.make(ID)
        observations = [env.reset(seed=seed)[0]]
        for action in np.random.default_rng(0).integers(5, size=60):
            observations.append(env.step(int(action))[0])
        return np.array(observations)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))
    env = HideAndSeekEnv()
    env.reset(seed=1)
    for _ in range(10):
        env.step(env.scripted_action())
    state = env.get_state()
    actions = np.random.default_rng(2).integers(5, size=40)
    first = [env.step(int(a)) for a in actions]
    env.set_state(state)
    second = [env.step(int(a)) for a in actions]
    for a, b in zip(first, second):
        assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]


def test_observation_layout():
    env = game("#######\n#H...S#\n###.###\n#.....#\n#.....#\n#.....#\n#######")
    observation = env.step(STAY)[0]
    assert observation.dtype == np.uint8 and observation.shape == (6 * 25 + 4,)
    planes = observation[:150].reshape(6, 5, 5)
    assert planes[3, 2, 2] == 1  # self at the centre
    assert planes[0, 0].all()  # the row above is the outer wall and beyond
    assert planes[5].sum() == 0  # the seeker is 4 cells right, outside a 5x5 window
    assert list(observation[150:]) == [1, 1, 1, 1]  # step 1, preparation, row 1, col 1
    full = HideAndSeekEnv(observation="full")
    assert full.reset(seed=0)[0].shape == (6 * 81 + 4,)


def test_pixel_observation():
    from rlgan.envs.hide_and_seek.pixels import PALETTE

    env = gymnasium.make(ID, observation="pixels", obs_height=96, obs_width=80).unwrapped
    check_env(env)
    check_env(gymnasium.make(ID, observation="pixels", view_cone=True, vision_range=3,
                             lockable=True).unwrapped)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (96, 80, 3), np.uint8)
    corridor = "#######\n#H...S#\n###.###\n#.....#\n#.....#\n#.....#\n#######"
    frame = HideAndSeekEnv(layout=corridor, observation="pixels", obs_height=112, obs_width=112,
                           prep_fraction=0.0).reset(seed=0)[0]
    assert frame.shape == (112, 112, 3) and frame.dtype == np.uint8

    def at(row, col, corner=False):  # the centre (or the corner) of a cell: 16 pixels a side
        return tuple(frame[row * 16 + (1 if corner else 8), col * 16 + (1 if corner else 8)])

    assert at(1, 1) == PALETTE["self"] and at(1, 5) == PALETTE["seeker"]
    assert at(0, 0) == PALETTE["wall"] and at(2, 1) == PALETTE["wall"]
    assert at(1, 1, corner=True) == at(1, 3) == PALETTE["seen"]  # the seeker sees the corridor
    assert at(4, 1) == PALETTE["floor"]  # but not the room below
    prep = game(corridor, observation="pixels", obs_height=112, obs_width=112).step(STAY)[0]
    assert tuple(prep[8, 8]) == PALETTE["prep_wall"]  # walls change colour while seekers wait

    def rollout(seed):
        env = gymnasium.make(ID, observation="pixels")
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(int(a))[0] for a in np.random.default_rng(0).integers(5, size=30)]
        return np.array(frames)

    assert np.array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))
    with pytest.raises(ValueError, match=r"obs_height must be a multiple of 16 and >= size \(9\), "
                                         "got 60"):
        gymnasium.make(ID, observation="pixels", obs_height=60)
    with pytest.raises(ValueError, match="unknown observation 'pixel'.*'pixels'"):
        gymnasium.make(ID, observation="pixel")


def test_pixel_state_round_trip():
    env = gymnasium.make(ID, observation="pixels", view_cone=True, vision_range=3)
    env.reset(seed=2)
    rng = np.random.default_rng(1)
    for action in rng.integers(5, size=30):
        observation = env.step(int(action))[0]
    state = env.unwrapped.get_state()
    actions = rng.integers(5, size=40)
    first = [env.step(int(a)) for a in actions]
    assert np.array_equal(env.unwrapped.set_state(state), observation)
    second = [env.step(int(a)) for a in actions]
    for a, b in zip(first, second):
        assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    vector = gymnasium.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point",
                                observation="pixels", view_cone=True, vision_range=3)
    vector.reset(seed=0)
    restored = vector.set_states([state, state])
    assert np.array_equal(restored[0], observation) and np.array_equal(restored[1], observation)
    frames = vector.step(np.array([actions[0]] * 2))[0]
    assert np.array_equal(frames[0], first[0][0]) and np.array_equal(frames[1], first[0][0])


def test_encode_state_is_distinct_for_distinct_states():
    env = HideAndSeekEnv(size=5, n_boxes=1, walls=0)
    codes = {}
    for seed in range(200):
        env.reset(seed=seed)
        key = (tuple(env.grid.agents), tuple(np.flatnonzero(env.grid.boxes)))
        code = env.encode_state()
        assert 0 <= code < env.n_states
        assert codes.setdefault(code, key) == key
    assert len(codes) > 50


@pytest.mark.parametrize("observation", ["egocentric", "pixels"])
def test_vector_env_equals_single_envs(observation):
    n, seed = 4, 5
    vector = gymnasium.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point",
                                max_steps=12, observation=observation)
    singles = [gymnasium.make(ID, max_steps=12, observation=observation) for _ in range(n)]
    observations, _ = vector.reset(seed=seed)
    for i, env in enumerate(singles):
        assert np.array_equal(env.reset(seed=seed + i)[0], observations[i])
    rng = np.random.default_rng(0)
    done = [False] * n
    for _ in range(40):
        actions = rng.integers(5, size=n)
        observations, rewards, terminated, truncated, infos = vector.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                expected, reward, trunc = env.reset()[0], 0.0, False
            else:
                expected, reward, _, trunc, info = env.step(int(actions[i]))
                assert infos["unsafe"][i] == info["unsafe"]
            done[i] = trunc
            assert np.array_equal(expected, observations[i])
            assert (rewards[i], truncated[i]) == (reward, trunc)


def test_render_modes_and_scripted_hider_beats_random():
    env = gymnasium.make(ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (9 * 32 + 32, 9 * 32, 3) and frame.dtype == np.uint8
    human = gymnasium.make(ID, render_mode="human")
    human.reset(seed=0)
    human.step(0)
    human.close()

    def mean_return(policy):
        env, total = HideAndSeekEnv(), 0.0
        rng = np.random.default_rng(0)
        for seed in range(8):
            env.reset(seed=seed)
            for _ in range(100):
                action = env.scripted_action() if policy == "scripted" else int(rng.integers(5))
                total += env.step(action)[1]
        return total / 8

    assert mean_return("scripted") > mean_return("random")


def test_bad_input_names_the_problem():
    env = gymnasium.make(ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action 5.*Discrete\\(5\\)"):
        env.step(5)
    with pytest.raises(TypeError, match="no option 'n_hider'. Did you mean 'n_hiders'"):
        gymnasium.make(ID, n_hider=2)
    with pytest.raises(ValueError, match="do not fit in a 5x5 grid"):
        gymnasium.make(ID, size=5, n_hiders=2, n_seekers=2, n_boxes=2)
    with pytest.raises(ValueError, match="size must be in 5..16"):
        gymnasium.make(ID, size=3)
    with pytest.raises(ValueError, match="enclosed by walls"):
        gymnasium.make(ID, layout="#####\n#H..S\n#...#\n#...#\n#####")
    with pytest.raises(ValueError, match="unknown role 'hidder'.*Did you mean 'hider'"):
        gymnasium.make(ID, role="hidder")
    with pytest.raises(ValueError, match="policies for unknown agents"):
        HideAndSeekEnv(policies={"seeker_9": lambda obs: 0})
    parallel = parallel_env()
    parallel.reset(seed=0)
    with pytest.raises(ValueError, match="missing actions"):
        parallel.step({"hider_0": 0})


@pytest.mark.parametrize("overrides", [{}, {"observation": "full"}, {"observation": "pixels"},
                                       {"view_cone": True, "vision_range": 4, "lockable": True,
                                        "n_hiders": 2, "n_seekers": 2}])
def test_single_grid_fast_path_equals_the_batched_core(overrides):
    from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
    from rlgan.envs.hide_and_seek.core import GridBatch
    from rlgan.envs.hide_and_seek.observations import observe
    from rlgan.envs.hide_and_seek.scripted import scripted_actions
    from rlgan.envs.hide_and_seek.single import SingleGrid

    config = HideAndSeekConfig(**overrides)
    for seed in range(3):
        batch, single = GridBatch(1, config), SingleGrid(config)
        batch.reset(0, seed=seed)
        single.reset(seed)
        rng = np.random.default_rng(seed)
        for _ in range(60):
            joint, actions = scripted_actions(batch), single.scripted_actions()
            assert list(joint[0]) == actions
            joint[0, 0] = actions[0] = int(rng.integers(config.n_actions))
            batched, fast = batch.step(joint), single.step(actions)
            assert list(batched["rewards"][0]) == fast["rewards"]
            assert list(batched["seen"][0]) == fast["seen"]
            for agent in range(config.n_agents):
                assert np.array_equal(observe(batch, np.array([agent]))[0], single.observe(agent))
            assert batch.get_state(0) == single.get_state()


def test_custom_policy_for_the_other_team():
    calls = []

    def lazy_seeker(observation):
        calls.append(observation.shape)
        return STAY

    env = HideAndSeekEnv(policies={"seeker_0": lazy_seeker}, prep_fraction=0.0)
    env.reset(seed=0)
    start = env.grid.agents[1]
    for _ in range(5):
        env.step(STAY)
    assert env.grid.agents[1] == start and calls == [(154,)] * 5


def test_oracle_shield_keeps_the_hider_unseen_on_the_shield_task():
    from rlgan.envs.hide_and_seek import SHIELD_TASK
    from rlgan.safety.evaluation import evaluate_shield
    from rlgan.safety.oracle import OracleSearch
    from rlgan.safety.policies import load_policy
    from rlgan.safety.search import SearchConfig
    from rlgan.safety.shield import Shield

    env = gymnasium.make(ID, **SHIELD_TASK, max_steps=50)
    assert env.observation_space.shape == (64, 64, 3)
    oracle = OracleSearch.for_env(env, SearchConfig(depth=2))
    agent = evaluate_shield("agent", env, load_policy("random", env), episodes=6)
    shielded = evaluate_shield("oracle_shield", env, load_policy("random", env), episodes=6,
                               shield=Shield(oracle, load_policy("random", env)))
    oracle.close()
    # Deterministic: seen on 82 of 300 steps alone, on none shielded (the issue asks >= 90% fewer).
    assert agent["unsafe_per_1000"] > 150
    assert shielded["unsafe_per_1000"] <= 0.1 * agent["unsafe_per_1000"]
