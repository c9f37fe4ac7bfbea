"""The agent alone, under a trained shield and under the oracle shield, on the same episodes.

One function serves the ``evaluate`` stage of ``rlgan shield train``, ``rlgan demo`` and
``benchmarks/bench_safety.py``: every row drives the same seeds, and each shielded row gets the
fraction of the agent's unsafe events it removed and the fraction of its return it kept, each
with a standard error (:mod:`rlgan.safety.evaluation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from rlgan.io import read_json, write_json
from rlgan.pipeline.shield_dir import ShieldDir


def gan_row_name(depth: int | None) -> str:
    """``gan_shield`` at the shield's chosen depth, ``gan_shield_depth{d}`` at another."""
    return "gan_shield" if depth is None else f"gan_shield_depth{depth}"


def shields_of(shield: ShieldDir, env: Any, depths: Sequence[int | None] = (None,),
               device: str | torch.device = "cpu", policy: Any = None,
               lazy: bool = True) -> dict[str, Any]:
    """The shields of a shield directory on ``env``, each wrapping ``policy``: one learned
    shield per entry of ``depths`` (named by :func:`gan_row_name`; None: the chosen depth) and
    ``oracle_shield``, the true simulator searched :meth:`ShieldDir.lookahead` steps ahead (as
    far as the learned shield sees at its chosen depth). The caller closes the oracle's search.

    Raises:
        ValueError: the env does not fit the shield (id, frame shape, actions).
    """
    from rlgan.safety.models import check_env_fits
    from rlgan.safety.oracle import OracleSearch
    from rlgan.safety.search import SearchConfig
    from rlgan.safety.shield import Shield

    shields = {}
    for depth in depths:
        search, info = shield.load_search(depth, device=device)
        check_env_fits(info, shield.root, env)
        shields[gan_row_name(depth)] = Shield(search, policy, lazy=lazy)
    oracle = OracleSearch.for_env(env, SearchConfig(depth=shield.lookahead()))
    shields["oracle_shield"] = Shield(oracle, policy, lazy=lazy)
    return shields


def compare_shields(shield: ShieldDir, env_id: str, env_kwargs: dict[str, Any], agent: str,
                    episodes: int, seed: int, depths: Sequence[int | None] = (None,),
                    probe: bool = False, epsilon: float = 0.0, device: str | torch.device = "cpu",
                    progress: Callable[[str], None] | None = None,
                    partial: Path | None = None, num_envs: int = 50) -> list[dict[str, Any]]:
    """Rows ``agent`` and the shields of :func:`shields_of` (:func:`rlgan.safety.evaluation.evaluate_shields`:
    each shielded row with the fraction of unsafe events removed and of the return kept).

    Args:
        agent: ``scripted``, ``random`` or a run directory of ``rlgan train``.
        probe: also search every step in the true simulator, for the false-alarm and miss
            columns (slower).
        epsilon: probability that the agent takes a random action instead of its own (an
            exploring agent, :class:`rlgan.safety.policies.EpsilonPolicy`), the same draws in
            every row.
        partial: a file that keeps every finished row: a comparison interrupted between
            rows resumes after them (rows made with other arguments are not told apart: the
            caller removes the file when they change).
        num_envs: episodes run at a time on the env's vector form, their searches sharing
            generator calls (:mod:`rlgan.safety.batched_evaluation`); 1, an exploring agent
            or an env without a vector form runs one episode at a time.

    Raises:
        ValueError: the env does not fit the shield (id, frame shape, actions).
    """
    from rlgan.make import make_env
    from rlgan.safety.batched_evaluation import BatchedAgent
    from rlgan.safety.evaluation import evaluate_shields
    from rlgan.safety.policies import load_policy

    env = make_env(env_id, **env_kwargs)
    shields: dict[str, Any] = {}
    batched = None
    try:
        shields = shields_of(shield, env, depths, device)
        if min(num_envs, episodes) > 1 and epsilon == 0.0:
            batched = BatchedAgent.make(env_id, env_kwargs, agent, env, min(num_envs, episodes))
        finished = {row["name"]: row for row in read_json(partial)} if partial and partial.is_file() else {}

        def keep(row: dict[str, Any]) -> None:
            if partial is not None:
                finished[row["name"]] = row
                write_json(partial, list(finished.values()))

        oracle = shields["oracle_shield"].search
        return evaluate_shields(env, lambda: load_policy(agent, env, seed, epsilon), shields, episodes,
                                seed, oracle if probe else None, progress, finished, keep, batched)
    finally:
        if batched is not None:
            batched.venv.close()
        if "oracle_shield" in shields:
            shields["oracle_shield"].search.close()
        env.close()
