"""Choose the shield's search depth and threshold on held-out outcome records.

Every held-out record is a state the agent met, the action it took there, and the true outcome
of every action (unsafe, or doomed within the collection's doom horizon). For each state the
learned search's whole tree of P(unsafe) is predicted once, to the deepest depth tried
(:func:`tree_risks`); the safe depths for every (depth, threshold) then follow without another
network call (:func:`safe_depths_at`), the shield's choice follows from them
(:func:`rlgan.safety.shield.choose_action`), and the true outcome of the chosen action says
whether the shield was right. States kept at random stand for ``1 / safe_fraction`` states
each, so the rates are per step of the agent's driving. Each depth takes the threshold that
minimises ``unsafe + intervention_cost * interventions`` per step; a deeper search is chosen
only when its score beats the shallowest depth's by more than :data:`DEPTH_STDERRS` standard
errors (paired over the held-out states), so noise in a few thousand states cannot buy a
slower search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.data.reader import OutcomesReader
from rlgan.worldmodel.frames import to_unit
from rlgan.safety.search import LearnedSearch
from rlgan.safety.shield import choose_action

#: States whose trees are predicted in one batch (the deepest level holds BATCH * A**depth frames).
BATCH = 8
#: Standard errors by which a deeper search must beat the shallowest depth to be chosen.
DEPTH_STDERRS = 2.0


@torch.no_grad()
def tree_risks(search: LearnedSearch, frames: np.ndarray, depth: int) -> list[np.ndarray]:
    """P(unsafe) of every node of the full tree below each state, level by level.

    Args:
        frames: uint8 ``(N, history, H, W, C)``, oldest first.
        depth: levels predicted.

    Returns:
        ``depth`` arrays; level ``l`` (1-based) is float ``(N, A**l)``, children parent-major
        (node ``j`` of level ``l`` is child ``j % A`` of node ``j // A`` of level ``l - 1``).
    """
    n_actions = search.n_actions
    actions = torch.arange(n_actions, device=search.device)
    levels: list[list[np.ndarray]] = [[] for _ in range(depth)]
    for start in range(0, len(frames), BATCH):
        chunk = torch.from_numpy(np.ascontiguousarray(frames[start:start + BATCH]))
        nodes = to_unit(chunk.permute(0, 1, 4, 2, 3)).to(search.device)  # (B, history, C, H, W)
        for level in range(depth):
            children, probabilities = search.expand(nodes, actions)
            levels[level].append(probabilities.reshape(len(chunk), -1).cpu().numpy())
            if level + 1 < depth:
                nodes = torch.cat([nodes.repeat_interleave(n_actions, dim=0)[:, 1:],
                                   children[:, :1]], dim=1)
    return [np.concatenate(level) for level in levels]


def safe_depths_at(levels: list[np.ndarray], threshold: float, depth: int, n_actions: int) -> np.ndarray:
    """Safe depth of every first action ``(N, A)`` for a search of ``depth`` levels at
    ``threshold``: the longest path of children with P(unsafe) < threshold, at most ``depth``."""
    value = (levels[depth - 1] < threshold).astype(np.int64)
    for level in range(depth - 2, -1, -1):
        n, width = levels[level].shape
        best_child = value.reshape(n, width, n_actions).max(axis=2)
        value = np.where(levels[level] < threshold, 1 + best_child, 0)
    return value


def shield_choices(depths: np.ndarray, risks: np.ndarray, proposed: np.ndarray, required: int) -> np.ndarray:
    """The shield's key in every state, from safe depths and first-step risks ``(N, A)``."""
    return np.array([choose_action(depths[i], int(proposed[i]), required, risks=risks[i])
                     for i in range(len(proposed))], dtype=np.int64)


def held_out_records(records: str | Path, val_fraction: float, seed: int, max_states: int) -> dict[str, np.ndarray]:
    """The held-out episodes' records (the classifier's split), at most ``max_states`` of them
    drawn at random, with ``weight``: the states of the agent's driving each record stands for.

    Raises:
        ValueError: no held-out record.
    """
    reader = OutcomesReader(records)
    _, held_out = reader.split_episodes(val_fraction, seed)
    data = reader.records(held_out) if held_out else {}
    if not held_out or len(data["action"]) == 0:
        raise ValueError(f"{records} has no held-out record to calibrate on; collect more episodes")
    if len(data["action"]) > max_states:
        keep = np.sort(np.random.default_rng(seed).choice(len(data["action"]), max_states, replace=False))
        data = {key: value[keep] for key, value in data.items()}
    safe_fraction = float(reader.metadata["config"]["safe_fraction"])
    random_weight = 1.0 / safe_fraction if safe_fraction > 0 else 0.0
    data["weight"] = np.where(data["steps_to_unsafe"] < 0, random_weight, 1.0)
    return data


def paired_gain(shallow: np.ndarray, deep: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """How much lower ``deep``'s weighted mean per-state cost is than ``shallow``'s, and the
    standard error of that paired difference (states weighted by ``weight``, all ``(N,)``)."""
    total = weight.sum()
    difference = shallow - deep
    gain = float((weight * difference).sum() / total)
    stderr = float(np.sqrt((weight**2 * (difference - gain) ** 2).sum()) / total)
    return gain, stderr


def choose_depth(costs: dict[int, np.ndarray], weight: np.ndarray) -> tuple[int, dict[int, dict[str, float]]]:
    """The depth whose per-state costs ``costs[depth]`` ``(N,)`` (each at its best threshold)
    have the lowest weighted mean, among the shallowest depth and the deeper ones that beat it
    by more than :data:`DEPTH_STDERRS` standard errors; and each deeper depth's ``gain`` and
    ``stderr`` (:func:`paired_gain`)."""
    shallowest = min(costs)
    gains = {}
    for depth in sorted(costs):
        if depth != shallowest:
            gain, stderr = paired_gain(costs[shallowest], costs[depth], weight)
            gains[depth] = {"gain": gain, "stderr": stderr}
    significant = {depth: g["gain"] for depth, g in gains.items()
                   if g["gain"] > DEPTH_STDERRS * g["stderr"]}
    candidates = {shallowest: 0.0, **significant}
    return max(candidates, key=lambda depth: (candidates[depth], -depth)), gains


def calibrate(search: LearnedSearch, records: dict[str, np.ndarray], depths: tuple[int, ...],
              thresholds: tuple[float, ...], intervention_cost: float) -> dict[str, Any]:
    """Score every (depth, threshold) on ``records`` (from :func:`held_out_records`).

    Returns:
        ``rows`` (one per setting: ``depth``, ``threshold``, ``unsafe`` and ``interventions``
        per step, ``score``), ``agent_unsafe`` (per step, the actions the agent took),
        ``best_threshold`` per depth (``{depth: threshold}``), ``depth_gain`` per deeper depth
        (``{depth: {"gain", "stderr"}}``: its best score below the shallowest depth's, paired
        over states), ``depth_stderrs`` (:data:`DEPTH_STDERRS`), the ``depth`` and
        ``threshold`` chosen, and ``states``.
    """
    levels = tree_risks(search, records["frames"], max(depths))
    truth, proposed, weight = records["unsafe"], records["action"], records["weight"]
    rows = np.arange(len(proposed))
    total = weight.sum()
    table, costs = [], {}
    for depth in depths:
        for threshold in thresholds:
            chosen = shield_choices(safe_depths_at(levels, threshold, depth, search.n_actions),
                                    levels[0], proposed, depth)
            unsafe = float((weight * truth[rows, chosen]).sum() / total)
            interventions = float((weight * (chosen != proposed)).sum() / total)
            table.append({"depth": depth, "threshold": threshold, "unsafe": unsafe,
                          "interventions": interventions,
                          "score": unsafe + intervention_cost * interventions})
            costs[depth, threshold] = truth[rows, chosen] + intervention_cost * (chosen != proposed)
    best = {depth: min((row for row in table if row["depth"] == depth), key=lambda row: row["score"])
            for depth in depths}
    chosen_depth, depth_gain = choose_depth(
        {depth: costs[depth, row["threshold"]] for depth, row in best.items()}, weight)
    return {"rows": table, "agent_unsafe": float((weight * truth[rows, proposed]).sum() / total),
            "best_threshold": {depth: row["threshold"] for depth, row in best.items()},
            "depth_gain": depth_gain, "depth_stderrs": DEPTH_STDERRS, "depth": chosen_depth,
            "threshold": best[chosen_depth]["threshold"], "states": int(len(proposed))}
