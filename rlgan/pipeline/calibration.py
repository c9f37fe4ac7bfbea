"""Choose the shield's search depth and threshold on held-out outcome records.

Every held-out record is a state the agent met, the action it took there, and the true outcome
of every action (unsafe, or doomed within the collection's doom horizon). For each state the
learned search's whole tree of P(unsafe) is predicted once, to the deepest depth tried
(:func:`tree_risks`); the safe depths for every (depth, threshold) then follow without another
network call (:func:`safe_depths_at`), the shield's choice follows from them
(:func:`rlgan.safety.shield.choose_action`), and the true outcome of the chosen action says
whether the shield was right. States kept at random stand for ``1 / safe_fraction`` states
each, so the rates are per step of the agent's driving. The chosen setting minimises
``unsafe + intervention_cost * interventions`` per step.
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


def calibrate(search: LearnedSearch, records: dict[str, np.ndarray], depths: tuple[int, ...],
              thresholds: tuple[float, ...], intervention_cost: float) -> dict[str, Any]:
    """Score every (depth, threshold) on ``records`` (from :func:`held_out_records`).

    Returns:
        ``rows`` (one per setting: ``depth``, ``threshold``, ``unsafe`` and ``interventions``
        per step, ``score``), ``agent_unsafe`` (per step, the actions the agent took),
        ``best_threshold`` per depth (``{depth: threshold}``), the overall ``depth`` and
        ``threshold`` chosen, and ``states``.
    """
    levels = tree_risks(search, records["frames"], max(depths))
    truth, proposed, weight = records["unsafe"], records["action"], records["weight"]
    rows = np.arange(len(proposed))
    total = weight.sum()
    table = []
    for depth in depths:
        for threshold in thresholds:
            chosen = shield_choices(safe_depths_at(levels, threshold, depth, search.n_actions),
                                    levels[0], proposed, depth)
            unsafe = float((weight * truth[rows, chosen]).sum() / total)
            interventions = float((weight * (chosen != proposed)).sum() / total)
            table.append({"depth": depth, "threshold": threshold, "unsafe": unsafe,
                          "interventions": interventions,
                          "score": unsafe + intervention_cost * interventions})
    best_threshold = {}
    for depth in depths:
        candidates = [row for row in table if row["depth"] == depth]
        best_threshold[depth] = min(candidates, key=lambda row: row["score"])["threshold"]
    best = min(table, key=lambda row: (row["score"], row["depth"]))
    return {"rows": table, "agent_unsafe": float((weight * truth[rows, proposed]).sum() / total),
            "best_threshold": best_threshold, "depth": best["depth"],
            "threshold": best["threshold"], "states": int(len(proposed))}
