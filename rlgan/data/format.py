"""Reading and writing the ``rlgan-transitions`` on-disk format (see :mod:`rlgan.data`)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rlgan.io import DirectoryLock, atomic_path, read_json, write_json, written_entries

FORMAT_NAME = "rlgan-transitions"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"

#: Field name -> dtype of every array in a shard.
FIELDS: dict[str, np.dtype] = {
    "obs": np.dtype(np.uint8),
    "action": np.dtype(np.int64),
    "reward": np.dtype(np.float32),
    "next_obs": np.dtype(np.uint8),
    "unsafe": np.dtype(bool),
    "terminated": np.dtype(bool),
    "truncated": np.dtype(bool),
    "episode": np.dtype(np.int64),
    "step": np.dtype(np.int64),
}


class DatasetError(ValueError):
    """A dataset directory is missing, empty, corrupt or does not match what was asked for."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TransitionWriter:
    """Buffer transitions and write them as atomic shards of ``shard_size`` transitions.

    The writer holds ``root``'s :class:`rlgan.io.DirectoryLock` from its creation until
    :meth:`close`, so one process at a time writes a dataset.

    Args:
        root: dataset directory (created).
        metadata: env id, env kwargs, seed, policy, ``obs_shape``, ``n_actions``, ... (JSON).
        shard_size: transitions per shard.
        resume: continue a dataset already in ``root`` (its metadata must match).

    Raises:
        DatasetError: ``root`` already holds a dataset and ``resume`` is False, the existing
            dataset was recorded with different settings, or ``root`` holds something else.
        rlgan.io.DirectoryBusyError: another process is writing ``root``.
    """

    def __init__(self, root: str | Path, metadata: dict[str, Any], shard_size: int = 1000,
                 resume: bool = False) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.root = Path(root)
        self.shard_size = shard_size
        self._buffer: dict[str, list] = {name: [] for name in FIELDS}
        self._lock = DirectoryLock(self.root).acquire()
        try:
            self._open(metadata, resume)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, metadata: dict[str, Any], resume: bool) -> None:
        existing = self.root / METADATA_FILE
        if not existing.exists() and written_entries(self.root):
            raise DatasetError(f"{self.root} is not empty and holds no dataset; choose an empty "
                               "or new directory")
        if existing.exists():
            if not resume:
                raise DatasetError(
                    f"{self.root} already holds a dataset; pass resume=True (--resume) to add to "
                    "it or choose another directory"
                )
            self.metadata = load_metadata(self.root)
            for key in ("env_id", "env_kwargs", "obs_shape", "n_actions"):
                if self.metadata.get(key) != metadata.get(key):
                    raise DatasetError(
                        f"cannot resume {self.root}: {key} is {self.metadata.get(key)!r} there, "
                        f"{metadata.get(key)!r} now"
                    )
            self.metadata["recordings"] = [*recordings_of(self.metadata),
                                           recording_entry(metadata, self.next_episode)]
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.metadata = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **metadata,
                             "recordings": [recording_entry(metadata, 0)],
                             "shards": [], "transitions": 0, "episodes": 0}
        write_json(existing, self.metadata)

    @property
    def next_episode(self) -> int:
        """Index of the first episode not yet in any finished shard."""
        return int(self.metadata["episodes"])

    @property
    def transitions(self) -> int:
        """Transitions written to finished shards plus those buffered."""
        return int(self.metadata["transitions"]) + len(self._buffer["action"])

    def add(self, **transition: Any) -> None:
        """Append one transition (every field of :data:`FIELDS` as a keyword)."""
        missing = set(FIELDS) - set(transition)
        if missing:
            raise KeyError(f"transition is missing fields: {sorted(missing)}")
        for name in FIELDS:
            self._buffer[name].append(transition[name])
        if len(self._buffer["action"]) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write buffered transitions as a new shard and list it in the metadata."""
        count = len(self._buffer["action"])
        if count == 0:
            return
        arrays = {name: np.asarray(values, dtype=FIELDS[name])
                  for name, values in self._buffer.items()}
        name = f"shard_{len(self.metadata['shards']):05d}.npz"
        with atomic_path(self.root / name) as tmp:
            with open(tmp, "wb") as file:
                np.savez_compressed(file, **arrays)
        self.metadata["shards"].append(
            {"file": name, "transitions": count, "sha256": file_sha256(self.root / name)}
        )
        self.metadata["transitions"] += count
        self.metadata["episodes"] = max(self.metadata["episodes"], int(arrays["episode"].max()) + 1)
        write_json(self.root / METADATA_FILE, self.metadata)
        self._buffer = {field: [] for field in FIELDS}

    def close(self) -> None:
        """Flush the last partial shard and release the directory."""
        try:
            self.flush()
        finally:
            self._lock.release()


def recording_entry(metadata: dict[str, Any], first_episode: int) -> dict[str, Any]:
    """One recording session: its first episode, reset seed, policy and epsilon."""
    return {"first_episode": int(first_episode), "seed": int(metadata.get("seed", 0)),
            "policy": metadata.get("policy"), "epsilon": metadata.get("epsilon")}


def recordings_of(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The recording sessions of a dataset, oldest first (one for datasets written before
    sessions were listed)."""
    return list(metadata.get("recordings") or [recording_entry(metadata, 0)])


