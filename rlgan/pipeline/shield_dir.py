"""The directory ``rlgan shield train`` writes, and the shield it holds.

Layout of ``DIR``::

    settings.json      every setting of every stage (rlgan.pipeline.settings)
    progress.json      the finished stages: summary, seconds and SHA-256 of each output file
    records/           outcome records of the agent's near-unsafe states (rlgan safety collect)
    worldmodel/        the world-model run (rlgan worldmodel train)
    classifier/        the safety run (rlgan safety train), naming ../worldmodel
    calibration.json   every (depth, threshold) scored on held-out records
    shield.json        the chosen search depth and threshold (and the best threshold per depth)
    evaluation.json    the agent alone and shielded on fresh episodes
    report.md          all of the above for people

``shield.json``, ``classifier/`` and ``worldmodel/`` are what a shield needs
(:meth:`ShieldDir.load_shield`, ``rlgan shield eval --shield DIR``); every path inside is
relative, so the directory can be moved or bundled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlgan.data.format import file_sha256
from rlgan.io import read_json, write_json


class ShieldDir:
    """Paths and small files of a shield directory (see the module docstring)."""

    PROGRESS = "progress.json"
    CHOICE = "shield.json"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    records = property(lambda self: self.root / "records")
    worldmodel = property(lambda self: self.root / "worldmodel")
    classifier = property(lambda self: self.root / "classifier")
    calibration = property(lambda self: self.root / "calibration.json")
    evaluation = property(lambda self: self.root / "evaluation.json")
    report = property(lambda self: self.root / "report.md")
    choice_file = property(lambda self: self.root / ShieldDir.CHOICE)

    @classmethod
    def holds_shield(cls, path: str | Path) -> bool:
        """Whether ``path`` is a shield directory with a chosen depth and threshold."""
        return (Path(path) / cls.CHOICE).is_file()

    def progress(self) -> dict[str, Any]:
        """The finished stages (``{}`` for a new directory).

        Raises:
            ValueError: ``progress.json`` is corrupt.
        """
        path = self.root / self.PROGRESS
        return read_json(path, "shield progress") if path.is_file() else {}

    def finish_stage(self, stage: str, summary: dict[str, Any], outputs: list[Path],
                     seconds: float) -> None:
        """Record ``stage`` as finished, with the SHA-256 of each of its output files."""
        progress = self.progress()
        progress[stage] = {"summary": summary, "seconds": seconds,
                           "outputs": {str(path.relative_to(self.root)): file_sha256(path)
                                       for path in outputs}}
        write_json(self.root / self.PROGRESS, progress)

    def check_outputs(self, stage: str) -> None:
        """Raise ``ValueError`` when a finished stage's output file is missing or changed."""
        for name, digest in self.progress()[stage]["outputs"].items():
            path = self.root / name
            if not path.is_file():
                raise ValueError(f"{path}, an output of the finished stage {stage!r}, is missing; "
                                 "train again with --overwrite")
            if file_sha256(path) != digest:
                raise ValueError(f"{path}, an output of the finished stage {stage!r}, is corrupt "
                                 "(its SHA-256 changed since it was written); train again with "
                                 "--overwrite")

    def write_choice(self, depth: int, threshold: float, best_threshold: dict[int, float],
                     doom_horizon: int) -> None:
        """Write ``shield.json``: the default search depth and threshold, each depth's own
        threshold, and the doom horizon of the classifier's labels (how many steps past each
        predicted step it looks)."""
        write_json(self.choice_file, {
            "classifier": "classifier", "worldmodel": "worldmodel", "depth": int(depth),
            "threshold": float(threshold),
            "thresholds": {str(key): float(value) for key, value in best_threshold.items()},
            "doom_horizon": int(doom_horizon)})

    def read_choice(self) -> dict[str, Any]:
        """``shield.json`` as written by :meth:`write_choice`.

        Raises:
            FileNotFoundError / ValueError: missing or corrupt.
        """
        choice = read_json(self.choice_file, "shield choice")
        if not isinstance(choice, dict) or not {"depth", "threshold", "thresholds", "doom_horizon"} <= set(choice):
            raise ValueError(f"{self.choice_file} is not a shield choice of rlgan shield train")
        return choice

    def agent_path(self, agent: str) -> str:
        """The agent a shield was made for, as ``settings.json`` names it: ``random``,
        ``scripted``, or a run directory, found as written or, when that does not exist,
        beside the shield directory (a bundle made with ``--agent agent --out shield``)."""
        if agent in ("random", "scripted") or Path(agent).is_dir():
            return agent
        beside = self.root.parent / agent
        return str(beside) if beside.is_dir() else agent

    def lookahead(self, depth: int | None = None) -> int:
        """Steps the learned shield sees ahead at ``depth`` (default: the chosen depth): the
        search's levels plus the doom horizon of its labels. The oracle shield it is compared
        with searches this deep."""
        choice = self.read_choice()
        return (choice["depth"] if depth is None else depth) + choice["doom_horizon"]

    def threshold(self, depth: int | None = None) -> float:
        """The calibrated threshold of a search ``depth`` levels deep (default: the chosen
        depth); a depth that was not calibrated takes the chosen threshold."""
        choice = self.read_choice()
        depth = choice["depth"] if depth is None else depth
        return float(choice["thresholds"].get(str(depth), choice["threshold"]))

    def load_search(self, depth: int | None = None, device: str | torch.device = "cpu",
                    compiled: bool = False) -> Any:
        """The learned search at ``depth`` (default: the chosen one) with that depth's
        calibrated threshold; returns ``(search, SafetyRunInfo)``."""
        from rlgan.safety.models import load_learned_search
        from rlgan.safety.search import SearchConfig

        choice = self.read_choice()
        depth = choice["depth"] if depth is None else depth
        return load_learned_search(self.root / choice["classifier"], SearchConfig(depth=depth),
                                   self.threshold(depth), device, self.root / choice["worldmodel"],
                                   compiled)

    def load_shield(self, depth: int | None = None, policy: Any = None,
                    device: str | torch.device = "cpu", compiled: bool = False) -> Any:
        """A :class:`rlgan.safety.shield.Shield` searching ``depth`` levels (default: the
        chosen depth) and keeping the policy's action when it is safe that deep."""
        from rlgan.safety.shield import Shield

        search, _ = self.load_search(depth, device, compiled)
        return Shield(search, policy)
