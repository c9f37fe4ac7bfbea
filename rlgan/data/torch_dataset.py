"""A PyTorch ``Dataset`` over a recorded ``rlgan-transitions`` directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rlgan.data.format import FIELDS, DatasetError, load_metadata, load_shard


class TransitionDataset(Dataset):
    """Transitions as tensors, with a history of the ``history`` most recent frames.

    Item ``i`` is a dict:

    - ``frames``: uint8 ``(history, C, H, W)``, frames t-history+1 .. t (repeating the episode's
      first frame before its start),
    - ``next_frame``: uint8 ``(C, H, W)``, frame t+1,
    - ``action`` int64, ``reward`` float32, ``unsafe``/``terminated``/``truncated`` bool,
      ``episode``/``step`` int64 (0-dim tensors).

    Args:
        root: dataset directory.
        history: number of frames up to t (1 = one frame, as in SAD-GAN).
        episodes: keep only these episode indices (for held-out splits), or all.
        shards: keep only these shard indices (e.g. one rank's part under DDP), or all.

    Raises:
        DatasetError: missing/corrupt dataset or shard, or no transitions selected.
    """

    def __init__(self, root: str | Path, history: int = 1, episodes: Sequence[int] | None = None,
                 shards: Sequence[int] | None = None) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.root = Path(root)
        self.history = history
        self.metadata = load_metadata(self.root)
        entries = self.metadata["shards"]
        if not entries:
            raise DatasetError(f"dataset {self.root} has no finished shards (empty recording)")
        if shards is not None:
            entries = [entries[i] for i in shards]
        parts = [load_shard(self.root, entry) for entry in entries]
        arrays = {name: np.concatenate([part[name] for part in parts]) for name in FIELDS}
        order = np.lexsort((arrays["step"], arrays["episode"]))
        self.arrays = {name: array[order] for name, array in arrays.items()}
        keep = np.ones(len(order), dtype=bool)
        if episodes is not None:
            keep = np.isin(self.arrays["episode"], np.asarray(list(episodes), dtype=np.int64))
        self.indices = np.flatnonzero(keep)
        if len(self.indices) == 0:
            raise DatasetError(f"no transitions selected from {self.root}")
        self._history_index = self._build_history_index()

    def _build_history_index(self) -> np.ndarray:
        """(N, history) row indices of frames t-history+1..t, clamped to the episode start."""
        episode, step = self.arrays["episode"], self.arrays["step"]
        n = len(episode)
        rows = np.arange(n)[:, None] - np.arange(self.history - 1, -1, -1)[None, :]
        rows = np.clip(rows, 0, n - 1)
        same_episode = (episode[rows] == episode[:, None]) & (step[rows] <= step[:, None])
        first_of_episode = np.searchsorted(episode, episode, side="left")
        return np.where(same_episode, rows, first_of_episode[:, None])

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """Recorded frame shape ``(H, W, C)``."""
        return tuple(self.arrays["obs"].shape[1:])

    @property
    def n_actions(self) -> int:
        """Size of the recorded env's ``Discrete`` action space."""
        return int(self.metadata["n_actions"])

    def episode_ids(self) -> np.ndarray:
        """Sorted unique episode indices of the selected transitions."""
        return np.unique(self.arrays["episode"][self.indices])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        row = self.indices[item]
        frames = self.arrays["obs"][self._history_index[row]]
        sample = {
            "frames": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
            "next_frame": torch.from_numpy(
                np.ascontiguousarray(self.arrays["next_obs"][row].transpose(2, 0, 1))),
        }
        for name in ("action", "reward", "unsafe", "terminated", "truncated", "episode", "step"):
            sample[name] = torch.as_tensor(self.arrays[name][row])
        return sample


def split_episodes(root: str | Path, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split a dataset's episodes into (train, held-out) lists, reproducibly under ``seed``.

    The held-out part has at least one episode when the dataset has two or more.
    """
    return split_episode_ids(int(load_metadata(root)["episodes"]), val_fraction, seed)


def split_episode_ids(n_episodes: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split episodes ``0 .. n_episodes - 1`` into (train, held-out) lists, reproducibly under
    ``seed``; the held-out part has at least one episode when there are two or more."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    episodes = np.arange(n_episodes)
    rng = np.random.default_rng(seed)
    rng.shuffle(episodes)
    n_val = int(round(len(episodes) * val_fraction))
    if val_fraction > 0 and n_val == 0 and len(episodes) >= 2:
        n_val = 1
    return sorted(episodes[n_val:].tolist()), sorted(episodes[:n_val].tolist())