def episode_seed(metadata: dict[str, Any], episode: int) -> int:
    """The seed episode ``episode`` was reset with: ``seed + episode``, where ``seed`` is that
    of the recording session (``rlgan record``, ``--resume`` starts a new one) it belongs to."""
    session = [entry for entry in recordings_of(metadata) if entry["first_episode"] <= episode][-1]
    return int(session["seed"]) + int(episode)


def load_metadata(root: str | Path) -> dict[str, Any]:
    """Read and check ``root/metadata.json`` of an ``rlgan-transitions`` dataset.

    Raises:
        DatasetError: the directory or metadata is missing, corrupt or of another format.
    """
    return read_format_metadata(root, FORMAT_NAME, FORMAT_VERSION)


def read_format_metadata(root: str | Path, format_name: str, version: int) -> dict[str, Any]:
    """Read ``root/metadata.json`` and check that it declares ``format_name`` at ``version``.

    Raises:
        DatasetError: the directory or metadata is missing, corrupt or of another format.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory not found: {root}")
    try:
        metadata = read_json(root / METADATA_FILE, what="dataset metadata")
    except (FileNotFoundError, ValueError) as error:
        raise DatasetError(str(error)) from error
    if not isinstance(metadata, dict) or metadata.get("format") != format_name:
        raise DatasetError(f"{root} is not an {format_name} dataset (metadata.json has no "
                           f"format {format_name!r})")
    if metadata.get("version") != version:
        raise DatasetError(f"{root}: unsupported format version {metadata.get('version')!r}, "
                           f"this rlgan reads version {version}")
    return metadata


def read_npz_shard(path: Path, sha256: str | None) -> dict[str, np.ndarray]:
    """The arrays of the shard file ``path``, whose bytes must hash to ``sha256`` (unless None).

    Raises:
        DatasetError: the file is missing, altered or not a readable ``.npz``.
    """
    if not path.is_file():
        raise DatasetError(f"shard {path} listed in metadata.json is missing")
    if sha256 is not None and file_sha256(path) != sha256:
        raise DatasetError(f"shard {path} is corrupt: its sha256 does not match metadata.json")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DatasetError(f"shard {path} is corrupt: {error}") from error


def load_shard(root: str | Path, entry: dict[str, Any], verify: bool = True) -> dict[str, np.ndarray]:
    """Load one shard listed in the metadata; check its checksum, fields, dtypes and length.

    Raises:
        DatasetError: the shard file is missing, truncated, altered or malformed.
    """
    path = Path(root) / entry["file"]
    arrays = read_npz_shard(path, entry["sha256"] if verify else None)
    missing = set(FIELDS) - set(arrays)
    if missing:
        raise DatasetError(f"shard {path} lacks fields {sorted(missing)}")
    for name, dtype in FIELDS.items():
        if arrays[name].dtype != dtype or len(arrays[name]) != entry["transitions"]:
            raise DatasetError(f"shard {path}: field {name!r} has dtype {arrays[name].dtype} and "
                               f"length {len(arrays[name])}, expected {dtype} and "
                               f"{entry['transitions']}")
    return arrays
