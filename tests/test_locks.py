"""One writer per directory: every writer of a run, dataset or records directory refuses to
start while another process holds the directory's lock, and names that process."""

from __future__ import annotations

import os

import pytest

from rlgan.io import DirectoryBusyError, DirectoryLock, written_entries
from conftest import TINY_DRIVING, TINY_WORLDMODEL


def train_agent(out, data):
    from rlgan.agents.training import AgentConfig, train

    train(out, AgentConfig(algo="qlearning", env_id="FrozenLake-v1", steps=10, eval_freq=10,
                           eval_episodes=1), progress=False)


def train_world_model(out, data):
    from rlgan.worldmodel import train_worldmodel

    train_worldmodel(data, out, TINY_WORLDMODEL, progress=False)


def collect(out, data):
    from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes

    collect_outcomes("rlgan/Driving-v0", TINY_DRIVING, "scripted", out,
                     OutcomeConfig(episodes=1, num_envs=1), progress=False)


def train_safety(out, data):
    from rlgan.safety.training import ClassifierConfig, train_classifier

    train_classifier(data, out, ClassifierConfig(steps=2, batch_size=4, device="cpu"), progress=False)


def record_dataset(out, data):
    from conftest import record_tiny_driving

    record_tiny_driving(out, steps=5)


@pytest.mark.parametrize("write", [train_agent, train_world_model, collect, train_safety,
                                   record_dataset])
def test_a_second_writer_is_refused_naming_the_holder(write, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    with DirectoryLock(out):
        with pytest.raises(DirectoryBusyError, match=f"process {os.getpid()}"):
            write(out, tiny_dataset)
        assert written_entries(out) == []
    write(out, tiny_dataset)  # once the holder is gone, the writer goes ahead
    assert written_entries(out)


def test_a_directory_holding_only_the_lock_counts_as_empty(tiny_dataset, tmp_path):
    from rlgan.worldmodel.run import RUN_FILE

    out = tmp_path / "run"
    out.mkdir()
    with DirectoryLock(out):  # as a writer killed before writing anything leaves it
        pass
    assert [path.name for path in out.iterdir()] == [DirectoryLock.FILE]
    train_world_model(out, tiny_dataset)
    assert (out / RUN_FILE).is_file()


def test_a_refused_writer_leaves_no_directory_behind(tmp_path):
    from rlgan.agents.training import train

    with pytest.raises(FileNotFoundError, match="run config not found"):
        train(tmp_path / "missing", resume=True, progress=False)
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_under_torchrun_every_rank_refuses_a_busy_run_and_none_hangs(tiny_dataset, tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", "-m", "rlgan", "worldmodel", "train", "--data", str(tiny_dataset),
               "--run-dir", str(run), "--steps", "2", "--batch-size", "4", "--device", "cpu",
               "--set", "base_width=8", "--no-progress"]
    with DirectoryLock(run):
        done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              capture_output=True, text=True, timeout=300)
        assert written_entries(run) == []
    assert done.returncode != 0  # torchrun's own code when its workers fail
    refusal = f"is being written by process {os.getpid()}"
    assert done.stderr.count(refusal) == 2, done.stderr  # both ranks (lines may interleave)
