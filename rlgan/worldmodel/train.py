"""The training loop of ``rlgan worldmodel train`` (single process or ``torchrun``).

Rank 0 writes ``run.json``, checkpoints, TensorBoard logs and ``samples.png`` (see
:mod:`rlgan.worldmodel.run`); every rank draws its own batches from its part of the shards, and
``DistributedDataParallel`` averages gradients.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rlgan.config import build_config
from rlgan.data import DatasetError
from rlgan.data.augment import jitter_colours
from rlgan.data.reader import Transitions, evenly_spaced, open_dataset
from rlgan.io import atomic_path, clear_directory, written_entries
from rlgan.weights import load_weights
from rlgan.worldmodel.config import FRAME_OPTIONS, GAN_ONLY_OPTIONS, WorldModelConfig
from rlgan.worldmodel.data import RankData, collate, data_info, rank_data
from rlgan.worldmodel.distributed import (
    Distributed,
    barrier,
    main_rank_lock,
    mean_over_ranks,
    setup,
    teardown,
)
from rlgan.worldmodel.frames import to_uint8
from rlgan.worldmodel.metrics import PSNR_CAP_DB, psnr
from rlgan.worldmodel.model import Discriminator
from rlgan.worldmodel.networks import predicting_network
from rlgan.worldmodel.run import (
    DataInfo,
    RUN_FILE,
    checkpoint_dir,
    has_checkpoint,
    load_checkpoint,
    load_run_info,
    save_checkpoint,
    save_run_info,
)
from rlgan.worldmodel.samples import sample_grid
from rlgan.worldmodel.step import GANStep, VAEStep

#: Options that may change when a run is resumed; everything else must stay as it was.
RESUMABLE_OPTIONS = ("steps", "device", "log_every", "sample_every", "checkpoint_every")
#: Options that shape the generator: a run started from another run's generator must match them.
GENERATOR_OPTIONS = FRAME_OPTIONS + ("model", "history", "base_width", "z_dim", "action_dim", "conditioning",
                                     "latent_dim")
VAL_BATCH = 64
GRID_ROWS = 4


class TrainingDiverged(ValueError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_config(data: str | Path, run: str | Path, overrides: Mapping[str, Any] | None,
                   resume: bool) -> tuple[WorldModelConfig, DataInfo]:
    """The run's settings: the stored ones on resume (only :data:`RESUMABLE_OPTIONS` may
    change), else the defaults with ``overrides``; frame size and actions from the data.

    Raises:
        TypeError: an unknown option (with a did-you-mean).
        ValueError: a frame option that contradicts the data, an option changed on resume, or
            data from another env/frame size than the run's.
    """
    overrides = dict(overrides or {})
    build_config(WorldModelConfig, {key: value for key, value in overrides.items()
                                    if key not in FRAME_OPTIONS})  # validates the keys early
    if resume:
        config, info = load_run_info(run)
        changed = {key: value for key, value in overrides.items()
                   if value != getattr(config, key)}
        fixed = sorted(set(changed) - set(RESUMABLE_OPTIONS))
        if fixed:
            raise ValueError(
                f"cannot change {', '.join(fixed)} when resuming {run} (it was trained with "
                f"{', '.join(f'{key}={getattr(config, key)!r}' for key in fixed)}); only "
                f"{', '.join(RESUMABLE_OPTIONS)} may change; start a new run instead")
        current = data_info(data, config.val_fraction, config.seed)
        info.check_compatible(f"dataset {data}", current.env_id, current.frame_shape,
                              current.n_actions)
        return build_config(WorldModelConfig, changed, base=config), info
    base = build_config(WorldModelConfig, {key: value for key, value in overrides.items()
                                           if key not in FRAME_OPTIONS})
    if base.model == "vae":
        base = _vae_config(base, overrides)
    info = data_info(data, base.val_fraction, base.seed)
    height, width, channels = info.frame_shape
    from_data = {"frame_height": height, "frame_width": width, "channels": channels,
                 "n_actions": info.n_actions}
    for key in FRAME_OPTIONS:
        if key in overrides and overrides[key] != from_data[key]:
            raise ValueError(f"{key} comes from the dataset ({from_data[key]} in {data}), "
                             f"not {overrides[key]!r}; leave it unset")
    return build_config(WorldModelConfig, from_data, base=base), info


def _vae_config(config: WorldModelConfig, overrides: Mapping[str, Any]) -> WorldModelConfig:
    """``config`` of a VAE run, with the GAN's adversarial weight and noise set to 0.

    Raises:
        ValueError: ``overrides`` set an option of the GAN alone (:data:`GAN_ONLY_OPTIONS`).
    """
    refused = [key for key in GAN_ONLY_OPTIONS if key in overrides]
    if refused:
        raise ValueError(f"{', '.join(refused)} apply to the GAN only; model='vae' trains no "
                         "discriminator and takes no noise z: leave them unset")
    return build_config(WorldModelConfig, {"lambda_adv": 0.0, "z_dim": 0}, base=config)


def check_init_from(source: Path, config: WorldModelConfig, info: DataInfo) -> None:
    """Raise ``ValueError`` unless ``source``'s generator fits the run being started: same env,
    frame size and actions, and the same generator options (:data:`GENERATOR_OPTIONS`).

    Raises:
        FileNotFoundError: ``source`` is not a world-model run or has no checkpoint.
    """
    source_config, source_info = load_run_info(source)
    source_info.check_compatible(f"the new run's data (starting from {source})", info.env_id,
                                 info.frame_shape, info.n_actions)
    different = [f"{key}={getattr(source_config, key)!r} (this run: {getattr(config, key)!r})"
                 for key in GENERATOR_OPTIONS if getattr(source_config, key) != getattr(config, key)]
    if different:
        raise ValueError(f"cannot start from {source}: its generator differs in "
                         f"{', '.join(different)}; pass the same options")
    if not (checkpoint_dir(source) / "generator.safetensors").is_file():
        raise FileNotFoundError(f"{source} has no checkpoint to start from; train it first")


def recolour(batch: dict[str, torch.Tensor], channels: int, fraction: float) -> None:
    """Recolour a random ``fraction`` of a training batch's transitions in place, each the same
    way in its ``frames`` ``(B, history*C, H, W)`` and its next frames (``next_frame``
    ``(B, C, H, W)``, or with an unrolled batch ``next_frames`` ``(B, n, C, H, W)``)."""
    targets = batch.get("next_frames", batch["next_frame"][:, None])
    count = targets.shape[1]
    stacks = jitter_colours(torch.cat([batch["frames"], targets.flatten(1, 2)], dim=1), channels,
                            fraction)
    batch["frames"] = stacks[:, :-channels * count]
    recoloured = stacks[:, -channels * count:].unflatten(1, (count, channels))
    batch["next_frame"] = recoloured[:, 0]
    if "next_frames" in batch:
        batch["next_frames"] = recoloured


def _prepare_run_dir(run: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a run (or any other directory) by accident."""
    has_run = (run / RUN_FILE).is_file()
    if resume:
        if not has_run:
            raise FileNotFoundError(f"nothing to resume: {run} holds no world-model run")
        return
    if has_run and not overwrite:
        raise FileExistsError(f"{run} already holds a world-model run; pass --resume to continue "
                              "it or --overwrite to start over")
    if not has_run and written_entries(run):
        raise FileExistsError(f"{run} exists and is not a world-model run; choose an empty or "
                              "new directory")


