"""A world-model run directory: settings, data identity and atomic checkpoints.

Layout::

    RUN/run.json                      format, WorldModelConfig, DataInfo (JSON)
    RUN/checkpoint/generator.safetensors      the predicting network: the GAN's generator or the VAE
    RUN/checkpoint/discriminator.safetensors  the GAN's discriminator (none for the VAE)
    RUN/checkpoint/optimizers.pt      Adam states (torch.save; loaded with weights_only=True)
    RUN/checkpoint/progress.json      step, samples seen, training time, last losses
    RUN/samples.png                   latest sample grid (frame t, true t+1, one per action)
    RUN/tensorboard/                  TensorBoard event files

A checkpoint is written into ``RUN/.checkpoint.tmp`` and swapped in by renaming directories, so
``RUN/checkpoint`` always holds one complete checkpoint (if a crash hits between the two
renames, the previous one is found in ``RUN/.checkpoint.old``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from rlgan.config import build_config, config_to_dict
from rlgan.io import read_json, write_json
from rlgan.weights import load_weights
from rlgan.worldmodel.config import EARLIER_VALUES, WorldModelConfig

RUN_FORMAT = "rlgan-worldmodel"
RUN_VERSION = 1
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoint"
_TMP_DIR = ".checkpoint.tmp"
_OLD_DIR = ".checkpoint.old"


@dataclass(frozen=True)
class DataInfo:
    """What a world model was trained on (from the dataset's metadata).

    Attributes:
        env_id: Gymnasium id of the recorded env.
        env_kwargs: its options (e.g. ``{"map": "day"}``).
        frame_shape: ``(H, W, C)`` of one frame.
        n_actions: size of the ``Discrete`` action space.
        dataset: path of the training dataset (relative to the run directory in ``run.json``).
        dataset_seed: the recording's seed (episode e was reset with ``seed + e``).
        shards: sha256 of every shard, which identifies the dataset wherever it is moved.
        train_episodes, val_episodes: the episode split (``val_episodes`` are held out).
    """

    env_id: str
    env_kwargs: dict[str, Any]
    frame_shape: tuple[int, int, int]
    n_actions: int
    dataset: str
    dataset_seed: int
    shards: tuple[str, ...]
    train_episodes: tuple[int, ...]
    val_episodes: tuple[int, ...]

    def describe(self) -> str:
        """``rlgan/Driving-v0 {'map': 'day'}, frames (64, 64, 3), 3 actions``."""
        return (f"{self.env_id} {self.env_kwargs}, frames {tuple(self.frame_shape)}, "
                f"{self.n_actions} actions")

    def check_compatible(self, what: str, env_id: str, frame_shape: tuple[int, ...],
                         n_actions: int) -> None:
        """Raise ``ValueError`` unless ``what`` has this env id, frame shape and action count.

        Env options (e.g. the map) may differ: testing on another map is a transfer test.
        """
        if (env_id != self.env_id or tuple(frame_shape) != tuple(self.frame_shape)
                or int(n_actions) != self.n_actions):
            raise ValueError(
                f"{what} is {env_id}, frames {tuple(frame_shape)}, {n_actions} actions, but the "
                f"world model was trained on {self.describe()}; record data with the same env "
                "and frame size, or train a world model on this data")


def run_file(run_dir: str | Path) -> Path:
    return Path(run_dir) / RUN_FILE


def save_run_info(run_dir: str | Path, config: WorldModelConfig, data: DataInfo,
                  init_from: str | Path | None = None) -> None:
    """Write ``RUN/run.json`` atomically (``init_from``: the run whose generator it started
    from, kept for the record). Paths are written relative to the run directory, so a run
    can be moved or bundled with its data."""
    data = dataclasses.replace(data, dataset=os.path.relpath(data.dataset, run_dir))
    info = {"format": RUN_FORMAT, "version": RUN_VERSION, "config": config_to_dict(config),
            "data": config_to_dict(data)}
    if init_from is not None:
        info["init_from"] = os.path.relpath(init_from, run_dir)
    write_json(run_file(run_dir), info)


def load_run_info(run_dir: str | Path) -> tuple[WorldModelConfig, DataInfo]:
    """Read ``RUN/run.json``.

    Raises:
        FileNotFoundError: ``run_dir`` holds no world-model run.
        ValueError: the file is corrupt or of another format.
    """
    path = run_file(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a world-model run (no {RUN_FILE}); train one "
                                "with: rlgan worldmodel train --data DIR --run RUN")
    info = read_json(path, what="world-model run file")
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        raise ValueError(f"{path} is not a {RUN_FORMAT} run file")
    if info.get("version") != RUN_VERSION:
        raise ValueError(f"{path}: unsupported run version {info.get('version')!r}, this rlgan "
                         f"reads version {RUN_VERSION}")
    try:
        config = build_config(WorldModelConfig, {**EARLIER_VALUES, **info["config"]})
        data = info["data"]
        data_info = DataInfo(**{**data, "frame_shape": tuple(data["frame_shape"]),
                                "shards": tuple(data["shards"]),
                                "train_episodes": tuple(data["train_episodes"]),
                                "val_episodes": tuple(data["val_episodes"])})
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path} is corrupt: {error}") from error
    return config, data_info


def _state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies of a module's tensors (safetensors stores plain arrays)."""
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}


