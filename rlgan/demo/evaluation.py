"""The demo's measurements: the agent alone, with the learned shield and with the oracle shield,
on the map the shield was trained on and on maps it never saw.

Every episode starts in a hazard (``hazard_start=1``: a car close ahead or beside the bike),
where a good driver still crashes now and then, so a few thousand steps hold the unsafe events
a fair comparison needs; ordinary driving meets one every few thousand steps.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from rlgan.demo.weights import DemoWeights
from rlgan.envs.registration import DRIVING_ID as DRIVING

ROW_NAMES = ("agent", "gan_shield", "oracle_shield")
#: Options of the demo's episodes (see the module docstring).
HAZARD_OPTIONS = {"hazard_start": 1.0}


def demo_env_kwargs(map_name: str, max_steps: int) -> dict[str, Any]:
    """Env options of the demo's episodes on ``map_name``."""
    return {"map": map_name, "max_steps": max_steps, **HAZARD_OPTIONS}


def load_parts(weights: DemoWeights, env: Any, device: torch.device, lazy: bool = True) -> dict[str, Any]:
    """The agent as a policy and its two shields, checked against ``env``.

    Returns:
        ``policy``, ``gan_shield`` (searching the shield's chosen depth) and ``oracle_shield``
        (:func:`rlgan.pipeline.comparison.shields_of`), each wrapping the policy, and
        ``search``, the learned search.
    """
    from rlgan.pipeline.comparison import shields_of
    from rlgan.safety.policies import load_policy

    weights.check()
    policy = load_policy(str(weights.agent), env)
    shields = shields_of(weights.shield, env, device=device, policy=policy, lazy=lazy)
    return {"policy": policy, "search": shields["gan_shield"].search, **shields}


def evaluate_demo(weights: DemoWeights, maps: Sequence[str], train_map: str, episodes: int,
                  max_steps: int, seed: int = 0, device: str | torch.device = "cpu",
                  progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Rows ``agent``, ``gan_shield`` and ``oracle_shield`` for every map
    (:func:`rlgan.pipeline.comparison.compare_shields`), each also with ``map`` and
    ``train_map`` (whether the shield trained on it). On the CPU the maps run in parallel
    processes, one torch thread each."""
    weights.check()
    jobs = [(weights, map_name, episodes, max_steps, seed, str(device)) for map_name in maps]
    if progress is not None:
        progress(", ".join(f"{map_name}: {', '.join(ROW_NAMES)}" for map_name in maps))
    if torch.device(device).type != "cpu" or len(maps) == 1 or (os.cpu_count() or 1) == 1:
        results = [_evaluate_map(*job) for job in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(len(maps), os.cpu_count() or 1), mp_context=context) as pool:
            results = list(pool.map(_evaluate_map, *zip(*jobs)))
    return [{"map": map_name, "train_map": map_name == train_map, **row}
            for map_name, rows in zip(maps, results) for row in rows]


def _evaluate_map(weights: DemoWeights, map_name: str, episodes: int, max_steps: int, seed: int,
                  device: str) -> list[dict[str, Any]]:
    from rlgan.pipeline.comparison import compare_shields

    if device == "cpu":
        torch.set_num_threads(1)
    return compare_shields(weights.shield, DRIVING, demo_env_kwargs(map_name, max_steps),
                           str(weights.agent), episodes, seed, device=device)
