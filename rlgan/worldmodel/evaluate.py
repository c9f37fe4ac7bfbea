"""``rlgan worldmodel eval``: how well a world model predicts held-out transitions.

1. One-step PSNR, SSIM and sharpness of the prediction, of copying the last frame, and of a
   regression baseline (a ``lambda_adv = 0`` run) when one is given; then also the model's
   paired gain over the baseline per metric (mean over transitions of model - baseline) and
   its standard error over episodes (transitions of one episode are alike, so the episodes'
   mean gains are the independent samples), so a difference can be told from noise.
2. Open-loop rollouts (:mod:`rlgan.worldmodel.rollouts`): PSNR, SSIM and sharpness at steps
   1..D (16 by default) when predictions are fed back as input, of the model, of copy-last and
   of the baseline.
3. Counterfactual accuracy: held-out states are rebuilt in the true simulator by replaying
   their episode (episode e was reset with ``seed + e``), every action is taken from each, and
   the prediction for action a must be closer (MSE) to the true next frame of a than to the
   true next frame of every other action whose frame differs.

Outcome records (``rlgan safety collect``) hold every action's true next frame already, so
their counterfactual test reads those instead of replaying; they keep no episode's sequence of
steps, so they give no open-loop rollouts.

Metrics are computed on predictions rounded to uint8, on the 0..255 scale; per-frame PSNR and
sharpness are capped at :data:`rlgan.worldmodel.metrics.PSNR_CAP_DB` before averaging.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from rlgan.data.reader import DatasetReader, Transitions, evenly_spaced, open_dataset
from rlgan.worldmodel.data import dataset_identity
from rlgan.worldmodel.frames import observations_to_tensor, to_uint8, to_unit
from rlgan.worldmodel.metrics import PSNR_CAP_DB, psnr, sharpness, ssim
from rlgan.worldmodel.predictor import WorldModel
from rlgan.worldmodel.rollouts import ROLLOUT_METRICS, rollout_metrics


def _frames(dataset: Transitions, items: np.ndarray) -> dict[str, torch.Tensor]:
    batch = default_collate([dataset[int(i)] for i in items])
    return {"frames": to_unit(batch["frames"]), "next_frame": batch["next_frame"].float(),
            "action": batch["action"]}


def _predict(model: WorldModel, frames: torch.Tensor, actions: torch.Tensor,
             noise: torch.Generator) -> torch.Tensor:
    """One prediction per row on the 0..255 scale, float ``(B, C, H, W)`` on the CPU."""
    history = frames[:, -model.history:]
    return to_uint8(model.predict(history, actions, 1, generator=noise)[:, 0]).float().cpu()


#: Open-loop rollout steps reported by default.
DEFAULT_DEPTH = 16
#: One-step metrics, each per transition.
METRICS = ("psnr", "ssim", "sharpness")


def _scores(predicted: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"psnr": psnr(predicted, target, cap=PSNR_CAP_DB), "ssim": ssim(predicted, target),
            "sharpness": sharpness(predicted, target, cap=PSNR_CAP_DB)}


def one_step(model: WorldModel, dataset: Transitions, items: np.ndarray,
             baseline: WorldModel | None, noise: torch.Generator,
             batch_size: int = 64) -> dict[str, float | None]:
    """Mean one-step PSNR/SSIM/sharpness of the model, copy-last and the baseline, and with a
    baseline the paired gains ``{metric}_gain`` and their standard errors ``{metric}_gain_stderr``."""
    scores: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(items), batch_size):
        batch = _frames(dataset, items[start:start + batch_size])
        target = batch["next_frame"]
        candidates = {"": _predict(model, batch["frames"], batch["action"], noise),
                      "_copy_last": to_uint8(batch["frames"][:, -1]).float()}
        if baseline is not None:
            candidates["_baseline"] = _predict(baseline, batch["frames"], batch["action"], noise)
        for suffix, predicted in candidates.items():
            for name, values in _scores(predicted, target).items():
                scores.setdefault(name + suffix, []).append(values)
    per_transition = {key: torch.cat(values).double() for key, values in scores.items()}
    episodes = torch.from_numpy(dataset.arrays["episode"][dataset.indices[items]])
    result: dict[str, float | None] = {key: float(values.mean())
                                       for key, values in per_transition.items()}
    for metric in METRICS:
        if baseline is None:
            result.update({f"{metric}_baseline": None, f"{metric}_gain": None,
                           f"{metric}_gain_stderr": None})
            continue
        gain = per_transition[metric] - per_transition[f"{metric}_baseline"]
        result[f"{metric}_gain"] = float(gain.mean())
        result[f"{metric}_gain_stderr"] = stderr_over_groups(gain, episodes)
    return result


def stderr_over_groups(values: torch.Tensor, groups: torch.Tensor) -> float | None:
    """Standard error of the mean of ``values`` when rows of one group (e.g. an episode) are
    correlated: the spread of the groups' means over the square root of their number; None
    with fewer than two groups."""
    _, group_index = torch.unique(groups, return_inverse=True)
    n_groups = int(group_index.max()) + 1 if len(group_index) else 0
    if n_groups < 2:
        return None
    sums = torch.zeros(n_groups, dtype=values.dtype).index_add_(0, group_index, values)
    counts = torch.bincount(group_index, minlength=n_groups).to(values.dtype)
    return float((sums / counts).std() / n_groups ** 0.5)


def counterfactual(model: WorldModel, dataset: Transitions, items: np.ndarray,
                   true_frames: np.ndarray, noise: torch.Generator,
                   batch_size: int = 32) -> dict[str, Any]:
    """Counterfactual accuracy of ``model`` on the states of ``items``.

    A (state, action a) pair counts when some other action's true frame differs from a's; it
    is correct when the prediction for a is strictly closer (MSE) to a's true frame than to
    every differing one. A state counts when any of its pairs counts and is correct when all
    its counted pairs are.
    """
    n_actions = model.n_actions
    pairs_counted = pairs_correct = states_counted = states_correct = 0
    for begin in range(0, len(items), batch_size):
        chunk = items[begin:begin + batch_size]
        frames = _frames(dataset, chunk)["frames"].repeat_interleave(n_actions, dim=0)
        actions = torch.arange(n_actions).repeat(len(chunk))
        predicted = _predict(model, frames, actions, noise)
        predicted = predicted.reshape(len(chunk), n_actions, -1)  # (S, A, P)
        true = observations_to_tensor(true_frames[begin:begin + batch_size]).float()
        true = true.reshape(len(chunk), n_actions, -1)  # (S, A, P)
        mse = (predicted[:, :, None] - true[:, None]).pow(2).mean(dim=-1)  # (S, A pred, A true)
        differs = (true[:, :, None] != true[:, None]).any(dim=-1)  # (S, A, A)
        own = mse.diagonal(dim1=1, dim2=2)[:, :, None]  # (S, A, 1)
        counted = differs.any(dim=-1)  # (S, A)
        correct = ((own < mse) | ~differs).all(dim=-1) & counted
        pairs_counted += int(counted.sum())
        pairs_correct += int(correct.sum())
        state_counted = counted.any(dim=1)
        states_counted += int(state_counted.sum())
        states_correct += int((state_counted & (correct | ~counted).all(dim=1)).sum())
    return {"counterfactual_accuracy": states_correct / states_counted if states_counted else None,
            "counterfactual_pair_accuracy": pairs_correct / pairs_counted if pairs_counted else None,
            "counterfactual_states": states_counted,
            "counterfactual_states_skipped": int(len(items)) - states_counted}


def evaluate_worldmodel(run: str | Path, data: str | Path, env_id: str | None = None,
                        env_kwargs: Mapping[str, Any] | None = None, baseline_run: str | Path | None = None,
                        max_samples: int = 2000, states: int = 200, depth: int = DEFAULT_DEPTH, rollouts_count: int = 256,
                        device: str | torch.device = "cpu", seed: int = 0) -> dict[str, Any]:
    """Every metric of ``rlgan worldmodel eval`` as one dict (see the module docstring).

    Args:
        run: world-model run.
        data: dataset; when it is the run's training dataset only its held-out episodes are
            used, any other dataset (e.g. another map) is used whole.
        env_id, env_kwargs: simulator for the counterfactual test (default: the data's; the
            kwargs update the data's, e.g. ``{"map": "night"}``).
        baseline_run: a ``lambda_adv = 0`` run to compare with, or None.
        max_samples: most transitions for the one-step metrics.
        states: most states for the counterfactual test (0 skips it).
        depth, rollouts_count: open-loop depth and number of rollouts.
        device: where the networks run.
        seed: seed of the noise z.

    Raises:
        ValueError / FileNotFoundError / rlgan.data.DatasetError: mismatched or bad inputs.
    """
    for name, value, least in (("max_samples (--samples)", max_samples, 1),
                               ("states (--states)", states, 0), ("depth (--depth)", depth, 1),
                               ("rollouts_count (--rollouts)", rollouts_count, 1)):
        if value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")
    model, baseline, identity = _checked_models(run, baseline_run, data, env_id, device)
    episodes, split = evaluated_episodes(model, identity)
    reader = open_dataset(data)
    dataset = reader.transitions(max(model.history, baseline.history if baseline else 1), episodes)
    noise = torch.Generator().manual_seed(seed)
    result: dict[str, Any] = {
        "run": str(run), "step": model.step, "data": str(data), "split": split,
        "episodes": int(len(dataset.episode_ids())),
        "env_id": identity["env_id"], "env_kwargs": {**identity["env_kwargs"], **(env_kwargs or {})},
        "baseline_run": str(baseline_run) if baseline_run else None,
    }
    items = evenly_spaced(len(dataset), max_samples)
    result["samples"] = int(len(items))
    result.update(one_step(model, dataset, items, baseline, noise))
    result.update(no_rollouts(baseline is not None) if reader.every_action
                  else rollout_metrics(model, dataset, depth, rollouts_count, noise, baseline))
    result.update(_counterfactual_metrics(model, reader, dataset, states, result["env_kwargs"], noise))
    return result


def no_rollouts(with_baseline: bool) -> dict[str, Any]:
    """The rollout entries of data that has none (outcome records): empty lists, no rollouts."""
    result: dict[str, Any] = {"rollouts": 0}
    for name in ROLLOUT_METRICS:
        result.update({f"{name}_by_depth": [], f"{name}_by_depth_copy_last": [],
                       f"{name}_by_depth_baseline": [] if with_baseline else None})
    return result


def _checked_models(run: str | Path, baseline_run: str | Path | None, data: str | Path,
                    env_id: str | None, device: str | torch.device) -> tuple[WorldModel, WorldModel | None, dict[str, Any]]:
    """The model, the baseline (or None) and the data's identity, checked to fit each other.

    Raises:
        ValueError / FileNotFoundError / rlgan.data.DatasetError: a run or the data is missing,
            or they (or ``env_id``) belong to different envs or frame sizes.
    """
    model = WorldModel.load(run, device)
    identity = dataset_identity(data)
    model.check_compatible(f"dataset {data}", identity["env_id"], identity["frame_shape"],
                           identity["n_actions"])
    baseline = WorldModel.load(baseline_run, device) if baseline_run else None
    if baseline is not None:
        baseline.check_compatible(f"dataset {data}", identity["env_id"], identity["frame_shape"],
                                  identity["n_actions"])
    if env_id is not None and env_id != identity["env_id"]:
        raise ValueError(f"--env {env_id} differs from the env the data was recorded in "
                         f"({identity['env_id']}); the counterfactual replay needs the same env")
    return model, baseline, identity


def evaluated_episodes(model: WorldModel, identity: dict[str, Any]) -> tuple[list[int] | None, str]:
    """The episodes to evaluate (None: all) and their description: the run's held-out
    episodes when the data is its training data and it held some out, else every episode."""
    same_data = identity["shards"] == tuple(model.data.shards)
    episodes = list(model.data.val_episodes) if same_data and model.data.val_episodes else None
    split = ("held-out episodes" if episodes is not None
             else "all episodes (training data, none held out)" if same_data
             else "all episodes (not the training data)")
    return episodes, split


def _counterfactual_metrics(model: WorldModel, reader: DatasetReader, dataset: Transitions,
                            states: int, env_kwargs: Mapping[str, Any],
                            noise: torch.Generator) -> dict[str, Any]:
    """:func:`counterfactual` on up to ``states`` states of ``dataset`` (None and zero counts
    when ``states`` is 0), their true next frames from ``reader``."""
    if states == 0:
        return {"counterfactual_accuracy": None, "counterfactual_pair_accuracy": None,
                "counterfactual_states": 0, "counterfactual_states_skipped": 0}
    items, true_frames = reader.action_outcomes(dataset, states, env_kwargs)
    return counterfactual(model, dataset, items, true_frames, noise)
