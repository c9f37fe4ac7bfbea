"""The recorded transitions a world model trains and is evaluated on.

Reads recorded transitions or outcome records of every action from chosen states through
:func:`rlgan.data.reader.open_dataset`: checks that frames suit the networks, splits episodes,
gives each ``torchrun`` rank its own shards, and turns items into batches of float tensors in
[-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from rlgan.data import DatasetError
from rlgan.data.reader import Transitions, open_dataset
from rlgan.worldmodel.frames import stack_history, to_unit
from rlgan.worldmodel.run import DataInfo


def dataset_identity(root: str | Path) -> dict[str, Any]:
    """``env_id``, ``env_kwargs``, ``frame_shape`` (H, W, C), ``n_actions``, ``seed`` and shard
    checksums of a recorded dataset, checked to suit the world model.

    Raises:
        DatasetError: missing, empty or corrupt dataset, or frames the networks cannot take
            (not ``(H, W, C)`` images with H and W multiples of 16).
    """
    reader = open_dataset(root)
    metadata = reader.metadata
    if not metadata.get("shards"):
        raise DatasetError(f"dataset {root} has no finished shards (empty recording)")
    shape = tuple(int(n) for n in metadata.get("obs_shape", ()))
    if len(shape) != 3 or shape[0] % 16 or shape[1] % 16 or shape[2] not in (1, 3):
        raise DatasetError(
            f"dataset {root} has observations of shape {shape}; the world model needs (H, W, C) "
            "frames with H and W multiples of 16 and 1 or 3 channels (record with a frame size "
            "such as obs_height=64 obs_width=64)")
    return {"env_id": metadata["env_id"], "env_kwargs": dict(metadata.get("env_kwargs", {})),
            "frame_shape": shape, "n_actions": int(metadata["n_actions"]),
            "seed": reader.seed,
            "shards": tuple(entry["sha256"] for entry in metadata["shards"])}


def data_info(root: str | Path, val_fraction: float, seed: int) -> DataInfo:
    """The :class:`DataInfo` of a dataset with its episodes split under ``seed``."""
    identity = dataset_identity(root)
    train, val = open_dataset(root).split_episodes(val_fraction, seed)
    return DataInfo(env_id=identity["env_id"], env_kwargs=identity["env_kwargs"],
                    frame_shape=identity["frame_shape"], n_actions=identity["n_actions"],
                    dataset=str(Path(root).resolve()), dataset_seed=identity["seed"],
                    shards=identity["shards"], train_episodes=tuple(train),
                    val_episodes=tuple(val))


@dataclass
class RankData:
    """The part of the training data one rank samples from.

    Attributes:
        dataset: transitions of the training episodes this rank loaded.
        rows: indices into ``dataset`` this rank draws batches from.
    """

    dataset: Transitions
    rows: np.ndarray

    @cached_property
    def unsafe_rows(self) -> np.ndarray:
        """The :attr:`rows` whose transition was recorded as unsafe (found once)."""
        unsafe = self.dataset.arrays["unsafe"][self.dataset.indices[self.rows]]
        return self.rows[unsafe]

    def draw(self, rng: np.random.Generator, batch_size: int, unsafe_fraction: float = 0.0) -> np.ndarray:
        """Rows of one batch: ``round(batch_size * unsafe_fraction)`` of them drawn from
        :attr:`unsafe_rows` (which must not be empty then; ``train_worldmodel`` checks before it
        starts), the rest from all :attr:`rows`, with replacement."""
        n_unsafe = int(round(batch_size * unsafe_fraction))
        if n_unsafe == 0:
            return rng.choice(self.rows, batch_size)
        return np.concatenate([rng.choice(self.unsafe_rows, n_unsafe),
                               rng.choice(self.rows, batch_size - n_unsafe)])


def rank_data(root: str | Path, history: int, episodes: Sequence[int], rank: int,
              world_size: int) -> RankData:
    """Training transitions of ``rank``: shards ``rank, rank + world_size, ...`` when there
    are at least ``world_size`` shards (of either format) and they hold training episodes, else
    every shard with every ``world_size``-th transition (a distributed sampler)."""
    reader = open_dataset(root)
    n_shards = len(reader.metadata["shards"])
    if world_size > 1 and n_shards >= world_size:
        try:
            dataset = reader.transitions(history, episodes, shards=range(rank, n_shards, world_size))
            return RankData(dataset, np.arange(len(dataset)))
        except DatasetError:
            pass  # this rank's shards hold only held-out episodes: fall back to striding
    dataset = reader.transitions(history, episodes)
    rows = np.arange(rank, len(dataset), world_size)
    if len(rows) == 0:
        raise DatasetError(f"dataset {root} has {len(dataset)} training transitions, too few "
                           f"for {world_size} processes")
    return RankData(dataset, rows)


def collate(dataset: Transitions, indices: Sequence[int],
            device: torch.device) -> dict[str, torch.Tensor]:
    """Items ``indices`` of ``dataset`` as a batch on ``device``.

    Returns:
        ``frames`` float ``(B, history*C, H, W)`` and ``next_frame`` float ``(B, C, H, W)`` in
        [-1, 1], ``action`` int64 ``(B,)``.
    """
    items = default_collate([dataset[int(i)] for i in indices])
    return {"frames": stack_history(to_unit(items["frames"].to(device))),
            "next_frame": to_unit(items["next_frame"].to(device)),
            "action": items["action"].to(device)}
