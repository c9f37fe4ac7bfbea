"""The demo's measurements: the agent alone, with the GAN shield and with the oracle shield,
on the training map and on maps the models never saw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from rlgan.demo.weights import DemoWeights

DRIVING = "rlgan/Driving-v0"
ROW_NAMES = ("agent", "gan_shield", "oracle_shield")


def load_parts(weights: DemoWeights, env: Any, depth: int, device: torch.device,
               lazy: bool = True) -> dict[str, Any]:
    """The agent as a policy and its two shields, checked against ``env``.

    Returns:
        ``policy``, ``gan_shield`` and ``oracle_shield`` (each shield wraps the policy), and
        ``search``, the learned search (its world model and classifier).
    """
    from rlgan.safety.models import check_env_fits, load_learned_search
    from rlgan.safety.oracle import OracleSearch
    from rlgan.safety.policies import load_policy
    from rlgan.safety.search import SearchConfig
    from rlgan.safety.shield import Shield

    weights.check()
    config = SearchConfig(depth=depth)
    search, info = load_learned_search(weights.safety, config, device=device,
                                       worldmodel_run=weights.worldmodel)
    check_env_fits(info, weights.safety, env)
    policy = load_policy(str(weights.agent), env)
    return {"policy": policy, "search": search,
            "gan_shield": Shield(search, policy, lazy=lazy),
            "oracle_shield": Shield(OracleSearch.for_env(env, config), policy, lazy=lazy)}


def evaluate(weights: DemoWeights, maps: Sequence[str], train_map: str, episodes: int,
             max_steps: int, depth: int = 3, seed: int = 0, device: str | torch.device = "cpu",
             progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Rows of :func:`rlgan.safety.evaluation.evaluate_row` for every map and row name.

    Episode ``e`` of every row resets with ``seed + e``, so the rows of a map drive the same
    roads. Each row also has ``map`` and ``train_map`` (whether the models trained on it).
    """
    from rlgan.make import make_env
    from rlgan.safety.evaluation import evaluate_row

    rows = []
    for map_name in maps:
        env = make_env(DRIVING, map=map_name, max_steps=max_steps)
        parts = load_parts(weights, env, depth, torch.device(device))
        try:
            for name in ROW_NAMES:
                if progress is not None:
                    progress(f"{map_name}: {name}")
                shield = parts.get(name)
                row = evaluate_row(name, env, parts["policy"], episodes, seed, shield)
                rows.append({"map": map_name, "train_map": map_name == train_map, **row})
        finally:
            parts["oracle_shield"].search.close()
            env.close()
    return rows


def removed_fraction(rows: list[dict[str, Any]], map_name: str, shield: str) -> float | None:
    """Fraction of the agent's unsafe events per step that ``shield`` removed on ``map_name``
    (None when the agent had none)."""
    by_name = {row["name"]: row for row in rows if row["map"] == map_name}
    alone = by_name["agent"]["unsafe_per_1000"]
    if alone == 0:
        return None
    return 1.0 - by_name[shield]["unsafe_per_1000"] / alone
