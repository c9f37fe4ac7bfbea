"""How early a world model lets the safety classifier foresee an unsafe step.

From a recorded state at t, the world model rolls out the recorded actions open-loop
(:func:`rlgan.worldmodel.rollouts.predict_rollout`) and the classifier scores every predicted
pair (frame t+j-1, frame t+j), frame t being the recorded one. For a horizon ``k`` the label is
"unsafe within k steps" (one of the recorded steps t..t+k-1 is unsafe) and the score the
largest P(unsafe) of the first ``k`` predicted pairs, as a search flags a path with any unsafe
step; the report is the ROC AUC of that score per horizon (1 for a perfect ordering, 0.5 for
chance), with its standard error by a bootstrap over episodes.

A start counts when its episode has the deepest horizon's steps recorded after it, or ends by
termination (a crash) before then, so every horizon's label is known; starts near the end of a
recording that stopped are left out. The same score on the recorded frames is given beside,
the ceiling a perfect world model would reach with this classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.data.reader import Transitions, evenly_spaced, open_dataset
from rlgan.safety.classifier import MirrorAveraged, SafetyClassifier, make_pairs
from rlgan.safety.metrics import roc_auc, roc_auc_stderr
from rlgan.safety.run import check_compatible, load_safety_run
from rlgan.worldmodel.evaluate import evaluated_episodes
from rlgan.worldmodel.frames import observations_to_tensor, to_unit
from rlgan.worldmodel.predictor import WorldModel
from rlgan.worldmodel.rollouts import Predictor, predict_path, recorded_steps, start_frames, steps_ahead

#: Horizons (steps ahead) reported by default.
FORESIGHT_HORIZONS = (1, 2, 4, 8)


def foresight_starts(dataset: Transitions, depth: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` evenly spaced items whose next ``depth`` steps' safety is known.

    Returns:
        ``(items, steps)``: the items, and the recorded steps from each (``depth``, or fewer
        when its episode terminates sooner), int ``(N,)``.
    """
    steps, terminated = steps_ahead(dataset, np.arange(len(dataset)), depth)
    valid = np.flatnonzero((steps == depth) | terminated)
    chosen = valid[evenly_spaced(len(valid), count)] if len(valid) else valid
    return chosen, steps[chosen]


@torch.inference_mode()
def pair_probabilities(classifier: SafetyClassifier | MirrorAveraged, frames: torch.Tensor,
                       device: torch.device) -> torch.Tensor:
    """P(unsafe) of every consecutive pair of ``frames`` float ``(B, 1 + D, C, H, W)`` in
    [-1, 1]: float ``(B, D)``, column j for the pair (frame j, frame j+1)."""
    batch, length = frames.shape[0], frames.shape[1] - 1
    first = frames[:, :-1].reshape(batch * length, *frames.shape[2:]).to(device)
    second = frames[:, 1:].reshape(batch * length, *frames.shape[2:]).to(device)
    return torch.sigmoid(classifier(make_pairs(first, second))).float().cpu().reshape(batch, length)


def within_horizons(per_step: np.ndarray, steps: np.ndarray, horizons: Sequence[int],
                    reduce: str) -> np.ndarray:
    """For every horizon k, ``per_step``'s any (``reduce="any"``) or max (``"max"``) over the
    first ``min(k, steps)`` columns of each row: ``(N, len(horizons))``.

    Args:
        per_step: ``(N, D)`` values per step (bools or scores).
        steps: int ``(N,)``, how many columns of each row are recorded (>= 1).
        horizons: the horizons, each in ``1..D``.
        reduce: ``"any"`` or ``"max"``.
    """
    columns = np.arange(per_step.shape[1])
    out = []
    for k in horizons:
        mask = columns[None, :] < np.minimum(k, steps)[:, None]
        if reduce == "any":
            out.append((per_step.astype(bool) & mask).any(axis=1))
        else:
            out.append(np.where(mask, per_step, -np.inf).max(axis=1))
    return np.stack(out, axis=1)


