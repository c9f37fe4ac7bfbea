"""Headless pygame for every test; ``tests/`` on the path for the toy envs; shared fixtures."""

import os
import sys
from pathlib import Path

import numpy as np
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


# -- dataset writers shared by the test files ----------------------------------------------------
def record_dataset(path: Path, env, env_id: str, env_kwargs: dict, policy="random", steps: int = 100,
                   seed: int = 0, epsilon: float = 0.0, shard_size: int = 1000, resume: bool = False):
    """Record ``steps`` steps of ``policy`` in ``env`` into the ``rlgan-transitions`` dataset
    ``path`` (episode e reset with ``seed + e``, continuing the episodes of a ``resume``d one).

    ``policy`` is a name of :func:`rlgan.data.record.make_policy` (with ``epsilon``) or a
    function ``observation -> action``. Returns the :class:`rlgan.data.record.RecordSummary`.
    """
    from rlgan.data import TransitionWriter
    from rlgan.data.record import make_policy, record

    named = isinstance(policy, str)
    metadata = {"env_id": env_id, "env_kwargs": env_kwargs, "seed": seed,
                "policy": policy if named else "custom", "epsilon": epsilon,
                "obs_shape": list(env.observation_space.shape), "obs_dtype": "uint8",
                "n_actions": int(env.action_space.n)}
    act = make_policy(policy, env, seed=seed, epsilon=epsilon) if named else policy
    writer = TransitionWriter(path, metadata, shard_size=shard_size, resume=resume)
    try:
        return record(env, act, writer, steps, seed=seed, first_episode=writer.next_episode,
                      progress=False)
    finally:
        writer.close()


def write_transitions(path: Path, metadata: dict, episodes: int, steps: int, transition,
                      shard_size: int = 1000) -> Path:
    """A dataset of made-up transitions: ``transition(episode, step)`` returns the fields of
    :data:`rlgan.data.format.FIELDS` but ``episode`` and ``step`` for each step of each episode."""
    from rlgan.data import TransitionWriter

    writer = TransitionWriter(path, metadata, shard_size=shard_size)
    for episode in range(episodes):
        for step in range(steps):
            writer.add(**transition(episode, step), episode=episode, step=step)
    writer.close()
    return path


def square_frame(column: int, size: int = 16) -> np.ndarray:
    """A ``size`` x ``size`` black RGB frame with a 4x4 orange square at ``column``."""
    frame = np.zeros((size, size, 3), np.uint8)
    frame[6:10, column:column + 4] = (255, 200, 40)
    return frame


def write_square_dataset(path: Path, episodes: int = 6, steps: int = 20, size: int = 16,
                         env_id: str = "toy/Square-v0", shard_size: int = 40,
                         unsafe_every: int = 0) -> Path:
    """A square that actions 0/1/2 move 2 pixels left/right/not at all, one shard per 40;
    with ``unsafe_every`` every such step of an episode is labelled unsafe."""
    rng = np.random.default_rng(0)
    metadata = {"env_id": env_id, "env_kwargs": {}, "seed": 0, "policy": "random",
                "obs_shape": [size, size, 3], "n_actions": 3}
    column = 0

    def transition(episode: int, step: int) -> dict:
        nonlocal column
        if step == 0:
            column = int(rng.integers(2, size - 6))
        action = int(rng.integers(3))
        old, column = column, int(np.clip(column + (-2, 2, 0)[action], 0, size - 4))
        return {"obs": square_frame(old, size), "action": action, "reward": 0.0,
                "next_obs": square_frame(column, size),
                "unsafe": bool(unsafe_every) and step % unsafe_every == unsafe_every - 1,
                "terminated": False, "truncated": step == steps - 1}

    return write_transitions(path, metadata, episodes, steps, transition, shard_size)


def write_noise_dataset(path: Path, episodes: int = 4, steps: int = 6, unsafe_end: bool = True) -> Path:
    """Made-up 64x64 'driving' transitions of random pixels, frame t+1 equal to frame t; the
    last step of each episode terminates it, unsafe when ``unsafe_end``."""
    rng = np.random.default_rng(0)
    metadata = {"env_id": "rlgan/Driving-v0", "env_kwargs": {}, "seed": 0, "policy": "random",
                "epsilon": 0.0, "obs_shape": [64, 64, 3], "obs_dtype": "uint8", "n_actions": 3}

    def transition(episode: int, step: int) -> dict:
        frame = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        return {"obs": frame, "action": int(rng.integers(3)), "reward": 1.0, "next_obs": frame,
                "unsafe": unsafe_end and step == steps - 1, "terminated": step == steps - 1,
                "truncated": False}

    return write_transitions(path, metadata, episodes, steps, transition)


def record_tiny_driving(path: Path, steps: int = 160, env_kwargs: dict | None = None,
                        seed: int = 0) -> Path:
    """A dataset of ``steps`` random driving transitions (shards of 40)."""
    from rlgan.make import make_env

    kwargs = dict(TINY_DRIVING if env_kwargs is None else env_kwargs)
    env = make_env("rlgan/Driving-v0", **kwargs)
    record_dataset(path, env, "rlgan/Driving-v0", kwargs, "random", steps, seed=seed, shard_size=40)
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
