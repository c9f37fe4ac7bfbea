"""``rlgan safety train``: the safety classifier's training loop.

The classifier learns from the pairs of :mod:`rlgan.safety.pairs` (recorded, and with a world
model also generated ones, mixed in fixed shares). Unsafe steps are rare, so every batch draws a
fixed fraction of unsafe pairs (balanced sampling). The held-out split is by episode; the
held-out metrics (:mod:`rlgan.safety.classifier_eval`) are saved with the run
(:mod:`rlgan.safety.run`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from rlgan.config import check_choice, check_int_range, config_to_dict
from rlgan.data.augment import jitter_colours, mirror
from rlgan.data.reader import DatasetReader, open_dataset
from rlgan.device import resolve_device
from rlgan.io import DirectoryLock, written_entries
from rlgan.safety.classifier import ClassifierShape, SafetyClassifier, make_pairs
from rlgan.safety.classifier_eval import evaluate_pairs
from rlgan.safety.labels import check_doom_horizon
from rlgan.safety.pairs import (
    COUNTERFACTUAL_FRAMES,
    PairOptions,
    PairSet,
    check_options,
    check_outcome_pairs_fit,
    check_predictor,
    dataset_pairs,
    frame_shape_of,
)
from rlgan.safety.run import (
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    SafetyRunInfo,
    read_safety_info,
    save_safety_run,
)
from rlgan.safety.search import NextFramePredictor

#: The deepest rollout the generated pairs may follow (``ClassifierConfig.rollout_depth``).
MAX_ROLLOUT_DEPTH = 16


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
        rollout_depth: with a world model, build the generated pairs along open-loop rollouts
            of this many steps (1..16) from each chosen state, taking the recorded actions and
            labels (:func:`rlgan.safety.pairs.rollout_pairs`), so the classifier also learns
            the frames a deeper search predicts; ``max_generated`` counts every pair. 1 gives
            the one-step pairs; above 1 it goes without ``counterfactual`` and ``doom_horizon``.
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
    rollout_depth: int = 1
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
        check_int_range("rollout_depth", self.rollout_depth, 1, MAX_ROLLOUT_DEPTH)
        if self.rollout_depth > 1 and (self.counterfactual or self.doom_horizon):
            raise ValueError("rollout_depth > 1 labels the rollouts with the recorded steps: "
                             "leave counterfactual and doom_horizon unset")

    def pair_options(self) -> PairOptions:
        """How the training pairs are built from recorded transitions."""
        return PairOptions(doom_horizon=self.doom_horizon, counterfactual=self.counterfactual,
                           max_generated=self.max_generated,
                           counterfactual_frames=self.counterfactual_frames,
                           rollout_depth=self.rollout_depth)


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
    reader = open_dataset(data)
    frame_shape = frame_shape_of(reader.metadata, data)
    if predictor is not None:
        check_predictor(predictor, reader.metadata, data)
    elif config.rollout_depth > 1:
        raise ValueError("rollout_depth > 1 trains on the world model's rollouts: give the "
                         "world model (--worldmodel RUN)")
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    pairs = _training_pairs(reader, config, predictor if config.generated_fraction > 0 else None,
                            device, rng)
    H, W, C = frame_shape
    model = SafetyClassifier(ClassifierShape(height=H, width=W, channels=C,
                                              width_multiplier=config.width_multiplier)).to(device)
    info = SafetyRunInfo(
        env_id=reader.metadata["env_id"], env_kwargs=dict(reader.metadata["env_kwargs"]),
        frame_shape=frame_shape, n_actions=int(reader.metadata["n_actions"]),
        threshold=config.threshold, classifier=model.config, data=os.path.relpath(data, run_dir),
        val_episodes=tuple(pairs.val_episodes),
        worldmodel_run=os.path.relpath(worldmodel_run, run_dir) if worldmodel_run else None,
        train=config_to_dict(config))
    losses = _fit(model, pairs.samplers(config, rng), config, device, progress,
                  checkpoint=lambda: save_safety_run(run_dir, model, info))
    metrics = {"real": evaluate_pairs(model, pairs.val_real, config.threshold, device),
               "generated": evaluate_pairs(model, pairs.val_generated, config.threshold, device)}
    save_safety_run(run_dir, model, info, metrics)
    tenth = max(1, len(losses) // 10)
    return {
        "run": str(run_dir), "loss_start": float(np.mean(losses[:tenth])),
        "loss_end": float(np.mean(losses[-tenth:])), "train_pairs": len(pairs.train_real),
        "train_unsafe": int(pairs.train_real.unsafe.sum()),
        "generated_pairs": len(pairs.train_generated) if pairs.train_generated is not None else 0,
        "val_episodes": len(pairs.val_episodes), "metrics": metrics,
        "seconds": time.perf_counter() - start,
    }


@dataclass
class _TrainingPairs:
    """The pairs of the training and held-out episodes (``*_generated`` None without a world
    model; ``val_*`` None without held-out episodes)."""

    train_real: PairSet
    train_generated: PairSet | None
    val_real: PairSet | None
    val_generated: PairSet | None
    val_episodes: list[int]

    def samplers(self, config: ClassifierConfig, rng: np.random.Generator) -> list[tuple[PairSet, BalancedSampler, float]]:
        """``(pairs, sampler, share of each batch)`` of the real and the generated pairs."""
        sources = [(self.train_real, 1.0)]
        if self.train_generated is not None:
            sources = [(self.train_real, 1.0 - config.generated_fraction),
                       (self.train_generated, config.generated_fraction)]
        return [(pairs, BalancedSampler(pairs, config.positive_fraction, rng), share)
                for pairs, share in sources]


def _training_pairs(reader: DatasetReader, config: ClassifierConfig, generator: NextFramePredictor | None,
                    device: torch.device, rng: np.random.Generator) -> _TrainingPairs:
    """The pairs of the episodes split under ``config.seed``; held-out generated pairs always
    have predicted frames t+1.

    Raises:
        DatasetError / ValueError: bad data, settings outcome records do not take, or no unsafe
            step in the training episodes.
    """
    options = config.pair_options()
    check_options(reader, options)
    if reader.every_action:
        check_outcome_pairs_fit(reader, generator is not None)
    train_episodes, val_episodes = reader.split_episodes(config.val_fraction, config.seed)
    train_real, train_generated = dataset_pairs(reader, train_episodes, generator, device, rng, options,
                                                require_unsafe=True)
    val_real = val_generated = None
    if val_episodes:
        val_real, val_generated = dataset_pairs(
            reader, val_episodes, generator, device, rng,
            dataclasses.replace(options, counterfactual_frames="generated"))
    return _TrainingPairs(train_real, train_generated, val_real, val_generated, val_episodes)


def _fit(model: SafetyClassifier, samplers: list[tuple[PairSet, BalancedSampler, float]],
         config: ClassifierConfig, device: torch.device, progress: bool,
         checkpoint: Any) -> list[float]:
    """``config.steps`` Adam steps on binary cross-entropy, calling ``checkpoint()`` every
    ``checkpoint_every`` steps but the last; returns every step's loss.

    Raises:
        ValueError: the loss became NaN or infinite (the last checkpoint is kept).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for step in tqdm(range(config.steps), desc="safety classifier", unit="step", disable=not progress):
        model.train()
        x, y = _batch(samplers, config, model.config.channels, device)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise ValueError(f"the classifier's loss became {loss.item()} at step {step}; lower "
                             "the learning rate (the last saved checkpoint is kept)")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            checkpoint()
    return losses


def _batch(samplers: list[tuple[PairSet, BalancedSampler, float]], config: ClassifierConfig,
           channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented batch: stacked pairs float ``(B, 2*C, H, W)`` and labels float ``(B,)``,
    each source's share of the batch (the last takes what is left)."""
    frame_t, frame_t1, labels = [], [], []
    remaining = config.batch_size
    for number, (pairs, sampler, share) in enumerate(samplers):
        n = remaining if number == len(samplers) - 1 else int(round(config.batch_size * share))
        remaining -= n
        index = torch.from_numpy(sampler.sample(n))
        frame_t.append(pairs.frames_t(index))
        frame_t1.append(pairs.frame_t1[index])
        labels.append(torch.from_numpy(pairs.unsafe[index.numpy()]))
    x = make_pairs(torch.cat(frame_t).to(device), torch.cat(frame_t1).to(device))
    if config.flip:
        mirror(x)
    if config.colour_jitter:
        jitter_colours(x, channels, config.colour_jitter)
    return x, torch.cat(labels).float().to(device)
