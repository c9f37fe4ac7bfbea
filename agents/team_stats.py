"""Statistics of hide-and-seek games that a person can read, and the phases of a self-play run.

:func:`episode_statistics` turns the per-step ``info`` of
:class:`rlgan.envs.hide_and_seek.team_env.TeamVectorEnv` over whole episodes into per-episode
means; :func:`phases` cuts a team's reward curve at its reversals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlgan.envs.hide_and_seek.behaviour import BEHIND_BOX, BEHIND_WALL

#: Keys of :func:`episode_statistics`, with what each measures.
STATISTICS = {
    "hider_return": "a hider's return per episode (the seekers' is its negative)",
    "hider_box_pushes": "boxes the hiders push per episode",
    "seeker_box_pushes": "boxes the seekers push per episode",
    "hidden_behind_wall": "fraction of hider-steps after preparation hidden by walls alone",
    "hidden_behind_box": "fraction of hider-steps after preparation hidden by a box",
    "hider_locked": "fraction of steps after preparation with a box the hiders locked",
    "found_rate": "fraction of episodes in which a seeker sees a hider after preparation",
    "steps_to_find": "steps from the end of preparation to the first sight (found episodes)",
}


def episode_statistics(trace: dict[str, np.ndarray], rewards: np.ndarray, n_hiders: int,
                       grids: np.ndarray | None = None) -> dict[str, float]:
    """Means over the episodes of a rollout of whole episodes.

    Args:
        trace: the ``info`` arrays of every step stacked on a leading time axis: ``prep``
            (T, N), ``seen`` and ``cover`` (T, N, n_hiders), ``pushed`` (T, N, n_agents),
            ``hider_locked`` (T, N).
        rewards: (T, N, n_agents) the rewards of the steps.
        n_hiders: hiders are the first agents.
        grids: (N,) bool, the grids to count (default: all).

    Returns:
        The :data:`STATISTICS` (``steps_to_find`` is NaN when no episode found a hider).
    """
    keep = np.ones(rewards.shape[1], dtype=bool) if grids is None else np.asarray(grids)
    prep = trace["prep"][:, keep]  # (T, K)
    playing = ~prep
    cover = trace["cover"][:, keep]
    pushed = trace["pushed"][:, keep]
    seen = trace["seen"][:, keep].any(axis=2) & playing  # (T, K)
    found = seen.any(axis=0)
    first = np.argmax(seen, axis=0) - prep.sum(axis=0)  # steps after preparation
    hider_steps = max(int(playing.sum()) * cover.shape[2], 1)
    return {
        "hider_return": float(rewards[:, keep, 0].sum(axis=0).mean()),
        "hider_box_pushes": float(pushed[:, :, :n_hiders].sum(axis=(0, 2)).mean()),
        "seeker_box_pushes": float(pushed[:, :, n_hiders:].sum(axis=(0, 2)).mean()),
        "hidden_behind_wall": float(((cover == BEHIND_WALL) & playing[..., None]).sum() / hider_steps),
        "hidden_behind_box": float(((cover == BEHIND_BOX) & playing[..., None]).sum() / hider_steps),
        "hider_locked": float(((trace["hider_locked"][:, keep] > 0) & playing).sum()
                              / max(int(playing.sum()), 1)),
        "found_rate": float(found.mean()),
        "steps_to_find": float(first[found].mean()) if found.any() else float("nan"),
    }


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Centred moving average of ``values`` over ``window`` points (shorter at the ends)."""
    values = np.asarray(values, dtype=np.float64)
    half = max(window, 1) // 2
    return np.array([values[max(0, i - half): i + half + 1].mean() for i in range(len(values))])


def phases(values: Sequence[float], min_swing: float, window: int = 5) -> list[tuple[int, int]]:
    """Cut a reward curve into phases at its reversals.

    The curve is smoothed (:func:`smooth`); a reversal is a turning point of the smoothed
    curve after which it moves back by at least ``min_swing`` (zig-zag turning points, so
    noise smaller than ``min_swing`` makes no phase).

    Returns:
        ``(start, end)`` index ranges (end exclusive) covering the curve, one per phase;
        ``len(result) - 1`` is the number of reversals.
    """
    curve = smooth(values, window)
    if len(curve) == 0:
        return []
    turns: list[int] = []
    direction, extreme = 0, 0  # +1 rising, -1 falling, 0 not yet known; the running extreme
    for i in range(1, len(curve)):
        if direction == 0:
            if abs(curve[i] - curve[0]) >= min_swing:
                direction = 1 if curve[i] > curve[0] else -1
                extreme = int(np.argmax(direction * curve[: i + 1]))
        elif (curve[i] - curve[extreme]) * direction > 0:
            extreme = i
        elif abs(curve[i] - curve[extreme]) >= min_swing:
            turns.append(extreme)
            direction, extreme = -direction, i
    bounds = [0, *[turn + 1 for turn in turns], len(curve)]
    return [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]