def _check_finite(logs: dict[str, float], step: int, run: Path, last_checkpoint: int | None) -> None:
    bad = {key: value for key, value in logs.items() if not math.isfinite(value)}
    if bad:
        kept = (f"the last good checkpoint (step {last_checkpoint}) is kept in {run}"
                if last_checkpoint is not None else f"no checkpoint was written to {run} yet")
        raise TrainingDiverged(
            f"training diverged at step {step}: {', '.join(f'{k}={v}' for k, v in bad.items())}; "
            f"{kept}. Lower the learning rate or lambda_adv (--lr, --lambda-adv) and --resume")


class _Validation:
    """Fixed held-out batch, noise and grid rows, so numbers and pictures compare over time."""

    def __init__(self, dataset: Transitions, config: WorldModelConfig,
                 device: torch.device) -> None:
        self.batch = collate(dataset, evenly_spaced(len(dataset), VAL_BATCH), device)
        noise = torch.Generator().manual_seed(config.seed + 12345)
        self.z = torch.randn(len(self.batch["action"]), config.z_dim, generator=noise).to(device)
        self.grid_rows = evenly_spaced(len(self.batch["action"]), GRID_ROWS)
        self.config = config

    @torch.no_grad()
    def scores(self, generator: torch.nn.Module) -> dict[str, float]:
        """Mean PSNR of predictions and of copying the last frame (uint8 frames, dB)."""
        batch, channels = self.batch, self.config.channels
        predicted = to_uint8(generator(batch["frames"], batch["action"], self.z)).float()
        target = to_uint8(batch["next_frame"]).float()
        last = to_uint8(batch["frames"][:, -channels:]).float()
        return {"psnr": float(psnr(predicted, target, cap=PSNR_CAP_DB).mean()),
                "psnr_copy_last": float(psnr(last, target, cap=PSNR_CAP_DB).mean())}

    def grid(self, generator: torch.nn.Module) -> np.ndarray:
        rows = torch.as_tensor(self.grid_rows)
        return sample_grid(generator, self.batch["frames"][rows], self.batch["next_frame"][rows],
                           self.z[rows], self.config.n_actions, self.config.channels)


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _wrap(module: torch.nn.Module, context: Distributed) -> torch.nn.Module:
    if not context.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def train_worldmodel(data: str | Path, run: str | Path,
                     overrides: Mapping[str, Any] | None = None, resume: bool = False,
                     overwrite: bool = False, progress: bool = True,
                     init_from: str | Path | None = None) -> dict[str, Any]:
    """Train a world model on a recorded dataset into ``run``: SAD-GAN's generator and
    discriminator, or the VAE (``overrides["model"] = "vae"``, one process).

    Args:
        data: dataset directory (``rlgan record``), or outcome records (``rlgan safety collect``:
            every action's true next frame from the chosen states, e.g. to fine-tune with
            ``init_from`` on the states a shield will meet).
        run: run directory to create (or continue with ``resume``).
        overrides: :class:`WorldModelConfig` options (e.g. ``{"lambda_adv": 0.0}``).
        resume: continue the run's latest checkpoint up to ``steps``.
        overwrite: replace an existing world-model run in ``run``.
        progress: show a progress bar (rank 0).
        init_from: a finished world-model run whose generator this new run starts from (the
            discriminator and the optimisers start afresh), e.g. a ``lambda_adv = 0`` run
            fine-tuned adversarially, as SRGAN pretrains its generator on the pixel loss.
            Recorded in ``run.json``.

    Returns:
        The final progress: ``step``, ``samples_seen``, ``samples_per_second``, last ``logs``
        and ``val`` PSNRs, ``run``, and this process's ``rank``. Under ``torchrun`` only rank
        0's progress is complete (the other ranks return the step they started from).

    Raises:
        TrainingDiverged: a loss became NaN/inf (the last good checkpoint is kept).
        rlgan.data.DatasetError: empty, corrupt or unsuitable dataset.
        ValueError / TypeError / FileExistsError / FileNotFoundError: bad options or run dir
            (or a VAE under torchrun).
        rlgan.io.DirectoryBusyError: another process is writing ``run`` (rank 0 holds its lock).
    """
    run = Path(run)
    config, info = resolve_config(data, run, overrides, resume)
    if init_from is not None:
        if resume:
            raise ValueError("init_from (--init-from) starts a new run from another run's "
                             "generator; resume (--resume) continues this run's own checkpoint: "
                             "pass one of them")
        init_from = Path(init_from)
        if init_from.resolve() == run.resolve():
            raise ValueError(f"{run} cannot start from itself (--overwrite would delete the "
                             "weights to start from); write the new run elsewhere")
        check_init_from(init_from, config, info)
    context = setup(config.device)
    try:
        if config.model == "vae" and context.enabled:
            raise ValueError("model='vae' trains on one process; run it without torchrun")
        with main_rank_lock(context, run):
            return _train(Path(data), run, config, info, context, resume, overwrite, progress,
                          init_from)
    finally:
        teardown(context)