def unsafe_foresight(classifier: SafetyClassifier | MirrorAveraged, models: dict[str, Predictor], dataset: Transitions,
                     horizons: Sequence[int] = FORESIGHT_HORIZONS, count: int = 1024,
                     noise: torch.Generator | None = None, device: str | torch.device = "cpu",
                     batch_size: int = 64) -> dict[str, Any]:
    """ROC AUC per horizon of the classifier on each model's rollouts and on the recorded frames.

    Args:
        classifier: the safety classifier (eval mode).
        models: named world models (e.g. ``{"model": ..., "baseline": ...}``).
        dataset: recorded transitions with the frames' history of every model.
        horizons: steps ahead, increasing, each >= 1.
        count: most starts (evenly spaced over the valid ones).
        noise: CPU ``torch.Generator`` for the models' noise.
        device: where the classifier runs.

    Returns:
        ``horizons``, ``starts`` (the number of starts), ``episodes`` (the episodes they come
        from), ``positives`` per horizon (starts unsafe within k steps), ``auc`` (dict: model
        name -> AUC per horizon, None where one class is missing), ``auc_recorded_frames`` (AUC
        per horizon on the recorded pairs), and ``auc_stderr`` / ``auc_recorded_frames_stderr``,
        their standard errors by a bootstrap over episodes (the starts of one episode resampled
        together).

    Raises:
        ValueError: horizons that are empty, not increasing or below 1; ``count`` below 1.
    """
    horizons = [int(k) for k in horizons]
    if not horizons or horizons[0] < 1 or any(b <= a for a, b in zip(horizons, horizons[1:])):
        raise ValueError(f"horizons must be increasing integers >= 1, got {horizons}")
    if count < 1:
        raise ValueError(f"count (--foresight-starts) must be >= 1, got {count}")
    depth = horizons[-1]
    device = torch.device(device)
    noise = noise if noise is not None else torch.Generator().manual_seed(0)
    items, steps = foresight_starts(dataset, depth, count)
    history = max([model.history for model in models.values()] + [1])
    scores: dict[str, list[np.ndarray]] = {name: [] for name in [*models, "recorded"]}
    for begin in range(0, len(items), batch_size):
        chunk = items[begin:begin + batch_size]
        frames = start_frames(dataset, chunk, history)
        actions = torch.from_numpy(recorded_steps(dataset, chunk, depth, "action")).long()
        for name, model in models.items():
            scores[name].append(pair_probabilities(
                classifier, predict_path(model, frames, actions, noise), device).numpy())
        recorded = to_unit(observations_to_tensor(recorded_steps(dataset, chunk, depth, "next_obs")))
        scores["recorded"].append(pair_probabilities(
            classifier, torch.cat([frames[:, -1:], recorded], dim=1), device).numpy())
    unsafe = recorded_steps(dataset, items, depth, "unsafe")
    labels = within_horizons(unsafe, steps, horizons, "any")
    episodes = dataset.arrays["episode"][dataset.indices[items]]

    def aucs(per_step: list[np.ndarray]) -> tuple[list[float | None], list[float | None]]:
        """The AUC per horizon and its standard error (None where undefined)."""
        if not len(items):
            return [None] * len(horizons), [None] * len(horizons)
        within = within_horizons(np.concatenate(per_step), steps, horizons, "max")
        values = [roc_auc(labels[:, i], within[:, i]) for i in range(len(horizons))]
        errors = [roc_auc_stderr(labels[:, i], within[:, i], episodes) for i in range(len(horizons))]
        return [None if np.isnan(v) else v for v in values], [None if np.isnan(e) else e for e in errors]

    by_model = {name: aucs(scores[name]) for name in models}
    recorded, recorded_stderr = aucs(scores["recorded"])
    return {"horizons": horizons, "starts": int(len(items)),
            "episodes": int(len(np.unique(episodes))),
            "positives": [int(n) for n in labels.sum(axis=0)] if len(items) else [0] * len(horizons),
            "auc": {name: values for name, (values, _) in by_model.items()},
            "auc_stderr": {name: errors for name, (_, errors) in by_model.items()},
            "auc_recorded_frames": recorded, "auc_recorded_frames_stderr": recorded_stderr}


def evaluate_foresight(classifier_run: str | Path, run: str | Path, data: str | Path,
                       baseline_run: str | Path | None = None,
                       horizons: Sequence[int] = FORESIGHT_HORIZONS, count: int = 1024,
                       device: str | torch.device = "cpu", seed: int = 0,
                       mirror_average: bool = False) -> dict[str, Any]:
    """:func:`unsafe_foresight` of a safety run's classifier on a world-model run's rollouts
    (and a baseline run's) over the episodes ``rlgan worldmodel eval`` evaluates; when ``data``
    is the classifier's training data too, over the episodes held out by both.
    ``mirror_average`` scores each pair as the mean of itself and its mirror image
    (:class:`rlgan.safety.classifier.MirrorAveraged`).

    Returns:
        The dict of :func:`unsafe_foresight` with ``classifier`` (the safety run), ``split``
        (which episodes) and the models named ``model`` and ``baseline``.

    Raises:
        ValueError / FileNotFoundError / rlgan.data.DatasetError: a missing or corrupt run or
            dataset, outcome records (they hold no episodes to roll out), or a classifier, world
            model and data of different envs, frame sizes or action counts.
    """
    from rlgan.worldmodel.data import dataset_identity

    device = torch.device(device)
    identity = dataset_identity(data)
    models = {"model": WorldModel.load(run, device)}
    if baseline_run is not None:
        models["baseline"] = WorldModel.load(baseline_run, device)
    for model in models.values():
        model.check_compatible(f"dataset {data}", identity["env_id"], identity["frame_shape"],
                               identity["n_actions"])
    classifier, info = load_safety_run(classifier_run, device, mirror_average)
    check_compatible(f"safety run {classifier_run}", info.env_id, info.frame_shape, info.n_actions,
                     f"dataset {data}", identity["env_id"], identity["frame_shape"], identity["n_actions"])
    reader = open_dataset(data)
    if reader.every_action:
        raise ValueError(f"{data} holds outcome records (rlgan safety collect), no episodes to roll "
                         "out; give a dataset from rlgan record to measure foresight")
    episodes, split = evaluated_episodes(models["model"], identity)
    if Path(data).resolve() == (Path(classifier_run) / info.data).resolve():
        held_out = set(info.val_episodes) & set(episodes if episodes is not None else info.val_episodes)
        if not held_out:
            raise ValueError(f"no episode of {data} is held out by both world model {run} and safety "
                             f"run {classifier_run}; measure foresight on another dataset")
        episodes, split = sorted(held_out), "episodes held out by the world model and the classifier"
    dataset = reader.transitions(max(model.history for model in models.values()), episodes)
    result = unsafe_foresight(classifier, models, dataset, horizons, count,
                              torch.Generator().manual_seed(seed), device)
    return {"classifier": str(classifier_run), "mirror_average": mirror_average, "split": split, **result}
