"""A safety run directory: the trained classifier and what it was trained for.

Layout (format ``rlgan-safety-run`` version 1)::

    DIR/config.json             env id and kwargs, frame shape (H, W, C), number of actions,
                                decision threshold, classifier shape, training data and its
                                held-out episodes, the world-model run used for generated pairs
                                (absolute path, or null), training settings
    DIR/classifier.safetensors  classifier weights (a state_dict)
    DIR/metrics.json            held-out metrics written at the end of training

``rlgan shield eval --shield DIR`` loads the classifier from here and the world model from the
recorded ``worldmodel_run`` (``--worldmodel RUN`` overrides it). Files are written atomically.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from rlgan.config import config_to_dict
from rlgan.device import inference_memory_format
from rlgan.io import atomic_path, read_json, write_json
from rlgan.safety.classifier import ClassifierShape, MirrorAveraged, SafetyClassifier
from rlgan.weights import load_weights

FORMAT_NAME = "rlgan-safety-run"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "classifier.safetensors"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class SafetyRunInfo:
    """What a safety classifier was trained for (``config.json`` of a safety run).

    Attributes:
        env_id, env_kwargs: the environment of the training data.
        frame_shape: ``(H, W, C)`` of one frame.
        n_actions: the env's number of actions.
        threshold: P(unsafe) at or above which a pair counts as unsafe.
        classifier: the network's shape.
        data: the training dataset directory, relative to the run's directory.
        val_episodes: held-out episodes of ``data`` (never trained on).
        worldmodel_run: world-model run that produced the generated pairs, relative to the
            run's directory, or None.
        train: the training settings (``ClassifierConfig`` as a dict).
    """

    env_id: str
    env_kwargs: dict[str, Any]
    frame_shape: tuple[int, int, int]
    n_actions: int
    threshold: float
    classifier: ClassifierShape
    data: str
    val_episodes: tuple[int, ...]
    worldmodel_run: str | None = None
    train: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["classifier"] = config_to_dict(self.classifier)
        data["frame_shape"] = list(self.frame_shape)
        data["val_episodes"] = list(self.val_episodes)
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: Path) -> "SafetyRunInfo":
        if data.get("format") != FORMAT_NAME:
            raise ValueError(f"{where} is not a safety run (format {data.get('format')!r}, "
                             f"expected {FORMAT_NAME!r}); make one with rlgan safety train")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{where} has safety-run version {data.get('version')}, this rlgan "
                             f"reads version {FORMAT_VERSION}")
        try:
            return cls(
                env_id=data["env_id"], env_kwargs=dict(data["env_kwargs"]),
                frame_shape=tuple(data["frame_shape"]), n_actions=int(data["n_actions"]),
                threshold=float(data["threshold"]),
                classifier=ClassifierShape(**data["classifier"]), data=data["data"],
                val_episodes=tuple(data["val_episodes"]), worldmodel_run=data.get("worldmodel_run"),
                train=dict(data.get("train", {})))
        except (KeyError, TypeError) as error:
            raise ValueError(f"{where} is corrupt: {error!r}") from error


def check_compatible(what: str, env_id: str, frame_shape: tuple[int, ...], n_actions: int,
                     target: str, target_env_id: str, target_frame_shape: tuple[int, ...],
                     target_n_actions: int) -> None:
    """Raise ``ValueError`` when ``what`` (env, frame shape, actions) does not fit ``target``."""
    if env_id != target_env_id:
        raise ValueError(f"{what} was trained for {env_id}, but {target} is {target_env_id}")
    if tuple(frame_shape) != tuple(target_frame_shape):
        raise ValueError(f"{what} was trained on frames of shape {tuple(frame_shape)} (H, W, C), "
                         f"but {target} has {tuple(target_frame_shape)}")
    if int(n_actions) != int(target_n_actions):
        raise ValueError(f"{what} was trained with {n_actions} actions, {target} has {target_n_actions}")


def save_safety_run(directory: str | Path, model: SafetyClassifier, info: SafetyRunInfo,
                    metrics: dict[str, Any] | None = None) -> None:
    """Write the weights, then ``config.json`` (and ``metrics.json``), each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(weights, str(tmp))
    write_json(directory / CONFIG_FILE, info.to_json())
    if metrics is not None:
        write_json(directory / METRICS_FILE, metrics)


def read_safety_info(directory: str | Path) -> SafetyRunInfo:
    """The ``config.json`` of a safety run.

    Raises:
        FileNotFoundError: no such run; ValueError: not a safety run or corrupt.
    """
    directory = Path(directory)
    return SafetyRunInfo.from_json(read_json(directory / CONFIG_FILE, "safety run config"), directory)


def load_safety_run(directory: str | Path, device: str | torch.device = "cpu",
                    mirror_average: bool = False) -> tuple[SafetyClassifier | MirrorAveraged, SafetyRunInfo]:
    """The classifier (eval mode, on ``device``) and info of a safety run.

    Args:
        mirror_average: wrap the classifier in :class:`MirrorAveraged` (each pair scored as
            the mean of itself and its mirror image).

    Raises:
        FileNotFoundError / ValueError: missing, corrupt or mismatched files.
    """
    directory = Path(directory)
    info = read_safety_info(directory)
    model = SafetyClassifier(info.classifier)
    load_weights(model, directory / WEIGHTS_FILE)
    model = model.to(device, memory_format=inference_memory_format(device)).eval()
    return (MirrorAveraged(model).eval() if mirror_average else model), info
