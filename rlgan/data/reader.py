"""One interface over both on-disk dataset formats: :func:`open_dataset` and :class:`DatasetReader`.

- ``rlgan-transitions`` (:mod:`rlgan.data.format`, ``rlgan record``): whole episodes, the one
  recorded action of every step (:class:`TransitionsReader`);
- ``rlgan-outcomes`` (:mod:`rlgan.data.outcomes`, ``rlgan safety collect``): chosen states, the
  true outcome of every action from each (:class:`OutcomesReader`).

Code that reads data of either kind opens it with :func:`open_dataset`, which detects the
format, and asks the reader; the format is told apart in this module only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from rlgan.data import format as transitions_format
from rlgan.data import outcomes as outcomes_format
from rlgan.data.format import DatasetError, read_format_metadata
from rlgan.data.outcomes import OutcomeTransitions, load_outcomes
from rlgan.data.torch_dataset import TransitionDataset, split_episode_ids
from rlgan.io import read_json

#: The transitions of a dataset as a PyTorch ``Dataset``: items are dicts with ``frames`` uint8
#: ``(history, C, H, W)``, ``next_frame`` uint8 ``(C, H, W)``, ``action`` and ``unsafe``.
Transitions = TransitionDataset | OutcomeTransitions


@runtime_checkable
class DatasetReader(Protocol):
    """A dataset directory of one format, its metadata checked.

    Attributes:
        root: the dataset directory.
        metadata: its checked ``metadata.json``; every format has ``env_id``, ``env_kwargs``,
            ``obs_shape`` (H, W, C), ``n_actions`` and ``shards`` (each with its ``sha256``).
        every_action: True when the data holds chosen states with the outcome of every action
            from each (no whole episodes), False for whole episodes with the one action taken
            at each step.
    """

    root: Path
    metadata: dict[str, Any]
    every_action: ClassVar[bool]

    @property
    def seed(self) -> int:
        """The reset seed of the first episode (episode ``e`` was reset with ``seed + e``)."""
        ...

    def split_episodes(self, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        """(train, held-out) episode lists, reproducibly under ``seed``; the held-out part has
        at least one episode when there are two or more."""
        ...

    def transitions(self, history: int = 1, episodes: Sequence[int] | None = None,
                    shards: Sequence[int] | None = None) -> Transitions:
        """The transitions of ``episodes`` and ``shards`` (all when None), each item with the
        ``history`` frames up to its step.

        Raises:
            DatasetError: a shard missing or corrupt, or nothing selected.
        """
        ...

    def action_outcomes(self, dataset: Transitions, count: int,
                        env_kwargs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` states spread evenly over ``dataset`` (from :meth:`transitions`) and
        the true next frame of every action from each.

        Returns:
            ``(items, next_frames)``: int64 ``(n,)`` items of ``dataset`` (for each state, an
            item whose ``frames`` are that state's) and uint8 ``(n, A, H, W, C)`` frames t+1.

        Raises:
            ValueError: recorded transitions that do not replay in ``env_kwargs``.
        """
        ...


def evenly_spaced(n_items: int, count: int) -> np.ndarray:
    """Up to ``count`` indices spread evenly over ``range(n_items)``."""
    return np.unique(np.linspace(0, n_items - 1, num=min(count, n_items)).round().astype(np.int64))


class _Reader:
    """The directory and checked metadata of one format (``format_name`` at ``format_version``).

    Raises:
        DatasetError: the directory or its metadata is missing, corrupt or of another format.
    """

    format_name: ClassVar[str]
    format_version: ClassVar[int]
    every_action: ClassVar[bool]

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.metadata = read_format_metadata(self.root, self.format_name, self.format_version)

    @property
    def seed(self) -> int:
        """The reset seed of the first episode: the metadata's ``seed``."""
        return int(self.metadata.get("seed", 0))


class TransitionsReader(_Reader):
    """Reads an ``rlgan-transitions`` dataset: whole recorded episodes."""

    format_name = transitions_format.FORMAT_NAME
    format_version = transitions_format.FORMAT_VERSION
    every_action = False

    def split_episodes(self, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        return split_episode_ids(int(self.metadata["episodes"]), val_fraction, seed)

    def transitions(self, history: int = 1, episodes: Sequence[int] | None = None,
                    shards: Sequence[int] | None = None) -> TransitionDataset:
        return TransitionDataset(self.root, history, episodes=episodes, shards=shards)

    def action_outcomes(self, dataset: Transitions, count: int,
                        env_kwargs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        from rlgan.data.replay import replay_every_action

        items = evenly_spaced(len(dataset), count)
        next_frames, _ = replay_every_action(dataset, items, self.metadata["env_id"], env_kwargs,
                                             int(self.metadata["n_actions"]))
        return items, next_frames


class OutcomesReader(_Reader):
    """Reads ``rlgan-outcomes`` records: every action's outcome from chosen states."""

    format_name = outcomes_format.FORMAT_NAME
    format_version = outcomes_format.FORMAT_VERSION
    every_action = True

    @property
    def seed(self) -> int:
        """The reset seed of the first episode: the collection's ``config["seed"]``."""
        return int(self.metadata["config"]["seed"])

    def split_episodes(self, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
        return split_episode_ids(len(self.metadata["shards"]) * int(self.metadata["config"]["num_envs"]),
                                 val_fraction, seed)

    def transitions(self, history: int = 1, episodes: Sequence[int] | None = None,
                    shards: Sequence[int] | None = None) -> OutcomeTransitions:
        return OutcomeTransitions(self.root, history, episodes, shards)

    def action_outcomes(self, dataset: Transitions, count: int,
                        env_kwargs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        records = evenly_spaced(len(dataset.frames), count)
        return records * dataset.n_actions, dataset.next_frames[records]

    def records(self, episodes: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """The records of ``episodes`` (all when None), arrays as in :mod:`rlgan.data.outcomes`.

        Raises:
            DatasetError: no finished shard, or a shard missing, altered or malformed.
        """
        return load_outcomes(self.root, episodes)


#: Format name (``metadata.json``'s ``format``) -> its reader.
READERS: dict[str, type[TransitionsReader] | type[OutcomesReader]] = {
    reader.format_name: reader for reader in (TransitionsReader, OutcomesReader)}


def open_dataset(root: str | Path) -> DatasetReader:
    """The reader of the dataset in ``root``, of whichever format its metadata declares.

    Raises:
        DatasetError: ``root`` is missing, its ``metadata.json`` is missing or corrupt, it
            declares a format this rlgan does not read (the message lists those it reads), or
            the metadata does not fit its format.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory not found: {root}")
    try:
        metadata = read_json(root / transitions_format.METADATA_FILE, what="dataset metadata")
    except (FileNotFoundError, ValueError) as error:
        raise DatasetError(str(error)) from error
    name = metadata.get("format") if isinstance(metadata, dict) else None
    if name not in READERS:
        raise DatasetError(f"{root} is not a dataset this rlgan reads: its metadata.json gives "
                           f"format {name!r}, expected one of {', '.join(map(repr, READERS))}")
    return READERS[name](root)
