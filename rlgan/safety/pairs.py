"""The safety classifier's examples: (frame t, frame t+1) pairs with their ``unsafe`` label.

From recorded transitions (``rlgan record``), pairs are the recorded steps with the env's
ground-truth ``unsafe`` label (:func:`real_pairs`). With a world model, pairs whose second frame
the generator predicted from the same recorded frames are built too (:func:`generated_pairs`),
so the classifier also works on the frames the search feeds it; with ``counterfactual`` every
action from each chosen state gets a pair, labelled by replaying the state in the true
simulator. With a rollout depth the generated pairs follow open-loop rollouts of the model
along the recorded actions, so the classifier also learns the frames a deeper search judges.
With a doom horizon every label is read again from the true simulator, and a step into a
state from which every continuation crashes within the horizon counts as unsafe too
(:mod:`rlgan.safety.labels`).

Outcome records (:mod:`rlgan.data.outcomes`, ``rlgan safety collect``) give pairs for every
action from the states an agent met before its unsafe steps, labelled when collected: real
pairs with the true next frames and, with a world model, generated pairs with its predictions
(:func:`outcome_pairs`). :func:`dataset_pairs` builds the pairs of either kind of data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.data import DatasetError, TransitionDataset
from rlgan.data.outcomes import outcome_shards
from rlgan.data.reader import DatasetReader
from rlgan.safety.labels import replayed_labels, replayed_outcomes
from rlgan.safety.run import check_compatible
from rlgan.safety.search import NextFramePredictor
from rlgan.worldmodel.frames import to_uint8, to_unit
from rlgan.worldmodel.rollouts import predict_path, recorded_steps, start_frames, steps_ahead

#: The choices of :attr:`PairOptions.counterfactual_frames`.
COUNTERFACTUAL_FRAMES = ("generated", "real", "both")


@dataclass
class PairSet:
    """Classifier examples: bool ``unsafe`` ``(N,)``, uint8 frames t+1 ``frame_t1`` ``(N, C, H, W)``
    and uint8 frames t ``frame_t`` ``(S, C, H, W)``.

    Pair ``i``'s frame t is ``frame_t[frame_t_index[i]]``, or ``frame_t[i]`` when
    ``frame_t_index`` (int64 ``(N,)``) is None: outcome records give every action of a state
    its pair, and keep the state's frame once for all of them.
    """

    frame_t: torch.Tensor
    frame_t1: torch.Tensor
    unsafe: np.ndarray
    frame_t_index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.unsafe)

    def frames_t(self, pairs: torch.Tensor | slice) -> torch.Tensor:
        """The frames t of ``pairs`` (indices or a slice), uint8 ``(n, C, H, W)``."""
        return self.frame_t[pairs if self.frame_t_index is None else self.frame_t_index[pairs]]

    @staticmethod
    def joined(parts: list[PairSet]) -> PairSet:
        """The pairs of ``parts`` one after another (``parts[0]`` itself when there is one);
        each part keeps a frame t per pair (no ``frame_t_index``)."""
        if len(parts) == 1:
            return parts[0]
        if any(pairs.frame_t_index is not None for pairs in parts):
            raise ValueError("joined takes pairs that keep a frame t per pair")
        return PairSet(frame_t=torch.cat([pairs.frame_t for pairs in parts]),
                       frame_t1=torch.cat([pairs.frame_t1 for pairs in parts]),
                       unsafe=np.concatenate([pairs.unsafe for pairs in parts]))


@dataclass(frozen=True)
class PairOptions:
    """How pairs are built from recorded transitions (outcome records were labelled when
    collected and take the defaults); checked by the callers' configs
    (:class:`rlgan.safety.training.ClassifierConfig`).

    Attributes:
        doom_horizon: label a step unsafe also when it lands in a doomed state of this
            horizon (0..4; 0 labels the step alone).
        counterfactual: generated pairs for every action from each chosen state, labelled by
            replaying it (else the recorded action's pair only, with its recorded label).
        max_generated: most generated pairs (every unsafe step first, then safe ones).
        counterfactual_frames: frames t+1 of counterfactual pairs: ``"generated"``, ``"real"``
            (the true simulator's) or ``"both"``.
        rollout_depth: steps of the open-loop rollout from each chosen state (the recorded
            actions); every pair of consecutive frames along it is a generated pair, labelled
            with the recorded step's ``unsafe``. 1: the one-step pairs.
    """

    doom_horizon: int = 0
    counterfactual: bool = False
    max_generated: int = 4096
    counterfactual_frames: str = "generated"
    rollout_depth: int = 1


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


def check_predictor(predictor: NextFramePredictor, metadata: dict[str, Any], data: Path) -> None:
    """Raise ``ValueError`` unless the world model ``predictor`` fits the data's env, frame
    shape and actions."""
    env_id = getattr(predictor, "env_id", metadata["env_id"])
    check_compatible("the world model", env_id, tuple(predictor.frame_shape), predictor.n_actions,
                     f"the data in {data}", metadata["env_id"], tuple(metadata["obs_shape"]),
                     metadata["n_actions"])


def check_options(reader: DatasetReader, options: PairOptions) -> None:
    """Raise ``ValueError`` when ``options`` ask outcome records for what they hold already
    (``counterfactual``, a ``doom_horizon``: every action's outcome, labelled when collected)
    or for rollouts (they keep states, not episodes)."""
    if reader.every_action and (options.counterfactual or options.doom_horizon):
        raise ValueError("outcome records already hold every action's outcome, labelled when "
                         "collected: leave counterfactual and doom_horizon unset (rlgan safety "
                         "collect --doom-horizon sets the horizon)")
    if reader.every_action and options.rollout_depth > 1:
        raise ValueError("outcome records keep single states, not the episodes a rollout follows: "
                         "rollout_depth > 1 needs a dataset from rlgan record")


def available_memory() -> int | None:
    """Bytes the kernel can give new allocations without swapping (Linux's ``MemAvailable``), or
    None where it is not reported."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_outcome_pairs_fit(reader: DatasetReader, generated: bool) -> None:
    """Raise ``ValueError`` when the pairs of every outcome record of ``reader``
    (:func:`outcome_pairs`; with ``generated``, the predicted ones too) take more bytes than the
    memory available, before any is built: a clear error instead of the kernel killing the
    process.
    """
    metadata = reader.metadata
    records = sum(int(entry["records"]) for entry in metadata["shards"])
    frames = 1 + (2 if generated else 1) * int(metadata["n_actions"])
    shape = frame_shape_of(metadata, reader.root)
    needed = records * frames * int(np.prod(shape))
    available = available_memory()
    if available is not None and needed > available:
        raise ValueError(f"the classifier's pairs of the {records:,} outcome records in {reader.root} "
                         f"take about {needed / 1e9:.1f} GB ({frames} frames of {shape} per record), "
                         f"more than the {available / 1e9:.1f} GB of memory available: free memory "
                         "or collect fewer episodes")


def dataset_pairs(reader: DatasetReader, episodes: list[int] | None,
                  predictor: NextFramePredictor | None, device: torch.device,
                  rng: np.random.Generator, options: PairOptions = PairOptions(),
                  require_unsafe: bool = False) -> tuple[PairSet, PairSet | None]:
    """``(real, generated)`` pairs of ``episodes`` (all when None) of either kind of data;
    ``generated`` is None without a ``predictor``.

    Args:
        rng: draws the safe states of generated pairs from recorded transitions.
        options: how pairs of recorded transitions are built (outcome records, labelled when
            collected, ignore them: see :func:`check_options`).
        require_unsafe: raise unless the real pairs hold an unsafe one (checked before the
            generated pairs of recorded transitions are built).

    Raises:
        DatasetError: bad data, or no unsafe pair when ``require_unsafe``.
    """
    if reader.every_action:
        real, generated = outcome_pairs(reader.root, episodes, predictor, device)
        if require_unsafe:
            _check_has_unsafe(real, reader.root)
        return real, generated
    real = real_pairs(reader.root, episodes, options.doom_horizon)
    if require_unsafe:
        _check_has_unsafe(real, reader.root)
    if predictor is None:
        return real, None
    return real, generated_pairs(reader.root, episodes, predictor, options.max_generated, rng, device,
                                 options.counterfactual, options.doom_horizon,
                                 frames=options.counterfactual_frames,
                                 rollout_depth=options.rollout_depth)


def _check_has_unsafe(pairs: PairSet, data: Path) -> None:
    if not pairs.unsafe.any():
        raise DatasetError(f"the training episodes of {data} hold no unsafe step to learn from; "
                           "record more steps or with more exploration (--epsilon, --policy random)")


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
                    frames: str = "generated", rollout_depth: int = 1) -> PairSet:
    """(frame t, predicted frame t+1) pairs from the states of every unsafe step of
    ``episodes`` and of safe steps, ``max_pairs`` in all.

    Without ``every_action`` each state gives the pair of its recorded action, labelled with
    the recorded ``unsafe``. With it each state gives a pair for every action, labelled by
    replaying the state in the true simulator (:mod:`rlgan.data.replay`): the classifier then
    sees, in the same traffic, which keys crash and which do not. A ``doom_horizon`` replays
    the labels either way and adds doomed steps (:mod:`rlgan.safety.labels`). With
    ``every_action``, ``frames`` picks the frames t+1: ``"generated"``, ``"real"`` (the true
    next frames of the replay) or ``"both"`` (twice the pairs).

    A ``rollout_depth`` above 1 (neither ``every_action`` nor a ``doom_horizon``) gives the
    pairs along open-loop rollouts instead (:func:`rollout_pairs`), from up to
    ``max_pairs // rollout_depth`` states: every unsafe step and the ``rollout_depth - 1``
    steps before it first, so the rollouts that run into a crash are kept.

    Raises:
        ValueError: ``rollout_depth`` above 1 with ``every_action`` or a ``doom_horizon``.
    """
    dataset = TransitionDataset(root, history=int(predictor.history), episodes=episodes)
    if rollout_depth > 1:
        if every_action or doom_horizon:
            raise ValueError("rollout pairs take the recorded labels: rollout_depth > 1 goes "
                             "without counterfactual and doom_horizon")
        chosen = _chosen_states(dataset, max(1, max_pairs // rollout_depth), rollout_depth - 1, rng)
        return rollout_pairs(dataset, chosen, predictor, rollout_depth, rng, device, batch_size)
    n_actions = int(predictor.n_actions) if every_action else 1
    chosen = _chosen_states(dataset, max(1, max_pairs // n_actions), doom_horizon, rng)
    labels, true_frames = _state_labels(dataset, chosen, n_actions, every_action, doom_horizon)
    predict = not every_action or frames != "real"
    frame_t, frame_t1 = _pair_frames(dataset, chosen, predictor if predict else None, n_actions,
                                     every_action, device, batch_size)
    parts = []
    if predict:
        parts.append(PairSet(frame_t=frame_t, frame_t1=frame_t1, unsafe=labels))
    if every_action and frames != "generated":
        true_t1 = torch.from_numpy(true_frames.reshape(-1, *true_frames.shape[2:])).permute(0, 3, 1, 2)
        parts.append(PairSet(frame_t=frame_t, frame_t1=true_t1.contiguous(), unsafe=labels))
    return PairSet.joined(parts)


def _chosen_states(dataset: TransitionDataset, n_states: int, lead: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Sorted items of up to ``n_states`` states: every unsafe step and the ``lead`` steps
    before it first (those that lead into a doomed state or a rollout's crash), the rest safe
    steps drawn by ``rng``."""
    unsafe = dataset.arrays["unsafe"][dataset.indices]
    positives = np.flatnonzero(unsafe)
    if lead:
        positives = steps_before(dataset, positives, lead)
    negatives = np.setdiff1d(np.arange(len(unsafe)), positives)
    n_negatives = max(0, min(len(negatives), n_states - len(positives)))
    return np.sort(np.concatenate([positives[:n_states],
                                   rng.choice(negatives, n_negatives, replace=False)]))


def _state_labels(dataset: TransitionDataset, chosen: np.ndarray, n_actions: int,
                  every_action: bool, doom_horizon: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Bool labels of the pairs of ``chosen``, state-major ``(len(chosen) * n_actions,)``, and
    the true frames t+1 ``(len(chosen), n_actions, H, W, C)`` when they were replayed (else
    None): replayed with ``every_action`` or a ``doom_horizon``, else the recorded ones."""
    if not (every_action or doom_horizon):
        return dataset.arrays["unsafe"][dataset.indices][chosen], None
    metadata = dataset.metadata
    actions = (np.tile(np.arange(n_actions), (len(chosen), 1)) if every_action
               else dataset.arrays["action"][dataset.indices[chosen], None])
    labels, true_frames = replayed_outcomes(dataset, chosen, actions, metadata["env_id"],
                                            metadata["env_kwargs"], doom_horizon)
    return labels.reshape(-1), true_frames  # (state 0, action 0), (state 0, action 1), ...


def _pair_frames(dataset: TransitionDataset, chosen: np.ndarray, predictor: NextFramePredictor | None,
                 n_actions: int, every_action: bool, device: torch.device,
                 batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frames t uint8 ``(len(chosen) * n_actions, C, H, W)`` of the pairs of ``chosen`` and the
    predictor's frames t+1 for them (None without a predictor), in ``batch_size`` states."""
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
        if predictor is not None:
            frame_t1.append(predicted_frames(predictor, history, actions))
    return torch.cat(frame_t), torch.cat(frame_t1) if predictor is not None else None


@torch.no_grad()
def rollout_pairs(dataset: TransitionDataset, chosen: np.ndarray, predictor: NextFramePredictor,
                  depth: int, rng: np.random.Generator, device: torch.device,
                  batch_size: int = 64) -> PairSet:
    """Every pair of consecutive frames along ``depth``-step open-loop rollouts from the items
    ``chosen``, labelled with the recorded ``unsafe`` of the step each pair stands for.

    The rollout takes the recorded actions t..t+depth-1 and feeds each prediction back
    (:func:`rlgan.worldmodel.rollouts.predict_rollout`); pair j (1..depth) holds frames
    t+j-1 and t+j, the first of them recorded, the others predicted. A rollout stops where
    its episode does. ``rng`` seeds the model's noise.

    Returns:
        Item-major pairs, uint8 ``(N, C, H, W)`` frames, with ``len(chosen) <= N <= len(chosen) * depth``.
    """
    noise = torch.Generator().manual_seed(int(rng.integers(2**31)))
    steps, _ = steps_ahead(dataset, chosen, depth)
    frame_t, frame_t1, labels = [], [], []
    for start in range(0, len(chosen), batch_size):
        items = chosen[start:start + batch_size]
        history = start_frames(dataset, items, int(predictor.history)).to(device)
        actions = torch.from_numpy(recorded_steps(dataset, items, depth, "action")).long().to(device)
        frames = to_uint8(predict_path(predictor, history, actions, noise))  # (B, depth + 1, C, H, W)
        kept = np.arange(depth)[None, :] < steps[start:start + batch_size, None]
        frame_t.append(frames[:, :-1][torch.from_numpy(kept)])
        frame_t1.append(frames[:, 1:][torch.from_numpy(kept)])
        labels.append(recorded_steps(dataset, items, depth, "unsafe").astype(bool)[kept])
    return PairSet(frame_t=torch.cat(frame_t), frame_t1=torch.cat(frame_t1),
                   unsafe=np.concatenate(labels))


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

    The records are read one shard at a time and each state's frame t is kept once, shared by
    its actions' pairs and by both sets, so the pairs take about ``2 * A + 1`` frames per
    state (``A`` actions) and never the records' arrays beside them. The predictions run in
    batches of ``batch_size`` states across shard ends, so they draw the same noise however
    the records are sharded.

    Raises:
        DatasetError: bad records, or records with fewer history frames than the predictor takes.
    """
    history = int(predictor.history) if predictor is not None else 0
    states, next_frames, unsafe, predicted = [], [], [], []
    waiting = None  # histories of states whose batch is not full yet
    for records in outcome_shards(root, episodes):
        frames = records["frames"]
        if frames.shape[1] < history:
            raise DatasetError(f"the outcome records in {root} keep {frames.shape[1]} frame(s) per "
                               f"state, the world model takes {history}; collect with --history {history}")
        states.append(torch.from_numpy(np.ascontiguousarray(frames[:, -1].transpose(0, 3, 1, 2))))
        next_frames.append(torch.from_numpy(np.ascontiguousarray(
            records["next_frames"].reshape(-1, *frames.shape[2:]).transpose(0, 3, 1, 2))))
        unsafe.append(records["unsafe"].reshape(-1))
        n_actions = records["next_frames"].shape[1]
        if predictor is not None:
            waiting = frames[:, -history:] if waiting is None else np.concatenate([waiting, frames[:, -history:]])
            ready = len(waiting) // batch_size * batch_size
            predicted.append(_outcome_predictions(predictor, waiting[:ready], n_actions, device, batch_size))
            waiting = waiting[ready:]
    frame_t = torch.cat(states)
    index = torch.arange(len(frame_t)).repeat_interleave(n_actions)  # record-major, as next_frames
    labels = np.concatenate(unsafe)
    real = PairSet(frame_t=frame_t, frame_t1=_joined_frames(next_frames), unsafe=labels, frame_t_index=index)
    if predictor is None:
        return real, None
    predicted.append(_outcome_predictions(predictor, waiting, n_actions, device, batch_size))
    return real, PairSet(frame_t=frame_t, frame_t1=_joined_frames(predicted), unsafe=labels,
                         frame_t_index=index)


def _outcome_predictions(predictor: NextFramePredictor, histories: np.ndarray, n_actions: int,
                         device: torch.device, batch_size: int) -> torch.Tensor:
    """The predictor's next frame of every action from each of ``histories`` (uint8
    ``(S, h, H, W, C)``), record-major uint8 ``(S * n_actions, C, H, W)``, ``batch_size``
    states at a time."""
    predicted = []
    for start in range(0, len(histories), batch_size):
        chunk = torch.from_numpy(histories[start:start + batch_size]).to(device)
        chunk = chunk.permute(0, 1, 4, 2, 3).repeat_interleave(n_actions, dim=0)  # (B*A, h, C, H, W)
        actions = torch.arange(n_actions, device=device).repeat(len(chunk) // n_actions)
        predicted.append(predicted_frames(predictor, chunk, actions))
    if not predicted:
        return torch.zeros((0, *histories.shape[-1:], *histories.shape[2:4]), dtype=torch.uint8)
    return torch.cat(predicted)


def _joined_frames(parts: list[torch.Tensor]) -> torch.Tensor:
    """``parts`` one after another, emptying the list as it goes, so that at most one part is
    held twice."""
    joined = torch.empty((sum(len(part) for part in parts), *parts[0].shape[1:]), dtype=parts[0].dtype)
    start = 0
    while parts:
        part = parts.pop(0)
        joined[start:start + len(part)] = part
        start += len(part)
    return joined