def _train(data: Path, run: Path, config: WorldModelConfig, info: DataInfo, context: Distributed,
           resume: bool, overwrite: bool, progress: bool,
           init_from: Path | None) -> dict[str, Any]:
    part = _training_part(data, config, info, context)
    _prepare_run_dir(run, resume, overwrite)
    barrier(context)  # every rank checked the directory before rank 0 changes it
    if context.is_main:
        if overwrite and not resume:
            clear_directory(run)  # all but the lock this rank holds
        save_run_info(run, config, info, init_from)
    torch.manual_seed(config.seed)
    nets = _Networks(config, context.device, init_from)
    clock = nets.restore(run) if resume and has_checkpoint(run) else _Clock()
    reporter = None
    if context.is_main:
        val_dataset = (open_dataset(data).transitions(config.history, info.val_episodes)
                       if info.val_episodes else part.dataset)
        reporter = _Reporter(run, _Validation(val_dataset, config, context.device), config,
                             clock.step, progress)
    update = nets.update_step(config, context, clock.step)
    rng = np.random.default_rng([config.seed, context.rank, clock.step])
    result: dict[str, Any] = {"step": clock.step, "samples_seen": clock.samples_seen,
                              "train_seconds": clock.train_seconds, "world_size": context.world_size}
    try:
        for step in range(clock.step + 1, config.steps + 1):
            logs = _train_step(part, nets, update, rng, config, context, clock, step)
            _check_finite(logs, step, run, clock.last_checkpoint)
            checkpoint_now = step % config.checkpoint_every == 0 or step == config.steps
            if reporter is not None:
                reporter.report(step, logs, nets.generator, clock)
                if checkpoint_now:
                    result = clock.progress(step, context.world_size, logs, reporter.val_scores)
                    nets.save(run, result)
                    reporter.flush()
            if checkpoint_now:
                clock.last_checkpoint = step
    finally:
        if reporter is not None:
            reporter.close()
    barrier(context)
    return {**result, "run": str(run), "rank": context.rank}


