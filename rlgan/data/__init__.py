"""Recorded transitions on disk (the SAD-GAN "keylogger" data) and their PyTorch loader.

Format ``rlgan-transitions`` version 1 (a directory)::

    DIR/metadata.json     env id and kwargs, seed, policy, observation shape/dtype, number of
                          actions, the recording sessions (``recordings``: first episode, seed,
                          policy, epsilon of each ``rlgan record`` run; ``--resume`` adds one)
                          and the list of finished shards (file, transitions, sha256)
    DIR/shard_00000.npz   arrays of one shard, all of length N:
        obs        (N, H, W, C) uint8   frame t
        action     (N,)         int64   action taken at t
        reward     (N,)         float32
        next_obs   (N, H, W, C) uint8   frame t+1 (the true last frame on episode end)
        unsafe     (N,)         bool    the env's ground-truth ``info["unsafe"]`` after the step
        terminated (N,)         bool
        truncated  (N,)         bool
        episode    (N,)         int64   episode index; episode e was reset with ``seed + e``
                                        (``seed`` of e's recording session: :func:`episode_seed`)
        step       (N,)         int64   step index inside the episode

Shards and metadata are written to a temporary file and renamed, so an interrupted recording
keeps every finished shard and the metadata always lists exactly the finished ones. Because
episode ``e`` starts from ``reset(seed=episode_seed(metadata, e))`` and the envs are
deterministic, any recorded state can be rebuilt by replaying the episode's actions
(:mod:`rlgan.data.replay`).

Code that reads either this format or outcome records (:mod:`rlgan.data.outcomes`) opens them
with :func:`rlgan.data.reader.open_dataset`, which detects the format.
"""

from rlgan.data.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    DatasetError,
    TransitionWriter,
    episode_seed,
    load_metadata,
    load_shard,
)
from rlgan.data.torch_dataset import TransitionDataset, split_episodes

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetError",
    "TransitionDataset",
    "TransitionWriter",
    "episode_seed",
    "load_metadata",
    "load_shard",
    "split_episodes",
]
