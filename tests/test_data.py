"""The dataset format, recorder, loader and the small foundation helpers they use."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import pytest
import torch

from rlgan.config import build_config, check_choice, check_types, option_types, parse_kv, parse_value
from rlgan.data import DatasetError, TransitionDataset, TransitionWriter, load_metadata, split_episodes
from rlgan.data.record import dataset_summary, make_policy, record
from rlgan.io import DirectoryBusyError, write_json
from rlgan.video import write_video
from conftest import record_dataset
from toy_envs import MovingSquareEnv

METADATA = {"env_id": "toy", "env_kwargs": {}, "seed": 3, "policy": "random",
            "obs_shape": [16, 16, 3], "obs_dtype": "uint8", "n_actions": 3}


def record_toy(root, steps=20, shard_size=6, seed=3, resume=False):
    """Random moves of the toy square as METADATA says, shards of ``shard_size``."""
    return record_dataset(root, MovingSquareEnv(), "toy", {}, "random", steps, seed=seed,
                          shard_size=shard_size, resume=resume)


def test_round_trip_is_exact(tmp_path):
    env = MovingSquareEnv()
    policy = make_policy("random", env, seed=3)
    expected = []
    observation, _ = env.reset(seed=3)
    episode = 0
    for _ in range(20):
        action = policy(observation)
        next_observation, reward, terminated, truncated, info = env.step(action)
        expected.append((observation, action, reward, next_observation, info["unsafe"]))
        observation = next_observation
        if truncated:
            episode += 1
            observation, _ = env.reset(seed=3 + episode)

    record_toy(tmp_path / "data")
    dataset = TransitionDataset(tmp_path / "data")
    assert len(dataset) == 20
    assert len(load_metadata(tmp_path / "data")["shards"]) == 4  # 6 + 6 + 6 + 2
    for item, (obs, action, reward, next_obs, unsafe) in zip(dataset, expected):
        assert item["frames"].shape == (1, 3, 16, 16) and item["frames"].dtype == torch.uint8
        np.testing.assert_array_equal(item["frames"][0].permute(1, 2, 0).numpy(), obs)
        np.testing.assert_array_equal(item["next_frame"].permute(1, 2, 0).numpy(), next_obs)
        assert int(item["action"]) == action
        assert float(item["reward"]) == reward
        assert bool(item["unsafe"]) == unsafe


def test_history_repeats_the_first_frame_at_episode_start(tmp_path):
    record_toy(tmp_path / "data", steps=10)
    dataset = TransitionDataset(tmp_path / "data", history=3)
    first = dataset[0]["frames"]
    assert first.shape == (3, 3, 16, 16)
    assert torch.equal(first[0], first[2]) and torch.equal(first[1], first[2])
    third = dataset[2]["frames"]
    assert torch.equal(third[2], dataset[2 - 0]["frames"][2])
    assert torch.equal(third[1], dataset[1]["frames"][2])
    assert torch.equal(third[0], dataset[0]["frames"][2])
    # Episode 1 starts at row 7 (max_steps=7): its history must not reach into episode 0.
    start = dataset[7]["frames"]
    assert int(dataset[7]["episode"]) == 1 and int(dataset[7]["step"]) == 0
    assert torch.equal(start[0], start[2])


def test_episode_selection_and_split(tmp_path):
    record_toy(tmp_path / "data", steps=21)
    train, held_out = split_episodes(tmp_path / "data", val_fraction=0.34, seed=0)
    assert sorted(train + held_out) == [0, 1, 2] and len(held_out) == 1
    dataset = TransitionDataset(tmp_path / "data", episodes=held_out)
    assert len(dataset) == 7
    assert set(dataset.episode_ids().tolist()) == set(held_out)


def test_interrupted_recording_keeps_finished_shards_and_resumes(tmp_path):
    env = MovingSquareEnv()
    writer = TransitionWriter(tmp_path / "data", METADATA, shard_size=5)
    calls = {"n": 0}

    def crashing_policy(observation):
        calls["n"] += 1
        if calls["n"] > 12:
            raise KeyboardInterrupt
        return 2

    with pytest.raises(KeyboardInterrupt):
        record(env, crashing_policy, writer, 100, progress=False)
    assert load_metadata(tmp_path / "data")["transitions"] == 10
    assert len(TransitionDataset(tmp_path / "data")) == 10
    with pytest.raises(DirectoryBusyError, match=f"process {os.getpid()}"):
        TransitionWriter(tmp_path / "data", METADATA, resume=True)  # the open writer holds it
    writer._lock.release()  # as the kernel does when a killed recorder's process ends
    with pytest.raises(DatasetError, match="already holds a dataset"):
        TransitionWriter(tmp_path / "data", METADATA)
    record_toy(tmp_path / "data", steps=7, resume=True)
    dataset = TransitionDataset(tmp_path / "data")
    assert len(dataset) == 17
    assert int(dataset.arrays["episode"].max()) == 2  # resumed at a fresh episode index


def test_resume_with_other_settings_is_refused(tmp_path):
    record_toy(tmp_path / "data", steps=6)
    with pytest.raises(DatasetError, match="obs_shape"):
        TransitionWriter(tmp_path / "data", {**METADATA, "obs_shape": [8, 8, 3]}, resume=True)


def test_corrupt_missing_and_empty_datasets_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        TransitionDataset(tmp_path / "nothing")
    TransitionWriter(tmp_path / "empty", METADATA).close()
    with pytest.raises(DatasetError, match="no finished shards"):
        TransitionDataset(tmp_path / "empty")
    record_toy(tmp_path / "data", steps=12)
    shard = tmp_path / "data" / "shard_00001.npz"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="shard_00001.npz is corrupt"):
        TransitionDataset(tmp_path / "data")
    shard.unlink()
    with pytest.raises(DatasetError, match="shard_00001.npz listed in metadata.json is missing"):
        TransitionDataset(tmp_path / "data")
    (tmp_path / "data" / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        TransitionDataset(tmp_path / "data")
    write_json(tmp_path / "other" / "metadata.json", {"format": "something-else"})
    with pytest.raises(DatasetError, match="not an rlgan-transitions dataset"):
        load_metadata(tmp_path / "other")


def test_open_dataset_reads_either_format_and_names_an_unknown_one(tmp_path, tiny_outcomes):
    from rlgan.data.reader import OutcomesReader, TransitionsReader, open_dataset

    record_toy(tmp_path / "data", steps=14)
    reader = open_dataset(tmp_path / "data")
    assert isinstance(reader, TransitionsReader) and not reader.every_action and reader.seed == 3
    assert sorted(sum(reader.split_episodes(0.5, 0), [])) == [0, 1]
    assert len(reader.transitions(history=2, shards=[0])) == 6
    records = open_dataset(tiny_outcomes)
    assert isinstance(records, OutcomesReader) and records.every_action and records.seed == 0
    dataset = records.transitions(history=1)
    items, next_frames = records.action_outcomes(dataset, 3, {})
    assert next_frames.shape[:2] == (len(items), 3) and next_frames.dtype == np.uint8
    write_json(tmp_path / "other" / "metadata.json", {"format": "something-else"})
    with pytest.raises(DatasetError, match="format 'something-else', expected one of "
                                           "'rlgan-transitions', 'rlgan-outcomes'"):
        open_dataset(tmp_path / "other")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        open_dataset(tmp_path / "broken")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")


def test_summary_counts_actions_and_unsafe(tmp_path):
    summary = record_toy(tmp_path / "data", steps=14)
    described = dataset_summary(tmp_path / "data")
    assert described["transitions"] == 14 and described["episodes"] == 2
    assert sum(described["action_counts"]) == 14
    assert described["unsafe_fraction"] == pytest.approx(summary.unsafe_steps / 14)
    json.dumps(described)


def test_policies():
    env = MovingSquareEnv()
    env.reset(seed=0)
    assert make_policy("scripted", env)(None) == 2
    first, second = make_policy("random", env, seed=5), make_policy("random", env, seed=5)
    assert [first(None) for _ in range(20)] == [second(None) for _ in range(20)]
    greedy = make_policy("scripted", env, seed=1, epsilon=1.0)
    assert {greedy(None) for _ in range(50)} == {0, 1, 2}
    with pytest.raises(ValueError, match="unknown agent 'scripte'.*Did you mean 'scripted'"):
        make_policy("scripte", env)
    with pytest.raises(ValueError, match="epsilon"):
        make_policy("random", env, epsilon=2.0)


@dataclasses.dataclass(frozen=True)
class ExampleConfig:
    lanes: int = 3
    map: str = "day"


def test_config_errors_suggest_the_closest_key():
    assert build_config(ExampleConfig, {"lanes": 4}).lanes == 4
    with pytest.raises(TypeError, match="no option 'lans'. Did you mean 'lanes'"):
        build_config(ExampleConfig, {"lans": 4})
    with pytest.raises(ValueError, match="unknown map 'nigth'.*Did you mean 'night'"):
        check_choice("map", "nigth", ["day", "night"])
    assert parse_kv(["lanes=4", "map=night", "grayscale=true", "size=[32,32]"]) == {
        "lanes": 4, "map": "night", "grayscale": True, "size": [32, 32]}
    with pytest.raises(ValueError, match="key=value"):
        parse_kv(["lanes"])


@pytest.mark.parametrize("text, value", [
    ("False", False), ("false", False), ("FALSE", False), ("True", True), ("tRuE", True),
    ("None", None), ("none", None), ("null", None), ("NULL", None), ("4", 4), ("0.5", 0.5),
    ("night", "night"), ("[1, 2]", [1, 2]), ('"True"', "True"),
])
def test_values_are_read_as_users_type_them(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)
    assert parse_kv([f"is_slippery={text}"]) == {"is_slippery": value}


@dataclasses.dataclass(frozen=True)
class TypedConfig:
    lanes: int = 3
    speed: float = 1.0
    grayscale: bool = False
    cars: int | None = None
    size: tuple[int, int] = (64, 64)
    name: str = "day"


@pytest.mark.parametrize("options, message", [
    ({"lanes": 2.5}, "TypedConfig option 'lanes' expects int, got 2.5 (float)"),
    ({"grayscale": "False"}, "option 'grayscale' expects bool, got 'False' (str)"),
    ({"lanes": True}, "option 'lanes' expects int, got True (bool)"),
    ({"speed": [1.0]}, "option 'speed' expects float, got [1.0] (list)"),
    ({"name": 4}, "option 'name' expects str, got 4 (int)"),
    ({"cars": "many"}, "option 'cars' expects int | None"),
    ({"size": [64, 6.5]}, "option 'size' expects tuple[int, int]"),
    ({"size": [64]}, "option 'size' expects tuple[int, int]"),
])
def test_values_that_do_not_fit_the_option_are_refused(options, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        build_config(TypedConfig, options)


def test_values_that_fit_the_option_pass():
    config = build_config(TypedConfig, {"speed": 2, "cars": None, "size": [32, 48], "lanes": np.int64(4),
                                        "grayscale": np.bool_(True)})
    assert (config.speed, config.cars, config.size, config.lanes) == (2, None, [32, 48], 4)
    assert build_config(TypedConfig, {"cars": 5}).cars == 5


def test_option_types_from_a_signature_hints_else_defaults():
    def make(render_mode: str | None = None, desc=None, is_slippery=True, rate=0.5, **kwargs):
        return None

    types = option_types(make)
    assert types == {"render_mode": str | None, "is_slippery": bool, "rate": float}
    check_types({"is_slippery": False, "rate": 1, "desc": [1], "other": "x"}, types, "make")
    with pytest.raises(TypeError, match=re.escape("make option 'is_slippery' expects bool, got 'no' (str)")):
        check_types({"is_slippery": "no"}, types, "make")


def test_video_writer(tmp_path):
    frames = [np.full((16, 16, 3), value, np.uint8) for value in (0, 128, 255)]
    for name in ("clip.gif", "clip.mp4"):
        path = write_video(tmp_path / name, frames, fps=5)
        assert path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif", "clip.mp4"]
    with pytest.raises(ValueError, match="unsupported video file"):
        write_video(tmp_path / "clip.avi", frames)


def test_resumed_recordings_keep_their_own_seeds_so_every_state_replays(tmp_path):
    from rlgan.data import episode_seed
    from rlgan.data.replay import replay_every_action
    from rlgan.make import make_env

    kwargs = {"obs_height": 32, "obs_width": 32, "max_steps": 5, "cars": 2}
    for seed, resume in ((0, False), (500, True)):
        record_dataset(tmp_path, make_env("rlgan/Driving-v0", **kwargs), "rlgan/Driving-v0", kwargs,
                       "random", 10, seed=seed, resume=resume)
    metadata = load_metadata(tmp_path)
    assert [(r["first_episode"], r["seed"]) for r in metadata["recordings"]] == [(0, 0), (2, 500)]
    assert [episode_seed(metadata, e) for e in range(4)] == [0, 1, 502, 503]
    dataset = TransitionDataset(tmp_path, history=1)
    items = np.arange(len(dataset))
    frames, unsafe = replay_every_action(dataset, items, "rlgan/Driving-v0", kwargs, 3)
    rows = dataset.indices[items]
    taken = dataset.arrays["action"][rows]
    assert np.array_equal(frames[items, taken], dataset.arrays["next_obs"][rows])
    assert frames.shape == (20, 3, 32, 32, 3) and unsafe.dtype == bool
