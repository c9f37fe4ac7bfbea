"""Open-loop rollouts of a world model along recorded episodes, and their per-step metrics.

A rollout starts from the recorded frames up to t, takes the recorded actions t, t+1, ... and
feeds each predicted frame back as the newest input frame, so step k's prediction is compared
with the recorded frame t+k. Copy-last keeps frame t as its guess at every step.

Metrics are computed as in :mod:`rlgan.worldmodel.evaluate`: on predictions rounded to uint8,
on the 0..255 scale, PSNR and sharpness capped at :data:`rlgan.worldmodel.metrics.PSNR_CAP_DB`
per frame before averaging.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from rlgan.data.reader import Transitions, evenly_spaced
from rlgan.worldmodel.frames import observations_to_tensor, to_uint8, to_unit
from rlgan.worldmodel.metrics import PSNR_CAP_DB, psnr, sharpness, ssim

#: Per-step metrics of a rollout.
ROLLOUT_METRICS = ("psnr", "ssim", "sharpness")


class Predictor(Protocol):
    """What a rollout needs of a world model (:class:`rlgan.worldmodel.WorldModel`)."""

    history: int

    def predict(self, frames: torch.Tensor, actions: Any, n_samples: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor: ...


def steps_ahead(dataset: Transitions, items: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """How many consecutive recorded steps of its episode each item starts, up to ``depth``.

    Args:
        dataset: recorded transitions.
        items: item indices of ``dataset``.
        depth: most steps counted (>= 1).

    Returns:
        ``(steps, terminated)``: int ``(N,)`` in ``1..depth`` (the item's own step counts) and
        bool ``(N,)``, whether the last counted step ended its episode by termination (so
        nothing follows it, e.g. a crash) rather than the recording stopping.
    """
    rows = dataset.indices[np.asarray(items, dtype=np.int64)]
    episode, step = dataset.arrays["episode"], dataset.arrays["step"]
    steps = np.ones(len(rows), dtype=np.int64)
    going = np.ones(len(rows), dtype=bool)
    for k in range(1, depth):
        ahead = np.minimum(rows + k, len(episode) - 1)
        going &= (rows + k < len(episode)) & (episode[ahead] == episode[rows]) \
            & (step[ahead] == step[rows] + k)
        steps += going
    terminated = dataset.arrays["terminated"][rows + steps - 1].astype(bool)
    return steps, terminated


def rollout_starts(dataset: Transitions, depth: int, count: int) -> np.ndarray:
    """Up to ``count`` items, evenly spaced, whose episode goes on for ``depth`` recorded steps."""
    steps, _ = steps_ahead(dataset, np.arange(len(dataset)), depth)
    valid = np.flatnonzero(steps == depth)
    return valid[evenly_spaced(len(valid), count)] if len(valid) else valid


def start_frames(dataset: Transitions, items: np.ndarray, history: int) -> torch.Tensor:
    """The recorded frames up to t of ``items``: float ``(N, history, C, H, W)`` in [-1, 1]."""
    return to_unit(torch.stack([dataset[int(i)]["frames"][-history:] for i in items]))


def recorded_steps(dataset: Transitions, items: np.ndarray, depth: int,
                   field: str) -> np.ndarray:
    """``field`` of the ``depth`` recorded steps from each item, ``(N, depth, ...)``; rows past
    the end of the recording repeat its last row (callers mask them with :func:`steps_ahead`)."""
    rows = dataset.indices[np.asarray(items, dtype=np.int64)]
    ahead = np.minimum(rows[:, None] + np.arange(depth), len(dataset.arrays[field]) - 1)
    return dataset.arrays[field][ahead]


@torch.inference_mode()
def predict_rollout(model: Predictor, frames: torch.Tensor, actions: torch.Tensor,
                    noise: torch.Generator) -> torch.Tensor:
    """Open-loop predictions of frames t+1..t+D.

    Args:
        model: the world model.
        frames: float ``(B, history, C, H, W)`` in [-1, 1], the recorded frames up to t.
        actions: int64 ``(B, D)``, the actions taken at t..t+D-1.
        noise: CPU ``torch.Generator`` for the model's noise.

    Returns:
        float ``(B, D, C, H, W)`` in [-1, 1] on the CPU.

    Raises:
        ValueError: ``frames`` and ``actions`` of different batch sizes or bad shapes.
    """
    if frames.dim() != 5 or actions.dim() != 2 or len(frames) != len(actions):
        raise ValueError(f"expected frames (B, history, C, H, W) and actions (B, D) of one batch "
                         f"size, got {tuple(frames.shape)} and {tuple(actions.shape)}")
    history = frames[:, -model.history:].float()
    predicted = []
    for k in range(actions.shape[1]):
        step = model.predict(history, actions[:, k], 1, generator=noise)[:, 0].float().cpu()
        predicted.append(step)
        history = torch.cat([history[:, 1:], step[:, None].to(history.device)], dim=1)
    return torch.stack(predicted, dim=1)


def predict_path(model: Predictor, frames: torch.Tensor, actions: torch.Tensor,
                 noise: torch.Generator) -> torch.Tensor:
    """Frame t followed by :func:`predict_rollout`'s frames t+1..t+D: float ``(B, D + 1, C, H, W)``
    in [-1, 1] on the CPU, so that frames j and j+1 are the pair of step t+j."""
    return torch.cat([frames[:, -1:].float().cpu(), predict_rollout(model, frames, actions, noise)], dim=1)


def _scores(predicted: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame metrics of uint8-valued float frames ``(B, C, H, W)``."""
    return {"psnr": psnr(predicted, target, cap=PSNR_CAP_DB), "ssim": ssim(predicted, target),
            "sharpness": sharpness(predicted, target, cap=PSNR_CAP_DB)}


def rollout_metrics(model: Predictor, dataset: Transitions, depth: int, count: int,
                    noise: torch.Generator, baseline: Predictor | None = None,
                    batch_size: int = 64) -> dict[str, Any]:
    """Mean PSNR [dB], SSIM and sharpness [dB] at rollout steps 1..``depth``.

    Args:
        model: the world model.
        dataset: recorded transitions (rollouts start where ``depth`` steps follow).
        depth: rollout length in steps (>= 1).
        count: most rollouts (evenly spaced over the valid starts).
        noise: CPU ``torch.Generator`` for the models' noise.
        baseline: a second model rolled out from the same starts, or None.

    Returns:
        ``{metric}_by_depth``, ``{metric}_by_depth_copy_last`` and ``{metric}_by_depth_baseline``
        (None without a baseline) for every metric of :data:`ROLLOUT_METRICS`, lists of
        ``depth`` floats (empty when no episode is long enough), and ``rollouts``, their number.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    starts = rollout_starts(dataset, depth, count)
    candidates = {"": model, "_copy_last": None}
    if baseline is not None:
        candidates["_baseline"] = baseline
    scores: dict[str, list[list[torch.Tensor]]] = {}
    history = max(model.history, baseline.history if baseline is not None else 1)
    for begin in range(0, len(starts), batch_size):
        items = starts[begin:begin + batch_size]
        frames = start_frames(dataset, items, history)
        actions = torch.from_numpy(recorded_steps(dataset, items, depth, "action")).long()
        targets = observations_to_tensor(recorded_steps(dataset, items, depth, "next_obs")).float()
        for suffix, predictor in candidates.items():
            if predictor is None:
                guesses = to_uint8(frames[:, -1:]).float().expand_as(targets)
            else:
                guesses = to_uint8(predict_rollout(predictor, frames, actions, noise)).float()
            for k in range(depth):
                for name, values in _scores(guesses[:, k], targets[:, k]).items():
                    scores.setdefault(name + suffix, [[] for _ in range(depth)])[k].append(values)
    result: dict[str, Any] = {"rollouts": int(len(starts))}
    for name in ROLLOUT_METRICS:
        for suffix in ("", "_copy_last", "_baseline"):
            if suffix == "_baseline" and baseline is None:
                result[f"{name}_by_depth{suffix}"] = None
            elif len(starts) == 0:
                result[f"{name}_by_depth{suffix}"] = []
            else:
                result[f"{name}_by_depth{suffix}"] = [float(torch.cat(values).double().mean())
                                                      for values in scores[name + suffix]]
    return result