def _training_part(data: Path, config: WorldModelConfig, info: DataInfo,
                   context: Distributed) -> RankData:
    """This rank's training data, checked to hold unsafe transitions when they are oversampled.

    Raises:
        DatasetError: ``unsafe_fraction`` > 0 and the training episodes have no unsafe step.
    """
    part = rank_data(data, config.history, info.train_episodes, context.rank, context.world_size,
                     config.unroll)
    if config.unsafe_fraction and len(part.unsafe_rows) == 0:
        raise DatasetError(f"unsafe_fraction={config.unsafe_fraction} oversamples unsafe "
                           f"transitions, but the training episodes of {data} have none; record "
                           "crashes (e.g. --policy random) or set unsafe_fraction=0")
    return part


@dataclass
class _Clock:
    """How far training has gone: ``step`` and ``samples_seen`` (over all ranks),
    ``train_seconds`` of updates over the whole run, the same for this session alone, and the
    step of the last checkpoint (None before the first)."""

    step: int = 0
    samples_seen: int = 0
    train_seconds: float = 0.0
    last_checkpoint: int | None = None
    session_samples: int = 0
    session_seconds: float = 0.0

    def advance(self, samples: int, seconds: float) -> None:
        """Count one update of ``samples`` transitions that took ``seconds``."""
        self.samples_seen += samples
        self.session_samples += samples
        self.session_seconds += seconds
        self.train_seconds += seconds

    def progress(self, step: int, world_size: int, logs: dict[str, float],
                 val_scores: dict[str, float]) -> dict[str, Any]:
        """The progress saved with the checkpoint of ``step`` (and returned at the end)."""
        return {"step": step, "samples_seen": self.samples_seen, "train_seconds": self.train_seconds,
                "samples_per_second": self.session_samples / self.session_seconds,
                "world_size": world_size, "logs": logs, "val": val_scores}


