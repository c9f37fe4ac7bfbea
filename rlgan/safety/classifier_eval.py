"""``rlgan safety eval``: a safety classifier's precision, recall, accuracy and ROC AUC on pairs.

:func:`evaluate_classifier` scores a safety run on a dataset's pairs (:mod:`rlgan.safety.pairs`): its
held-out episodes when the dataset is the one it trained on, else every episode, built as in its
training (the same doom horizon; every action's pair when it trained so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.data.reader import open_dataset
from rlgan.safety.classifier import MirrorAveraged, SafetyClassifier, make_pairs
from rlgan.safety.metrics import classification_report
from rlgan.safety.pairs import PairOptions, PairSet, check_predictor, dataset_pairs, frame_shape_of
from rlgan.safety.run import SafetyRunInfo, check_compatible


@torch.no_grad()
def predict_probabilities(model: SafetyClassifier | MirrorAveraged, pairs: PairSet, device: torch.device,
                          batch_size: int = 256) -> np.ndarray:
    """P(unsafe) of every pair, float64 ``(N,)``."""
    model.eval()
    out = []
    for start in range(0, len(pairs), batch_size):
        x = make_pairs(pairs.frames_t(slice(start, start + batch_size)).to(device),
                       pairs.frame_t1[start:start + batch_size].to(device))
        out.append(torch.sigmoid(model(x)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate_pairs(model: SafetyClassifier | MirrorAveraged, pairs: PairSet | None, threshold: float,
                   device: torch.device) -> dict[str, Any] | None:
    """Precision, recall, accuracy and ROC AUC on ``pairs`` (None when there are none)."""
    if pairs is None or len(pairs) == 0:
        return None
    return classification_report(pairs.unsafe, predict_probabilities(model, pairs, device), threshold)


def evaluate_classifier(run_dir: str | Path, data: str | Path, worldmodel_run: str | Path | None = None,
                 threshold: float | None = None, device: str | torch.device = "cpu",
                 max_generated: int = 4096, seed: int = 0, mirror_average: bool = False) -> dict[str, Any]:
    """Metrics of a safety run on ``data``: its held-out episodes when ``data`` is the
    training dataset, else every episode; generated pairs come from ``worldmodel_run`` (default:
    the run's own world model; none when the run has none). ``mirror_average`` scores each pair
    as the mean of itself and its mirror image (:class:`rlgan.safety.classifier.MirrorAveraged`).

    Returns:
        ``{"run", "data", "split", "threshold", "real", "generated"}``; ``real``/``generated``
        are :func:`rlgan.safety.metrics.classification_report` dicts (``generated`` may be None).

    Raises:
        ValueError / FileNotFoundError: the run or data is missing, or they (or the world
            model) belong to different envs or frame sizes.
    """
    from rlgan.safety.predictor import load_predictor
    from rlgan.safety.run import load_safety_run

    if max_generated < 1:
        raise ValueError(f"max_generated (--max-generated) must be >= 1, got {max_generated}")
    device = torch.device(device)
    model, info = load_safety_run(run_dir, device, mirror_average)
    reader = open_dataset(data)
    metadata = reader.metadata
    check_compatible(f"safety run {run_dir}", info.env_id, info.frame_shape, info.n_actions,
                     f"the data in {reader.root}", metadata["env_id"],
                     frame_shape_of(metadata, reader.root), metadata["n_actions"])
    episodes = _evaluated_episodes(run_dir, info, reader.root)
    threshold = info.threshold if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if worldmodel_run is None and info.worldmodel_run is not None:
        worldmodel_run = Path(run_dir) / info.worldmodel_run  # a relative path is the run's
    predictor = load_predictor(worldmodel_run, device) if worldmodel_run else None
    if predictor is not None:
        check_predictor(predictor, metadata, reader.root)
    real, generated = dataset_pairs(reader, episodes, predictor, device, np.random.default_rng(seed),
                                    _training_options(info, max_generated))
    return {"run": str(run_dir), "data": str(data),
            "split": "held-out episodes" if episodes is not None else "all episodes",
            "threshold": threshold, "mirror_average": mirror_average,
            "real": evaluate_pairs(model, real, threshold, device),
            "generated": evaluate_pairs(model, generated, threshold, device)}


def _evaluated_episodes(run_dir: str | Path, info: SafetyRunInfo, data: Path) -> list[int] | None:
    """The run's held-out episodes when ``data`` is its training data, else None (all).

    Raises:
        ValueError: ``data`` is the training data and the run held out no episode of it.
    """
    if data.resolve() != (Path(run_dir) / info.data).resolve():
        return None
    if not info.val_episodes:
        raise ValueError(f"safety run {run_dir} held out no episode of {data}; evaluate it on "
                         "another dataset")
    return list(info.val_episodes)


def _training_options(info: SafetyRunInfo, max_generated: int) -> PairOptions:
    """Pairs labelled as in the run's training (its doom horizon; every action's pair, or the
    pairs of its rollouts, when it trained so), with predicted frames t+1."""
    trained = info.train or {}
    return PairOptions(doom_horizon=int(trained.get("doom_horizon", 0)),
                       counterfactual=bool(trained.get("counterfactual", False)),
                       max_generated=max_generated,
                       rollout_depth=int(trained.get("rollout_depth", 1)))
