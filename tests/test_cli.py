"""The ``rlgan`` command line: help, play, record and their errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from rlgan.cli import SUBCOMMANDS, build_parser, main
from rlgan.data import TransitionDataset, load_metadata
from rlgan.data.outcomes import load_outcome_metadata


def test_help_lists_every_subcommand():
    output = subprocess.run([sys.executable, "-m", "rlgan", "--help"], capture_output=True,
                            text=True, check=True).stdout
    for name in SUBCOMMANDS:
        assert name in output


@pytest.mark.parametrize("argv, dest", [
    (["safety", "train", "--data", "d", "--run", "r"], "set"),
    (["worldmodel", "train", "--data", "d", "--run", "r"], "set"),
    (["train", "--env", "rlgan/Driving-v0", "--run", "r"], "hp"),
])
def test_repeated_key_value_options_add_up(argv, dest):
    flag = f"--{dest}"
    args = build_parser().parse_args([*argv, flag, "a=1", "b=2", flag, "c=3"])
    assert getattr(args, dest) == ["a=1", "b=2", "c=3"]  # not just the last flag's
    if dest == "hp":
        args = build_parser().parse_args([*argv, "--env-kwargs", "map=day", "--env-kwargs", "cars=4"])
        assert args.env_kwargs == ["map=day", "cars=4"]


def test_record_scripted_driving_and_load_it_back(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["record", "--env", "rlgan/Driving-v0", "--map", "snow", "--agent", "scripted",
                 "--epsilon", "0.3", "--steps", "50", "--shard-size", "20", "--out", str(out),
                 "--seed", "4", "--video", str(tmp_path / "episode.gif")]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert summary["transitions"] == 50 and summary["shards"] == 3
    assert summary["env_kwargs"] == {"map": "snow"}
    assert (tmp_path / "episode.gif").stat().st_size > 0
    dataset = TransitionDataset(out)
    assert dataset.obs_shape == (64, 64, 3) and dataset.n_actions == 3
    # Episode 0 started from reset(seed=4): replaying its actions rebuilds the frames.
    import gymnasium

    env = gymnasium.make("rlgan/Driving-v0", map="snow")
    observation, _ = env.reset(seed=4)
    for row in range(10):
        assert np.array_equal(dataset.arrays["obs"][row], observation)
        observation, *_ = env.step(int(dataset.arrays["action"][row]))
    assert main(["record", "--steps", "5", "--out", str(out)]) == 2  # exists without --resume
    assert main(["record", "--steps", "5", "--out", str(out), "--map", "snow", "--resume"]) == 0
    assert load_metadata(out)["transitions"] == 55


def test_play_runs_headless_and_records(tmp_path, capsys):
    assert main(["play", "driving", "--steps", "5", "--record", str(tmp_path / "mine")]) == 0
    assert "played 5 steps" in capsys.readouterr().out
    dataset = TransitionDataset(tmp_path / "mine")
    assert len(dataset) == 5
    assert set(dataset.arrays["action"].tolist()) == {2}  # no key held: accelerate


@pytest.mark.parametrize("argv, message", [
    (["record", "--env", "rlgan/Drivng-v0", "--out", "x"], "unknown environment id 'rlgan/Drivng-v0'"),
    (["record", "--map", "mars", "--out", "x"], "unknown map 'mars'"),
    (["record", "--env-kwargs", "lanse=2", "--out", "x"], "no option 'lanse'"),
    (["record", "--steps", "0", "--out", "x"], "--steps must be >= 1"),
    (["record", "--env-kwargs", "lanes", "--out", "x"], "expected key=value"),
    (["safety", "collect", "--palette-seeds", "none", "-2", "--out", "x"], "a palette seed is none or an integer >= 0, got '-2'"),
    (["safety", "collect", "--env-kwargs", "palette_seed=1", "--palette-seeds", "2", "--out", "x"],
     "give either --palette-seeds or --env-kwargs palette_seed=S"),
])
def test_bad_input_is_one_clear_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


@pytest.mark.parametrize("argv, message", [
    (["record", "--env-kwargs", "max_steps=2.5", "--out", "x"],
     "DrivingConfig option 'max_steps' expects int, got 2.5 (float)"),
    (["record", "--env-kwargs", "map=[1]", "--out", "x"], "option 'map' expects str, got [1] (list)"),
    (["record", "--env", "rlgan/HideAndSeek-v0", "--env-kwargs", "view_cone=yes", "--out", "x"],
     "HideAndSeekConfig option 'view_cone' expects bool, got 'yes' (str)"),
    (["record", "--env", "FrozenLake-v1", "--env-kwargs", "is_slippery=maybe", "--out", "x"],
     "FrozenLake-v1 option 'is_slippery' expects bool, got 'maybe' (str)"),
    (["train", "--algo", "dqn", "--env", "CartPole-v1", "--steps", "10", "--run", "r", "--hp",
      "buffer_size=1e5"], "dqn option 'buffer_size' expects int, got 100000.0 (float)"),
    (["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "--steps", "10", "--run", "r",
      "--hp", "gamma=high"], "qlearning option 'gamma' expects float, got 'high' (str)"),
    (["worldmodel", "train", "--data", "d", "--run", "r", "--set", "z_dim=2.5"],
     "WorldModelConfig option 'z_dim' expects int, got 2.5 (float)"),
    (["safety", "train", "--data", "d", "--run", "r", "--set", "flip=yes"],
     "ClassifierConfig option 'flip' expects bool, got 'yes' (str)"),
])
def test_a_value_of_the_wrong_type_is_one_clear_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv", [
    ["play", "hide-and-seek", "--role", "seeker", "--steps", "3"],
    ["play", "atari", "--game", "Breakout", "--steps", "3"],
])
def test_play_every_game_headless(argv, capsys):
    assert main(argv) == 0
    assert "played 3 steps" in capsys.readouterr().out


def test_record_atari_rgb_frames(tmp_path, capsys):
    assert main(["record", "--env", "rlgan/Atari-v0", "--game", "Pong", "--env-kwargs",
                 "obs_mode=rgb", "--agent", "random", "--steps", "12", "--out", str(tmp_path / "pong")]) == 0
    assert TransitionDataset(tmp_path / "pong").obs_shape == (64, 64, 3)
    assert main(["record", "--env", "rlgan/Atari-v0", "--agent", "scripted", "--steps", "2",
                 "--out", str(tmp_path / "none")]) == 2
    assert "no scripted policy" in capsys.readouterr().err


def test_eval_can_watch_in_a_window(capsys):
    assert main(["eval", "--agent", "scripted", "--env", "rlgan/HideAndSeek-v0", "--env-kwargs",
                 "max_steps=5", "--episodes", "1", "--render", "human", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_length"] == 5.0


def test_collect_takes_turns_between_palettes_of_every_map(tmp_path, capsys):
    out = tmp_path / "palettes"
    assert main(["safety", "collect", "--agent", "random", "--episodes", "4", "--num-envs", "1",
                 "--env-kwargs", "max_steps=3", "--maps", "day", "snow", "--palette-seeds", "none", "5",
                 "--safe-fraction", "1", "--doom-horizon", "0", "--out", str(out), "--no-progress"]) == 0
    assert load_outcome_metadata(out)["variants"] == [
        {"map": "day", "palette_seed": None}, {"map": "snow", "palette_seed": None},
        {"map": "day", "palette_seed": 5}, {"map": "snow", "palette_seed": 5}]


# -- one name per concept --------------------------------------------------------------------------
#: (command with an old spelling, the old spelling, the new one); {tmp}, {agent} and {wm} are
#: filled in with a scratch directory, an agent run and a world-model run.
RENAMED = [
    (["record", "--policy", "random", "--steps", "3", "--out", "{tmp}/data"], "--policy", "--agent"),
    (["eval", "--run", "{agent}", "--episodes", "1", "--json"], "--run", "--agent"),
    (["shield", "eval", "--env", "rlgan/Driving-v0", "--env-kwargs", "max_steps=3", "--agent", "random",
      "--model", "oracle", "--depth", "1", "--episodes", "1", "--json"], "--model", "--shield"),
    (["worldmodel", "dream", "--run", "{wm}", "--policy", "scripted", "--steps", "2"], "--policy", "--agent"),
]


@pytest.mark.parametrize("argv, old, new", RENAMED)
def test_an_old_spelling_still_works_warns_in_one_line_and_is_left_out_of_help(
        argv, old, new, tmp_path, tiny_agent_run, tiny_worldmodel_run, capsys):
    places = {"{tmp}": str(tmp_path), "{agent}": str(tiny_agent_run), "{wm}": str(tiny_worldmodel_run)}
    for placeholder, path in places.items():
        argv = [word.replace(placeholder, path) for word in argv]
    renamed = vars(build_parser().parse_args([new if word == old else word for word in argv]))
    assert "deprecated" not in capsys.readouterr().err
    assert vars(build_parser().parse_args(argv)) == renamed  # the same command
    capsys.readouterr()
    assert main(argv) == 0
    command = " ".join(argv[:2] if argv[0] in ("shield", "worldmodel") else argv[:1])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "deprecated" in line]
    assert warnings == [f"rlgan {command}: warning: {old} is deprecated; use {new}"]
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command.split(), "--help"])
    usage = capsys.readouterr().out
    assert new in usage and old not in usage.replace("--run-dir", "")


def test_named_training_options_default_to_their_config_dataclass(capsys):
    from rlgan.safety.outcomes import OutcomeConfig
    from rlgan.safety.search import SearchConfig
    from rlgan.safety.training import ClassifierConfig
    from rlgan.worldmodel.config import WorldModelConfig

    from rlgan.cli.common import config_options

    cases = [
        (["safety", "train", "--data", "d", "--run", "r"], ClassifierConfig(),
         {"--steps": "steps", "--batch-size": "batch_size", "--lr": "learning_rate"}),
        (["safety", "collect", "--out", "o"], OutcomeConfig(), {"--num-envs": "num_envs", "--before": "before"}),
        (["worldmodel", "train", "--data", "d", "--run", "r"], WorldModelConfig(),
         {"--steps": "steps", "--lr": "learning_rate", "--batch-size": "batch_size"}),
        (["shield", "eval", "--shield", "oracle"], SearchConfig(), {"--node-budget": "node_budget"}),
    ]
    for argv, config, flags in cases:
        args = build_parser().parse_args(argv)
        assert config_options(args, args.config_fields) == {}  # the dataclass's defaults apply
        flag, field = next(iter(flags.items()))
        given = build_parser().parse_args([*argv, flag, "7"])
        assert config_options(given, given.config_fields) == {field: 7}
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv[:2], "--help"])
        usage = " ".join(capsys.readouterr().out.split())
        for flag, field in flags.items():
            default = re.escape(str(getattr(config, field)))
            assert re.search(rf"{flag} [A-Z_]+ [^()]*\(default: {default}\)", usage), (argv, flag)
