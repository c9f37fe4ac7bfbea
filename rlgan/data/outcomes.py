"""Reading and writing ``rlgan-outcomes`` records: states with the true outcome of every action.

Written by ``rlgan safety collect`` (:mod:`rlgan.safety.outcomes`, which says how the states
are chosen and labelled); read by the safety classifier's training and, as transitions (one per
state and action, :class:`OutcomeTransitions`), by the world model's.

Format ``rlgan-outcomes`` version 1 (a directory)::

    DIR/metadata.json     env id and kwargs, agent, frame shape (``obs_shape``), number of
                          actions, the collection settings (``config``: ``num_envs``, ``seed``,
                          ...) and the finished shards (file, records, unsafe events, sha256);
                          shard k holds episodes k*num_envs .. (k+1)*num_envs-1;
                          with ``variants`` (a list of env options, e.g. maps), shard k
                          ran env_kwargs updated with variants[k % len(variants)]
    DIR/shard_00000.npz   arrays of N records:
        frames           (N, history, H, W, C) uint8  frames t-history+1..t, oldest first
                                                      (the first frame repeated at an
                                                      episode's start)
        next_frames      (N, A, H, W, C)       uint8  frame t+1 after each action
        unsafe           (N, A)                bool   each action's outcome
        action           (N,)                  int64  the agent's own action at t
        episode          (N,)                  int64  episode e was reset with seed + e
        steps_to_unsafe  (N,)                  int64  steps from t to the agent's unsafe step
                                                      (1: its action at t was unsafe); -1 for
                                                      states kept at random

Shards and metadata are written to a temporary file and renamed, so an interrupted collection
keeps every finished shard and the metadata lists exactly those.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rlgan.data.format import DatasetError, file_sha256, read_format_metadata, read_npz_shard
from rlgan.io import atomic_path, read_json, write_json, written_entries

FORMAT_NAME = "rlgan-outcomes"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"

#: Field name -> (dtype, number of dimensions) of every array in a shard.
FIELDS: dict[str, tuple[np.dtype, int]] = {
    "frames": (np.dtype(np.uint8), 5),
    "next_frames": (np.dtype(np.uint8), 5),
    "unsafe": (np.dtype(bool), 2),
    "action": (np.dtype(np.int64), 1),
    "episode": (np.dtype(np.int64), 1),
    "steps_to_unsafe": (np.dtype(np.int64), 1),
}


class OutcomeWriter:
    """Write outcome records shard by shard, each atomically.

    Args:
        root: records directory (created).
        settings: JSON metadata of the collection (env, agent, ``obs_shape``, ``n_actions``,
            ``config``); a resumed collection must have the same.
        resume: carry on the records already in ``root``.

    Raises:
        DatasetError: ``root`` holds records and ``resume`` is False, or records made with
            other settings.
    """

    def __init__(self, root: str | Path, settings: dict[str, Any], resume: bool = False) -> None:
        self.root = Path(root)
        if written_entries(self.root) and not is_outcome_dataset(self.root):
            raise DatasetError(f"{self.root} is not empty and holds no outcome records; choose an "
                               "empty or new directory")
        if (self.root / METADATA_FILE).exists():
            if not resume:
                raise DatasetError(f"{self.root} already holds outcome records; pass --resume to "
                                   "carry on or choose another directory")
            self.metadata = load_outcome_metadata(self.root)
            for key, value in settings.items():
                if self.metadata.get(key) != value:
                    raise DatasetError(f"cannot resume {self.root}: {key} is "
                                       f"{self.metadata.get(key)!r} there, {value!r} now")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.metadata = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **settings, "shards": []}
        write_json(self.root / METADATA_FILE, self.metadata)

    @property
    def finished_shards(self) -> int:
        """Shards written so far (a resumed collection starts with those of the earlier run)."""
        return len(self.metadata["shards"])

    def write(self, arrays: dict[str, np.ndarray]) -> None:
        """Write the next shard (arrays as in the format), then list it in the metadata."""
        name = f"shard_{self.finished_shards:05d}.npz"
        with atomic_path(self.root / name) as tmp:
            with open(tmp, "wb") as file:
                np.savez_compressed(file, **arrays)
        self.metadata["shards"].append({
            "file": name, "records": len(arrays["action"]),
            "unsafe_events": int((arrays["steps_to_unsafe"] == 1).sum()),
            "sha256": file_sha256(self.root / name)})
        write_json(self.root / METADATA_FILE, self.metadata)


def is_outcome_dataset(root: str | Path) -> bool:
    """Whether ``root`` holds ``rlgan-outcomes`` records (rather than recorded transitions)."""
    try:
        metadata = read_json(Path(root) / METADATA_FILE)
    except (FileNotFoundError, ValueError):
        return False
    return isinstance(metadata, dict) and metadata.get("format") == FORMAT_NAME


def load_outcome_metadata(root: str | Path) -> dict[str, Any]:
    """Read and check ``root/metadata.json`` of outcome records.

    Raises:
        DatasetError: missing, corrupt or of another format or version.
    """
    return read_format_metadata(root, FORMAT_NAME, FORMAT_VERSION)


def load_outcomes(root: str | Path, episodes: Sequence[int] | None = None,
                  shards: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Every record of ``root`` (of ``episodes`` and ``shards`` only, when given), arrays as in
    the format.

    Raises:
        DatasetError: no finished shard, or a shard missing, altered or malformed.
    """
    parts = list(outcome_shards(root, episodes, shards))
    return {name: np.concatenate([part[name] for part in parts]) for name in FIELDS}


