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
from rlgan.worldmodel.rollouts import recorded_steps, steps_ahead
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
        unroll: recorded steps per drawn sample (the world model's ``unroll``): a sample is a
            row that begins that many consecutive steps of its episode.
    """

    dataset: Transitions
    rows: np.ndarray
    unroll: int = 1

    @cached_property
    def starts(self) -> np.ndarray:
        """The :attr:`rows` that begin :attr:`unroll` consecutive recorded steps (found once)."""
        if self.unroll == 1:
            return self.rows
        steps, _ = steps_ahead(self.dataset, self.rows, self.unroll)
        return self.rows[steps == self.unroll]

    @cached_property
    def unsafe_rows(self) -> np.ndarray:
        """The :attr:`starts` whose steps hold a transition recorded as unsafe (found once)."""
        unsafe = recorded_steps(self.dataset, self.starts, self.unroll, "unsafe")
        return self.starts[unsafe.any(axis=1)]

    def draw(self, rng: np.random.Generator, batch_size: int, unsafe_fraction: float = 0.0) -> np.ndarray:
        """Starts of one batch: ``round(batch_size * unsafe_fraction)`` of them drawn from
        :attr:`unsafe_rows` (which must not be empty then; ``train_worldmodel`` checks before it
        starts), the rest from all :attr:`starts`, with replacement."""
        n_unsafe = int(round(batch_size * unsafe_fraction))
        if n_unsafe == 0:
            return rng.choice(self.starts, batch_size)
        return np.concatenate([rng.choice(self.unsafe_rows, n_unsafe),
                               rng.choice(self.starts, batch_size - n_unsafe)])


def rank_data(root: str | Path, history: int, episodes: Sequence[int], rank: int,
              world_size: int, unroll: int = 1) -> RankData:
    """Training transitions of ``rank``: shards ``rank, rank + world_size, ...`` when there
    are at least ``world_size`` shards (of either format) and they hold training episodes, else
    every shard with every ``world_size``-th transition (a distributed sampler); samples of
    ``unroll`` consecutive steps.

    Raises:
        DatasetError: ``unroll`` > 1 on outcome records (single steps), or no episode of
            this rank's data is ``unroll`` steps long.
    """
    if unroll > 1 and open_dataset(root).every_action:
        raise DatasetError(f"unroll={unroll} trains on consecutive recorded steps, but {root} "
                           "holds outcome records (single steps from chosen states); use "
                           "recorded episodes (rlgan record) or unroll=1")
    part = _rank_rows(root, history, episodes, rank, world_size, unroll)
    if len(part.starts) == 0:
        raise DatasetError(f"no training episode of {root} has {unroll} consecutive steps for "
                           f"unroll={unroll}")
    return part


def _rank_rows(root: str | Path, history: int, episodes: Sequence[int], rank: int,
               world_size: int, unroll: int) -> RankData:
    reader = open_dataset(root)
    n_shards = len(reader.metadata["shards"])
    if world_size > 1 and n_shards >= world_size:
        try:
            dataset = reader.transitions(history, episodes, shards=range(rank, n_shards, world_size))
            return RankData(dataset, np.arange(len(dataset)), unroll)
        except DatasetError:
            pass  # this rank's shards hold only held-out episodes: fall back to striding
    dataset = reader.transitions(history, episodes)
    rows = np.arange(rank, len(dataset), world_size)
    if len(rows) == 0:
        raise DatasetError(f"dataset {root} has {len(dataset)} training transitions, too few "
                           f"for {world_size} processes")
    return RankData(dataset, rows, unroll)


def collate(dataset: Transitions, indices: Sequence[int], device: torch.device,
            unroll: int = 1) -> dict[str, torch.Tensor]:
    """Items ``indices`` of ``dataset`` as a batch on ``device``; with ``unroll`` > 1, also the
    ``unroll`` recorded steps from each (items ``i .. i + unroll - 1``, which must be
    consecutive steps of one episode: :attr:`RankData.starts`).

    Returns:
        ``frames`` float ``(B, history*C, H, W)`` and ``next_frame`` float ``(B, C, H, W)`` in
        [-1, 1], ``action`` int64 ``(B,)``; with ``unroll`` > 1, ``next_frames`` float
        ``(B, unroll, C, H, W)`` (frames t+1 .. t+unroll) and ``actions`` int64
        ``(B, unroll)`` (actions t .. t+unroll-1).
    """
    items = default_collate([dataset[int(i)] for i in indices])
    batch = {"frames": stack_history(to_unit(items["frames"].to(device))),
             "next_frame": to_unit(items["next_frame"].to(device)),
             "action": items["action"].to(device)}
    if unroll > 1:
        items = np.asarray(indices, dtype=np.int64)
        next_frames = torch.from_numpy(recorded_steps(dataset, items, unroll, "next_obs"))
        batch["next_frames"] = to_unit(next_frames.to(device).permute(0, 1, 4, 2, 3))
        batch["actions"] = torch.from_numpy(
            recorded_steps(dataset, items, unroll, "action").astype(np.int64)).to(device)
    return batch


def batch_steps(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The recorded steps of a :func:`collate` batch, unrolled or not: frames t+1..t+n float
    ``(B, n, C, H, W)`` and actions t..t+n-1 int64 ``(B, n)`` (n = 1 unless unrolled)."""
    return (batch.get("next_frames", batch["next_frame"][:, None]),
            batch.get("actions", batch["action"][:, None]))