def checkpoint_dir(run_dir: str | Path) -> Path:
    """The directory holding the latest complete checkpoint of ``run_dir``.

    Raises:
        FileNotFoundError: the run has no checkpoint yet.
    """
    run_dir = Path(run_dir)
    for name in (CHECKPOINT_DIR, _OLD_DIR):
        if (run_dir / name / "progress.json").is_file():
            return run_dir / name
    raise FileNotFoundError(f"world-model run {run_dir} has no checkpoint yet")


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a complete checkpoint (a run stopped before its first has none)."""
    try:
        checkpoint_dir(run_dir)
    except FileNotFoundError:
        return False
    return True


def save_checkpoint(run_dir: str | Path, generator: nn.Module, discriminator: nn.Module | None,
                    optimizers: dict[str, torch.optim.Optimizer], progress: dict[str, Any]) -> None:
    """Write a complete checkpoint and swap it in atomically (see the module docstring);
    ``discriminator`` is None for a VAE."""
    run_dir = Path(run_dir)
    tmp, old, final = run_dir / _TMP_DIR, run_dir / _OLD_DIR, run_dir / CHECKPOINT_DIR
    if old.exists() and not final.exists():  # a swap was interrupted: the old one is the latest
        os.replace(old, final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    step = str(progress["step"])
    save_file(_state_dict(generator), str(tmp / "generator.safetensors"), metadata={"step": step})
    if discriminator is not None:
        save_file(_state_dict(discriminator), str(tmp / "discriminator.safetensors"),
                  metadata={"step": step})
    torch.save({name: optimizer.state_dict() for name, optimizer in optimizers.items()},
               tmp / "optimizers.pt")
    write_json(tmp / "progress.json", progress)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_progress(run_dir: str | Path) -> dict[str, Any]:
    """``progress.json`` of the latest checkpoint (step, samples, losses)."""
    return read_json(checkpoint_dir(run_dir) / "progress.json", what="checkpoint progress")


def load_checkpoint(run_dir: str | Path, generator: nn.Module,
                    discriminator: nn.Module | None = None,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None) -> dict[str, Any]:
    """Load the latest checkpoint into the given networks/optimisers; return its progress.

    Raises:
        FileNotFoundError / ValueError: no checkpoint, or a corrupt one.
    """
    directory = checkpoint_dir(run_dir)
    load_weights(generator, directory / "generator.safetensors")
    if discriminator is not None:
        load_weights(discriminator, directory / "discriminator.safetensors")
    if optimizers:
        try:
            states = torch.load(directory / "optimizers.pt", map_location="cpu", weights_only=True)
            for name, optimizer in optimizers.items():
                optimizer.load_state_dict(states[name])
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            raise ValueError(f"optimizer states in {directory} are corrupt: {error}") from error
    return read_json(directory / "progress.json", what="checkpoint progress")

