"""Kill and resume: each writing command, killed with SIGKILL shortly after its first
checkpoint or shard appears, resumes with --resume to a complete, readable result that keeps
everything finished before the kill (the commands and checks are those of
benchmarks/bench_kill_resume.py, which tries many random kill points)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from bench_kill_resume import COMMANDS, trial  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("key", ["train", "worldmodel", "collect", "record"])
def test_a_command_killed_mid_write_resumes_complete(key, tiny_dataset, tmp_path):
    delay = random.Random(key).uniform(0.0, 0.4)  # after the first checkpoint or shard
    result = trial(COMMANDS[key], tiny_dataset, tmp_path, delay, after_progress_file=True)
    assert result.killed, "the run ended before the kill; make it longer"
    assert result.finished_at_kill > 0 and not result.started_again
    assert result.problem is None, result.problem


# -- the states a kill can leave, made by hand --------------------------------------------------
def test_an_evaluation_written_after_the_last_checkpoint_is_measured_again(tmp_path):
    from rlgan.agents.training import Run, AgentConfig, train

    config = AgentConfig(algo="qlearning", env_id="FrozenLake-v1", steps=300, eval_freq=100,
                         eval_episodes=1)
    train(tmp_path, config, progress=False, stop_at=200)
    run = Run(tmp_path)
    run.append_evaluation({**run.evaluations()[-1], "step": 300.0})  # killed before its checkpoint
    train(tmp_path, resume=True, progress=False)
    assert [row["step"] for row in run.evaluations()] == [100, 200, 300]
    assert run.last_checkpoint().name == "step_000000300"


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    import shutil

    from rlgan.agents.training import Run, AgentConfig, train

    config = AgentConfig(algo="qlearning", env_id="FrozenLake-v1", steps=200, eval_freq=100,
                         eval_episodes=1)
    train(tmp_path, config, progress=False, stop_at=100)
    run = Run(tmp_path)
    shutil.rmtree(run.checkpoints)  # as it was when killed before its first checkpoint
    shutil.rmtree(tmp_path / "best")
    (tmp_path / "evaluations.csv").unlink()
    train(tmp_path, resume=True, progress=False)
    assert [row["step"] for row in run.evaluations()] == [100, 200]
    assert (tmp_path / "best" / "evaluation.json").is_file()


def test_a_world_model_killed_between_its_checkpoint_renames_resumes(tiny_dataset, tmp_path):
    from conftest import TINY_WORLDMODEL
    from rlgan.worldmodel import WorldModel, train_worldmodel
    from rlgan.worldmodel.run import load_progress

    train_worldmodel(tiny_dataset, tmp_path, TINY_WORLDMODEL, progress=False)
    (tmp_path / "checkpoint").rename(tmp_path / ".checkpoint.old")  # the first rename of a swap
    assert load_progress(tmp_path)["step"] == 2
    train_worldmodel(tiny_dataset, tmp_path, {**TINY_WORLDMODEL, "steps": 4}, resume=True,
                     progress=False)
    assert load_progress(tmp_path)["step"] == 4 and not (tmp_path / ".checkpoint.old").exists()
    WorldModel.load(tmp_path, "cpu")


def test_temporary_files_of_a_killed_writer_are_ignored_and_cleared(tmp_path):
    from rlgan.io import DirectoryLock, written_entries
    from rlgan.worldmodel.run import RUN_FILE

    leftover = tmp_path / ".run.tmp.k1ll3d.json"
    leftover.write_text('{"half": ')
    assert written_entries(tmp_path) == []  # so a fresh run may start here
    with DirectoryLock(tmp_path):
        assert not leftover.exists()
    assert not (tmp_path / RUN_FILE).exists()


def test_a_safety_run_stopped_before_its_config_is_trained_again_with_overwrite(tiny_dataset,
                                                                                tmp_path):
    from rlgan.safety.run import CONFIG_FILE, WEIGHTS_FILE
    from rlgan.safety.training import ClassifierConfig, train_classifier

    config = ClassifierConfig(steps=2, batch_size=4, device="cpu")
    train_classifier(tiny_dataset, tmp_path, config, progress=False)
    (tmp_path / CONFIG_FILE).unlink()  # killed between the weights and config.json
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        train_classifier(tiny_dataset, tmp_path, config, progress=False)
    train_classifier(tiny_dataset, tmp_path, config, overwrite=True, progress=False)
    assert (tmp_path / CONFIG_FILE).is_file() and (tmp_path / WEIGHTS_FILE).is_file()
