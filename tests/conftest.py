"""Headless pygame for every test; ``tests/`` on the path for the toy envs; shared fixtures."""

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def one_torch_thread():
    """Small networks run fastest on one thread (and far faster on a busy shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- tiny runs and datasets, built once per session with the library ---------------------------
#: Driving at 32x32, every episode starting in a hazard (so a few steps are unsafe).
TINY_DRIVING = {"obs_height": 32, "obs_width": 32, "max_steps": 30, "hazard_start": 1.0}
TINY_WORLDMODEL = {"steps": 2, "batch_size": 8, "base_width": 8, "log_every": 1,
                   "sample_every": 2, "checkpoint_every": 2, "device": "cpu"}


def record_tiny_driving(path: Path, steps: int = 160, env_kwargs: dict | None = None,
                        seed: int = 0) -> Path:
    """A dataset of ``steps`` random driving transitions (shards of 40)."""
    from rlgan.data import TransitionWriter
    from rlgan.data.record import make_policy, record
    from rlgan.make import make_env

    kwargs = dict(TINY_DRIVING if env_kwargs is None else env_kwargs)
    env = make_env("rlgan/Driving-v0", **kwargs)
    metadata = {"env_id": "rlgan/Driving-v0", "env_kwargs": kwargs, "seed": seed,
                "policy": "random", "epsilon": 0.0, "obs_shape": list(env.observation_space.shape),
                "obs_dtype": "uint8", "n_actions": int(env.action_space.n)}
    writer = TransitionWriter(path, metadata, shard_size=40)
    record(env, make_policy("random", env, seed=seed), writer, steps, seed=seed, progress=False)
    writer.close()
    env.close()
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """160 recorded driving transitions at 32x32 with a few unsafe steps."""
    return record_tiny_driving(tmp_path_factory.mktemp("tiny") / "dataset")


@pytest.fixture(scope="session")
def tiny_dataset_16(tmp_path_factory) -> Path:
    """Driving transitions at another frame size (16x16)."""
    return record_tiny_driving(tmp_path_factory.mktemp("tiny") / "dataset16", steps=40,
                               env_kwargs={**TINY_DRIVING, "obs_height": 16, "obs_width": 16})


@pytest.fixture(scope="session")
def tiny_worldmodel_run(tiny_dataset, tmp_path_factory) -> Path:
    """A world model trained for 2 steps on :func:`tiny_dataset`."""
    from rlgan.worldmodel import train_worldmodel

    run = tmp_path_factory.mktemp("tiny") / "worldmodel"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train_worldmodel(tiny_dataset, run, TINY_WORLDMODEL, progress=False)
    torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def tiny_safety_run(tiny_dataset, tmp_path_factory) -> Path:
    """A safety classifier trained for 3 steps on :func:`tiny_dataset`."""
    from rlgan.safety.training import ClassifierConfig, train_classifier

    run = tmp_path_factory.mktemp("tiny") / "safety"
    train_classifier(tiny_dataset, run, ClassifierConfig(steps=3, batch_size=8, device="cpu"),
                     progress=False)
    return run


@pytest.fixture(scope="session")
def tiny_agent_run(tmp_path_factory) -> Path:
    """A Q-learning run on FrozenLake-v1 (an env other than driving)."""
    from rlgan.agents.training import AgentConfig, train

    run = tmp_path_factory.mktemp("tiny") / "lake"
    train(run, AgentConfig(algo="qlearning", env_id="FrozenLake-v1", steps=50, eval_freq=50,
                           eval_episodes=1), progress=False)
    return run


@pytest.fixture(scope="session")
def tiny_outcomes(tmp_path_factory) -> Path:
    """Outcome records of the scripted driver: one shard of 2 episodes."""
    from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes

    out = tmp_path_factory.mktemp("tiny") / "outcomes"
    collect_outcomes("rlgan/Driving-v0", TINY_DRIVING, "scripted", out,
                     OutcomeConfig(episodes=2, num_envs=2, safe_fraction=0.2, doom_horizon=0),
                     progress=False)
    return out