class _Networks:
    """The predicting network (the GAN's generator or the VAE), the GAN's discriminator (None
    for the VAE) and their Adam optimisers; the predicting network is copied from
    ``init_from``'s checkpoint when given."""

    def __init__(self, config: WorldModelConfig, device: torch.device, init_from: Path | None) -> None:
        self.generator = predicting_network(config).to(device)
        self.discriminator = Discriminator(config).to(device) if config.model == "gan" else None
        if init_from is not None:  # load_state_dict copies onto the generator's device
            load_weights(self.generator, checkpoint_dir(init_from) / "generator.safetensors")
        nets = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=config.learning_rate,
                                                  betas=(config.beta1, config.beta2))
                           for name, net in nets.items() if net is not None}

    def restore(self, run: Path) -> _Clock:
        """Load the run's latest checkpoint; return where it stood."""
        done = load_checkpoint(run, self.generator, self.discriminator, self.optimizers)
        step = int(done["step"])
        return _Clock(step=step, samples_seen=int(done["samples_seen"]),
                      train_seconds=float(done["train_seconds"]), last_checkpoint=step)

    def update_step(self, config: WorldModelConfig, context: Distributed, start: int) -> GANStep | VAEStep:
        """The update of the networks (the GAN's wrapped for DDP under ``torchrun``), its
        noise seeded by the seed, the rank and the step it starts from."""
        noise = torch.Generator().manual_seed(config.seed * 1000 + context.rank + start)
        if config.model == "vae":
            return VAEStep(config, self.generator, self.optimizers["generator"], noise)
        g_train = _wrap(self.generator, context)
        d_train = _wrap(self.discriminator, context) if config.lambda_adv else self.discriminator
        return GANStep(config, g_train, d_train, self.optimizers["generator"],
                       self.optimizers["discriminator"], noise)

    def set_learning_rate(self, learning_rate: float) -> None:
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = learning_rate

    def save(self, run: Path, progress: dict[str, Any]) -> None:
        save_checkpoint(run, self.generator, self.discriminator, self.optimizers, progress)


def _train_step(part: RankData, nets: _Networks, update: GANStep | VAEStep, rng: np.random.Generator,
                config: WorldModelConfig, context: Distributed, clock: _Clock,
                step: int) -> dict[str, float]:
    """Draw this rank's batches, update the networks, count the step; return the losses
    averaged over ranks."""
    n_batches = config.d_steps if config.lambda_adv else 1
    batches = [collate(part.dataset, part.draw(rng, config.batch_size, config.unsafe_fraction),
                       context.device, config.unroll) for _ in range(n_batches)]
    if config.colour_jitter:
        for batch in batches:
            recolour(batch, config.channels, config.colour_jitter)
    nets.set_learning_rate(config.learning_rate_at(step))
    began = time.perf_counter()
    logs = mean_over_ranks(context, update(batches, step))
    clock.advance(config.batch_size * context.world_size, time.perf_counter() - began)
    return logs


class _Reporter:
    """Rank 0's outputs: the progress bar, TensorBoard scalars and ``samples.png``, with the
    validation PSNRs every ``log_every`` steps and a sample grid every ``sample_every``."""

    def __init__(self, run: Path, validation: _Validation, config: WorldModelConfig, start: int,
                 progress: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run, self.validation, self.config = run, validation, config
        self.writer = SummaryWriter(str(run / "tensorboard"), purge_step=start + 1)
        self.bar = tqdm(total=config.steps, initial=start, desc="worldmodel", unit="step",
                        disable=not progress)
        self.val_scores: dict[str, float] = {}

    def report(self, step: int, logs: dict[str, float], generator: torch.nn.Module,
               clock: _Clock) -> None:
        """Tick the bar; log and draw samples when ``step`` is due (always at the last step)."""
        self.bar.update(1)
        last = step == self.config.steps
        if step % self.config.log_every == 0 or last:
            generator.eval()
            self.val_scores = self.validation.scores(generator)
            generator.train()
            for key, value in logs.items():
                self.writer.add_scalar(f"loss/{key}", value, step)
            for key, value in self.val_scores.items():
                self.writer.add_scalar(f"val/{key}", value, step)
            self.writer.add_scalar("throughput/samples_per_second",
                                   clock.session_samples / clock.session_seconds, step)
            self.bar.set_postfix(l1=f"{logs['l1']:.4f}", psnr=f"{self.val_scores['psnr']:.1f}")
        if step % self.config.sample_every == 0 or last:
            generator.eval()
            grid = self.validation.grid(generator)
            generator.train()
            self.writer.add_image("samples", grid, step, dataformats="HWC")
            _write_png(self.run / "samples.png", grid)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
