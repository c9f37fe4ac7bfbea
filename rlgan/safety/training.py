"""Training and evaluating the safety classifier on recorded transitions.

Pairs are (frame t, frame t+1) with the env's ground-truth ``unsafe`` label. With a world model,
pairs whose second frame the generator predicted (from the same recorded frame and action,
labelled with the real step's ``unsafe``) are mixed in, so the classifier also works on the
frames the search feeds it. With a doom horizon every label is read again from the true
simulator, and a step into a state from which every continuation crashes within the horizon
counts as unsafe too (:mod:`rlgan.safety.labels`). Unsafe steps are rare, so every batch draws a
fixed fraction of unsafe pairs (balanced sampling). The held-out split is by episode.

Outcome records (:mod:`rlgan.data.outcomes`, ``rlgan safety collect``) give pairs for every
action from the states an agent met before its unsafe steps, labelled when collected: real
pairs with the true next frames and, with a world model, generated pairs with its predictions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rlgan.config import check_choice, config_to_dict
from rlgan.data import DatasetError, TransitionDataset
from rlgan.data.augment import jitter_colours, mirror
from rlgan.data.outcomes import load_data_metadata, load_outcomes, split_data_episodes
from rlgan.device import resolve_device
from rlgan.io import DirectoryLock, written_entries
from rlgan.safety.classifier import ClassifierShape, SafetyClassifier, make_pairs
from rlgan.safety.labels import check_doom_horizon, replayed_labels, replayed_outcomes
from rlgan.safety.metrics import classification_report
from rlgan.safety.run import (
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    SafetyRunInfo,
    check_compatible,
    read_safety_info,
    save_safety_run,
)
from rlgan.safety.search import NextFramePredictor
from rlgan.worldmodel.frames import to_uint8, to_unit


COUNTERFACTUAL_FRAMES = ("generated", "real", "both")


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of ``rlgan safety train``.

    Attributes:
        steps: optimiser steps.
        batch_size: pairs per step.
        learning_rate, weight_decay: Adam's.
        val_fraction: fraction of episodes held out (by episode), in [0, 1).
        positive_fraction: fraction of each batch drawn from unsafe pairs, in (0, 1).
        generated_fraction: fraction of each batch drawn from generated pairs (with a world
            model), in [0, 1).
        max_generated: most generated pairs per split (every unsafe step, then safe ones).
        counterfactual: generated pairs for every action from each chosen state, labelled by
            replaying the state in the true simulator (the env must have ``get_state()`` and
            the data must replay: recorded by ``rlgan record``); otherwise only the recorded
            action's pair, with its recorded label.
        counterfactual_frames: the frames t+1 of the counterfactual training pairs:
            ``"generated"`` (the world model's predictions), ``"real"`` (the true simulator's
            next frame of every action, read while labelling: the classifier learns what each
            action really leads to, which the predictions may blur) or ``"both"``. Held-out metrics
            always use the predictions.
        doom_horizon: also label a pair unsafe when its step lands in a state from which every
            sequence of this many actions meets an unsafe step (read by replaying the data in
            the true simulator with the oracle search, like ``counterfactual``), so the search
            sees a crash coming that many steps earlier; 0 (the SAD-GAN paper's label) labels
            the step alone. 0..4.
        threshold: P(unsafe) at or above which a pair is called unsafe (saved with the run).
        flip: mirror both frames left-right in half the pairs (unsafe labels are symmetric).
        colour_jitter: share of every batch recoloured, in [0, 1]: both frames of a pair alike
            (random channel order, gain and offset, :func:`rlgan.data.augment.jitter_colours`),
            for maps of other palettes; 0 trains on the recorded colours only.
        width_multiplier: channels of the classifier's first convolution.
        seed: seed of the split, the sampling and the initial weights.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        checkpoint_every: steps between checkpoints (the last step is always saved).
    """

    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    positive_fraction: float = 0.5
    generated_fraction: float = 0.5
    max_generated: int = 4096
    counterfactual: bool = False
    counterfactual_frames: str = "generated"
    doom_horizon: int = 0
    threshold: float = 0.5
    flip: bool = True
    colour_jitter: float = 0.0
    width_multiplier: int = 12
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_generated", "checkpoint_every", "width_multiplier"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 < self.positive_fraction < 1.0:
            raise ValueError(f"positive_fraction must be in (0, 1), got {self.positive_fraction}")
        if not 0.0 <= self.generated_fraction < 1.0:
            raise ValueError(f"generated_fraction must be in [0, 1), got {self.generated_fraction}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        for name in ("flip", "counterfactual"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.colour_jitter, (int, float)) or isinstance(self.colour_jitter, bool) \
                or not 0.0 <= self.colour_jitter <= 1.0:
            raise ValueError(f"colour_jitter must be a number in [0, 1], got {self.colour_jitter!r}")
        check_choice("counterfactual_frames", self.counterfactual_frames, COUNTERFACTUAL_FRAMES)
        check_doom_horizon(self.doom_horizon)


@dataclass
class PairSet:
    """Classifier examples: uint8 ``frame_t``/``frame_t1`` ``(N, C, H, W)``, bool ``unsafe`` (N,)."""

    frame_t: torch.Tensor
    frame_t1: torch.Tensor
    unsafe: np.ndarray

    def __len__(self) -> int:
        return len(self.unsafe)


def frame_shape_of(metadata: dict[str, Any], where: Path) -> tuple[int, int, int]:
    """``(H, W, C)`` of a dataset's frames.

    Raises:
        DatasetError: the observations are not images with 1, 3 or 4 channels.
    """
    shape = tuple(metadata["obs_shape"])
    if len(shape) != 3 or shape[2] not in (1, 3, 4):
        raise DatasetError(f"dataset {where} has observations of shape {shape}; the safety "
                           "classifier needs (H, W, C) image frames with 1, 3 or 4 channels")
    return shape


def real_pairs(root: str | Path, episodes: list[int] | None, doom_horizon: int = 0) -> PairSet:
    """Recorded (frame t, frame t+1, unsafe) of ``episodes`` (all when None); with a
    ``doom_horizon`` the labels are replayed (:func:`rlgan.safety.labels.replayed_labels`)."""
    dataset = TransitionDataset(root, history=1, episodes=episodes)
    rows = dataset.indices
    if doom_horizon:
        metadata = dataset.metadata
        unsafe = replayed_labels(dataset, np.arange(len(rows)), dataset.arrays["action"][rows, None],
                                 metadata["env_id"], metadata["env_kwargs"], doom_horizon)[:, 0]
    else:
        unsafe = dataset.arrays["unsafe"][rows].copy()
    return PairSet(
        frame_t=torch.from_numpy(np.ascontiguousarray(dataset.arrays["obs"][rows].transpose(0, 3, 1, 2))),
        frame_t1=torch.from_numpy(np.ascontiguousarray(dataset.arrays["next_obs"][rows].transpose(0, 3, 1, 2))),
        unsafe=unsafe)


def predicted_frames(predictor: NextFramePredictor, history: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The predictor's next frames, uint8 ``(B, C, H, W)`` on the CPU, from uint8 histories
    ``(B, h, C, H, W)`` and int64 ``actions`` ``(B,)``."""
    predicted = predictor.predict(to_unit(history), actions, 1)[:, 0]
    return to_uint8(predicted).cpu()


@torch.no_grad()
def generated_pairs(root: str | Path, episodes: list[int] | None, predictor: NextFramePredictor,
                    max_pairs: int, rng: np.random.Generator, device: torch.device,
                    every_action: bool = False, doom_horizon: int = 0, batch_size: int = 64,
                    frames: str = "generated") -> PairSet:
    """(frame t, predicted frame t+1) pairs from the states of every unsafe step of
    ``episodes`` and of safe steps, ``max_pairs`` in all.

    Without ``every_action`` each state gives the pair of its recorded action, labelled with
    the recorded ``unsafe``. With it each state gives a pair for every action, labelled by
    replaying the state in the true simulator (:mod:`rlgan.data.replay`): the classifier then
    sees, in the same traffic, which actions crash and which do not. A ``doom_horizon`` replays
    the labels either way and adds doomed steps (:mod:`rlgan.safety.labels`). With
    ``every_action``, ``frames`` picks the frames t+1: ``"generated"``, ``"real"`` (the true
    next frames of the replay) or ``"both"`` (twice the pairs).
    """
    dataset = TransitionDataset(root, history=int(predictor.history), episodes=episodes)
    n_actions = int(predictor.n_actions) if every_action else 1
    unsafe = dataset.arrays["unsafe"][dataset.indices]
    positives = np.flatnonzero(unsafe)
    if doom_horizon:  # the steps that may lead into a doomed state come first too
        positives = steps_before(dataset, positives, doom_horizon)
    negatives = np.setdiff1d(np.arange(len(unsafe)), positives)
    n_states = max(1, max_pairs // n_actions)
    n_negatives = max(0, min(len(negatives), n_states - len(positives)))
    chosen = np.sort(np.concatenate([positives[:n_states],
                                     rng.choice(negatives, n_negatives, replace=False)]))
    true_frames = None
    if every_action or doom_horizon:
        metadata = dataset.metadata
        actions = (np.tile(np.arange(n_actions), (len(chosen), 1)) if every_action
                   else dataset.arrays["action"][dataset.indices[chosen], None])
        labels, true_frames = replayed_outcomes(dataset, chosen, actions, metadata["env_id"],
                                                metadata["env_kwargs"], doom_horizon)
        labels = labels.reshape(-1)  # state-major: (state 0, action 0), (state 0, action 1), ...
    else:
        labels = unsafe[chosen]
    predict = not every_action or frames != "real"
    frame_t, frame_t1 = [], []
    for start in range(0, len(chosen), batch_size):
        items = [dataset[int(i)] for i in chosen[start:start + batch_size]]
        history = torch.stack([item["frames"] for item in items]).to(device)  # (B, h, C, H, W) uint8
        if every_action:
            actions = torch.arange(n_actions, device=device).repeat(len(items))
            history = history.repeat_interleave(n_actions, dim=0)
        else:
            actions = torch.stack([item["action"] for item in items]).to(device)
        frame_t.append(history[:, -1].cpu())
        if predict:
            frame_t1.append(predicted_frames(predictor, history, actions))
    frame_t = torch.cat(frame_t)
    pair_sets = []
    if predict:
        pair_sets.append(PairSet(frame_t=frame_t, frame_t1=torch.cat(frame_t1), unsafe=labels))
    if every_action and frames != "generated":
        true_t1 = torch.from_numpy(true_frames.reshape(-1, *true_frames.shape[2:])).permute(0, 3, 1, 2)
        pair_sets.append(PairSet(frame_t=frame_t, frame_t1=true_t1.contiguous(), unsafe=labels))
    if len(pair_sets) == 1:
        return pair_sets[0]
    return PairSet(frame_t=torch.cat([pairs.frame_t for pairs in pair_sets]),
                   frame_t1=torch.cat([pairs.frame_t1 for pairs in pair_sets]),
                   unsafe=np.concatenate([pairs.unsafe for pairs in pair_sets]))


def steps_before(dataset: TransitionDataset, items: np.ndarray, count: int) -> np.ndarray:
    """``items`` and the items of the ``count`` steps before each in the same episode, sorted."""
    arrays, rows = dataset.arrays, dataset.indices
    found = [np.asarray(items, dtype=np.int64)]
    for back in range(1, count + 1):
        earlier = found[0] - back
        earlier = earlier[earlier >= 0]
        later = earlier + back
        same = ((arrays["episode"][rows[earlier]] == arrays["episode"][rows[later]])
                & (arrays["step"][rows[earlier]] == arrays["step"][rows[later]] - back))
        found.append(earlier[same])
    return np.unique(np.concatenate(found))


@torch.no_grad()
def outcome_pairs(root: str | Path, episodes: list[int] | None, predictor: NextFramePredictor | None,
                  device: torch.device, batch_size: int = 64) -> tuple[PairSet, PairSet | None]:
    """(frame t, frame t+1 of every action) pairs of the outcome records of ``episodes``
    (all when None), labelled with the recorded outcomes: ``(real, generated)``, the second
    (None without a predictor) with the predictor's next frames from the recorded history.

    Raises:
        DatasetError: bad records, or records with fewer history frames than the predictor takes.
    """
    records = load_outcomes(root, episodes)
    frames, n_actions = records["frames"], records["next_frames"].shape[1]
    frame_t = torch.from_numpy(np.ascontiguousarray(frames[:, -1].transpose(0, 3, 1, 2)))
    frame_t = frame_t.repeat_interleave(n_actions, dim=0)  # record-major, as next_frames
    unsafe = records["unsafe"].reshape(-1)
    real = PairSet(frame_t=frame_t, unsafe=unsafe, frame_t1=torch.from_numpy(np.ascontiguousarray(
        records["next_frames"].reshape(-1, *frames.shape[2:]).transpose(0, 3, 1, 2))))
    if predictor is None:
        return real, None
    history = int(predictor.history)
    if frames.shape[1] < history:
        raise DatasetError(f"the outcome records in {root} keep {frames.shape[1]} frame(s) per "
                           f"state, the world model takes {history}; collect with --history {history}")
    predicted = []
    for start in range(0, len(frames), batch_size):
        chunk = torch.from_numpy(frames[start:start + batch_size, -history:]).to(device)
        chunk = chunk.permute(0, 1, 4, 2, 3).repeat_interleave(n_actions, dim=0)  # (B*A, h, C, H, W)
        actions = torch.arange(n_actions, device=device).repeat(len(chunk) // n_actions)
        predicted.append(predicted_frames(predictor, chunk, actions))
    return real, PairSet(frame_t=frame_t, frame_t1=torch.cat(predicted), unsafe=unsafe)


def _check_outcome_settings(config: ClassifierConfig) -> None:
    if config.counterfactual or config.doom_horizon:
        raise ValueError("outcome records already hold every action's outcome, labelled when "
                         "collected: leave counterfactual and doom_horizon unset (rlgan safety "
                         "collect --doom-horizon sets the horizon)")


class BalancedSampler:
    """Draws batch indices of a :class:`PairSet` with a fixed fraction of unsafe pairs."""

    def __init__(self, pairs: PairSet, positive_fraction: float, rng: np.random.Generator) -> None:
        self.positives = np.flatnonzero(pairs.unsafe)
        self.negatives = np.flatnonzero(~pairs.unsafe)
        self.positive_fraction = positive_fraction
        self.rng = rng

    def sample(self, n: int) -> np.ndarray:
        n_pos = int(round(n * self.positive_fraction)) if len(self.negatives) else n
        n_pos = n_pos if len(self.positives) else 0
        parts = []
        if n_pos:
            parts.append(self.rng.choice(self.positives, n_pos))
        if n - n_pos:
            parts.append(self.rng.choice(self.negatives, n - n_pos))
        return np.concatenate(parts)


@torch.no_grad()
def predict_probabilities(model: SafetyClassifier, pairs: PairSet, device: torch.device,
                          batch_size: int = 256) -> np.ndarray:
    """P(unsafe) of every pair, float64 ``(N,)``."""
    model.eval()
    out = []
    for start in range(0, len(pairs), batch_size):
        x = make_pairs(pairs.frame_t[start:start + batch_size].to(device),
                       pairs.frame_t1[start:start + batch_size].to(device))
        out.append(torch.sigmoid(model(x)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate_pairs(model: SafetyClassifier, pairs: PairSet | None, threshold: float,
                   device: torch.device) -> dict[str, Any] | None:
    """Precision, recall, accuracy and ROC AUC on ``pairs`` (None when there are none)."""
    if pairs is None or len(pairs) == 0:
        return None
    return classification_report(pairs.unsafe, predict_probabilities(model, pairs, device), threshold)


def _check_has_unsafe(pairs: PairSet, data: Path) -> None:
    if not pairs.unsafe.any():
        raise DatasetError(f"the training episodes of {data} hold no unsafe step to learn from; "
                           "record more steps or with more exploration (--epsilon, --agent random)")


def _check_predictor(predictor: NextFramePredictor, metadata: dict[str, Any], data: Path) -> None:
    env_id = getattr(predictor, "env_id", metadata["env_id"])
    check_compatible("the world model", env_id, tuple(predictor.frame_shape), predictor.n_actions,
                     f"the data in {data}", metadata["env_id"], tuple(metadata["obs_shape"]),
                     metadata["n_actions"])


def train_classifier(data: str | Path, run_dir: str | Path, config: ClassifierConfig | None = None,
                     predictor: NextFramePredictor | None = None, worldmodel_run: str | Path | None = None,
                     overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a safety classifier on the dataset ``data`` into the run directory ``run_dir``.

    Args:
        data: an ``rlgan-transitions`` dataset (``rlgan record``).
        run_dir: output directory (see :mod:`rlgan.safety.run`).
        config: training settings.
        predictor: a world model for generated pairs (optional); ``worldmodel_run`` is the
            run it was loaded from, recorded in the safety run.
        overwrite: replace an existing safety run in ``run_dir``.
        progress: show a progress bar.

    Returns:
        Summary: ``loss_start``/``loss_end`` (mean loss of the first/last tenth of the steps),
        pair counts, held-out ``metrics`` (``real`` and ``generated``), ``seconds``.

    Raises:
        FileExistsError: ``run_dir`` holds a run and ``overwrite`` is False, or holds
            something else.
        DatasetError / ValueError: bad data, no unsafe step to learn from, a world model
            trained for another env or frame size, or a ``run_dir`` holding another kind of run.
        rlgan.io.DirectoryBusyError: another process is writing ``run_dir``.
    """
    with DirectoryLock(run_dir):
        _check_run_dir(Path(run_dir), overwrite)
        return _train_classifier(Path(data), Path(run_dir), config or ClassifierConfig(), predictor,
                                 worldmodel_run, progress)


def _check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse to write over a safety run (unless ``overwrite``) or over anything else."""
    entries = written_entries(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        read_safety_info(run_dir)  # a ValueError unless it is a safety run
        if not overwrite:
            raise FileExistsError(f"{run_dir} already holds a safety run; pass --overwrite or "
                                  "choose another directory")
    elif any(entry.name not in (WEIGHTS_FILE, METRICS_FILE) for entry in entries):
        raise FileExistsError(f"{run_dir} is not empty and holds no safety run; choose an empty "
                              "or new directory")
    elif entries and not overwrite:  # weights written, then stopped before config.json
        raise FileExistsError(f"{run_dir} holds a safety run stopped before its first "
                              "checkpoint was complete; pass --overwrite to train it again")


def _train_classifier(data: Path, run_dir: Path, config: ClassifierConfig,
                      predictor: NextFramePredictor | None, worldmodel_run: str | Path | None,
                      progress: bool) -> dict[str, Any]:
    metadata, outcomes = load_data_metadata(data)
    frame_shape = frame_shape_of(metadata, data)
    if predictor is not None:
        _check_predictor(predictor, metadata, data)
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    start = time.perf_counter()

    train_generated = val_generated = val_real = None
    generator = predictor if config.generated_fraction > 0 else None
    train_episodes, val_episodes = split_data_episodes(data, config.val_fraction, config.seed)
    if outcomes:
        _check_outcome_settings(config)
        train_real, train_generated = outcome_pairs(data, train_episodes, generator, device)
        _check_has_unsafe(train_real, data)
        if val_episodes:
            val_real, val_generated = outcome_pairs(data, val_episodes, generator, device)
    else:
        train_real = real_pairs(data, train_episodes, config.doom_horizon)
        _check_has_unsafe(train_real, data)
        if val_episodes:
            val_real = real_pairs(data, val_episodes, config.doom_horizon)
        if generator is not None:
            train_generated = generated_pairs(data, train_episodes, generator, config.max_generated, rng,
                                              device, config.counterfactual, config.doom_horizon,
                                              frames=config.counterfactual_frames)
            if val_episodes:
                val_generated = generated_pairs(data, val_episodes, generator, config.max_generated,
                                                rng, device, config.counterfactual, config.doom_horizon)
    sources = [(train_real, 1.0)]
    if train_generated is not None:
        sources = [(train_real, 1.0 - config.generated_fraction),
                   (train_generated, config.generated_fraction)]
    samplers = [(pairs, BalancedSampler(pairs, config.positive_fraction, rng), share)
                for pairs, share in sources]

    H, W, C = frame_shape
    model = SafetyClassifier(ClassifierShape(height=H, width=W, channels=C,
                                             width_multiplier=config.width_multiplier)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    info = SafetyRunInfo(
        env_id=metadata["env_id"], env_kwargs=dict(metadata["env_kwargs"]), frame_shape=frame_shape,
        n_actions=int(metadata["n_actions"]), threshold=config.threshold, classifier=model.config,
        data=os.path.relpath(data, run_dir), val_episodes=tuple(val_episodes),
        worldmodel_run=os.path.relpath(worldmodel_run, run_dir) if worldmodel_run else None,
        train=config_to_dict(config))
    losses = []
    for step in tqdm(range(config.steps), desc="safety classifier", unit="step", disable=not progress):
        model.train()
        frame_t, frame_t1, labels = [], [], []
        remaining = config.batch_size
        for number, (pairs, sampler, share) in enumerate(samplers):
            n = remaining if number == len(samplers) - 1 else int(round(config.batch_size * share))
            remaining -= n
            index = torch.from_numpy(sampler.sample(n))
            frame_t.append(pairs.frame_t[index])
            frame_t1.append(pairs.frame_t1[index])
            labels.append(torch.from_numpy(pairs.unsafe[index.numpy()]))
        x = make_pairs(torch.cat(frame_t).to(device), torch.cat(frame_t1).to(device))
        if config.flip:
            mirror(x)
        if config.colour_jitter:
            jitter_colours(x, C, config.colour_jitter)
        y = torch.cat(labels).float().to(device)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise ValueError(f"the classifier's loss became {loss.item()} at step {step}; lower "
                             "the learning rate (the last saved checkpoint is kept)")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            save_safety_run(run_dir, model, info)
    metrics = {"real": evaluate_pairs(model, val_real, config.threshold, device),
               "generated": evaluate_pairs(model, val_generated, config.threshold, device)}
    save_safety_run(run_dir, model, info, metrics)
    tenth = max(1, len(losses) // 10)
    return {
        "run": str(run_dir), "loss_start": float(np.mean(losses[:tenth])),
        "loss_end": float(np.mean(losses[-tenth:])), "train_pairs": len(train_real),
        "train_unsafe": int(train_real.unsafe.sum()),
        "generated_pairs": len(train_generated) if train_generated is not None else 0,
        "val_episodes": len(val_episodes), "metrics": metrics,
        "seconds": time.perf_counter() - start,
    }


def evaluate_classifier(run_dir: str | Path, data: str | Path, worldmodel_run: str | Path | None = None,
                        threshold: float | None = None, device: str | torch.device = "cpu",
                        max_generated: int = 4096, seed: int = 0) -> dict[str, Any]:
    """Metrics of a safety run on ``data``: its held-out episodes when ``data`` is the
    training dataset, else every episode; generated pairs come from ``worldmodel_run`` (default:
    the run's own world model; none when the run has none).

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
    model, info = load_safety_run(run_dir, device)
    data = Path(data)
    metadata, outcomes = load_data_metadata(data)
    check_compatible(f"safety run {run_dir}", info.env_id, info.frame_shape, info.n_actions,
                     f"the data in {data}", metadata["env_id"], frame_shape_of(metadata, data),
                     metadata["n_actions"])
    same_data = data.resolve() == (Path(run_dir) / info.data).resolve()
    episodes = list(info.val_episodes) if same_data else None
    if same_data and not episodes:
        raise ValueError(f"safety run {run_dir} held out no episode of {data}; evaluate it on "
                         "another dataset")
    trained = info.train or {}
    doom_horizon = int(trained.get("doom_horizon", 0))  # labels as in training
    threshold = info.threshold if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if worldmodel_run is None and info.worldmodel_run is not None:
        worldmodel_run = Path(run_dir) / info.worldmodel_run  # a relative path is the run's
    predictor = load_predictor(worldmodel_run, device) if worldmodel_run else None
    if predictor is not None:
        _check_predictor(predictor, metadata, data)
    if outcomes:
        real, generated = outcome_pairs(data, episodes, predictor, device)
    else:
        real, generated = real_pairs(data, episodes, doom_horizon), None
        if predictor is not None:
            every_action = bool(trained.get("counterfactual", False))
            generated = generated_pairs(data, episodes, predictor, max_generated,
                                        np.random.default_rng(seed), device, every_action, doom_horizon)
    return {"run": str(run_dir), "data": str(data),
            "split": "held-out episodes" if same_data else "all episodes", "threshold": threshold,
            "real": evaluate_pairs(model, real, threshold, device),
            "generated": evaluate_pairs(model, generated, threshold, device)}