def outcome_shards(root: str | Path, episodes: Sequence[int] | None = None,
                   shards: Sequence[int] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """The records of each shard of ``root`` in turn, as :func:`load_outcomes` gives them all
    at once, so that a reader holds one shard's arrays at a time.

    Raises:
        DatasetError: no finished shard, or a shard missing, altered or malformed.
    """
    root = Path(root)
    entries = load_outcome_metadata(root)["shards"]
    if not entries:
        raise DatasetError(f"{root} has no finished shard of outcome records")
    if shards is not None:
        entries = [entries[i] for i in shards]
    wanted = None if episodes is None else np.asarray(list(episodes), dtype=np.int64)
    for entry in entries:
        arrays = _load_shard(root, entry)
        if wanted is not None:
            chosen = np.isin(arrays["episode"], wanted)
            arrays = {name: values[chosen] for name, values in arrays.items()}
        yield arrays


def _load_shard(root: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    path = root / entry["file"]
    arrays = read_npz_shard(path, entry["sha256"])
    for name, (dtype, ndim) in FIELDS.items():
        value = arrays.get(name)
        if value is None or value.dtype != dtype or value.ndim != ndim or len(value) != entry["records"]:
            raise DatasetError(f"shard {path}: field {name!r} is missing or not {ndim}-d {dtype} "
                               f"of length {entry['records']}")
    return arrays


class OutcomeTransitions(Dataset):
    """Outcome records as transitions, one per record and action, for the world model.

    Item ``i`` is action ``i % A`` from record ``i // A``, a dict like
    :class:`rlgan.data.TransitionDataset`'s: ``frames`` uint8 ``(history, C, H, W)`` (the last
    ``history`` frames kept), ``next_frame`` uint8 ``(C, H, W)``, ``action`` int64 and
    ``unsafe`` bool (0-dim tensors). ``arrays["unsafe"]``, ``arrays["episode"]`` and
    ``indices`` give every item's label and episode, as they do there.

    Args:
        root: the records' directory.
        history: frames per item, the newest last.
        episodes: keep only these episode indices (for held-out splits), or all.
        shards: keep only these shard indices (e.g. one rank's part under DDP), or all.

    Raises:
        DatasetError: bad records, none selected, or fewer frames kept than ``history``.
    """

    def __init__(self, root: str | Path, history: int = 1, episodes: Sequence[int] | None = None,
                 shards: Sequence[int] | None = None) -> None:
        records = load_outcomes(root, episodes, shards)
        if len(records["action"]) == 0:
            raise DatasetError(f"no outcome records selected from {root}")
        if records["frames"].shape[1] < history:
            raise DatasetError(f"the outcome records in {root} keep {records['frames'].shape[1]} "
                               f"frame(s) per state, {history} are needed; collect with --history {history}")
        self.frames = records["frames"][:, -history:]
        self.next_frames = records["next_frames"]
        self.n_actions = self.next_frames.shape[1]
        self.arrays = {"unsafe": records["unsafe"].reshape(-1),
                       "episode": np.repeat(records["episode"], self.n_actions)}
        self.indices = np.arange(len(self.arrays["unsafe"]))

    def episode_ids(self) -> np.ndarray:
        """Sorted unique episode indices of the records."""
        return np.unique(self.arrays["episode"])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        record, action = divmod(int(self.indices[item]), self.n_actions)
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(self.frames[record].transpose(0, 3, 1, 2))),
            "next_frame": torch.from_numpy(np.ascontiguousarray(
                self.next_frames[record, action].transpose(2, 0, 1))),
            "action": torch.tensor(action, dtype=torch.int64),
            "unsafe": torch.as_tensor(self.arrays["unsafe"][item]),
        }
