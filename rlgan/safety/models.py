"""Build the search a shield uses from a name: ``"oracle"`` or a safety run directory.

A safety run (``rlgan safety train``) records the world-model run it was trained with, so
``--shield SAFETY_RUN`` finds both networks; ``worldmodel_run`` overrides the recorded one.
Everything is checked against the env it will shield: same env id, frame shape and actions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium
import torch

from rlgan.safety.oracle import OracleSearch, env_identity
from rlgan.safety.predictor import load_predictor
from rlgan.safety.run import check_compatible, load_safety_run
from rlgan.safety.search import LearnedSearch, SearchConfig
from rlgan.safety.shield import SafetySearch, Shield, ShieldWrapper

ORACLE = "oracle"


def load_learned_search(safety_run: str | Path, config: SearchConfig | None = None,
                        threshold: float | None = None, device: str | torch.device = "cpu",
                        worldmodel_run: str | Path | None = None,
                        compiled: bool = False) -> tuple[LearnedSearch, Any]:
    """The learned search of a safety run; returns ``(search, SafetyRunInfo)``.

    Args:
        safety_run: safety run directory.
        config: search parameters (its ``threshold`` is replaced by ``threshold``, or by the
            run's own threshold when ``threshold`` is None).
        device: where the networks run.
        worldmodel_run: world-model run (default: the one recorded in the safety run, a
            relative path taken from the safety run's directory).
        compiled: run the generator through ``torch.compile`` (a depth-3 search about 1.4x
            faster on 2 CPU cores; compiling takes a minute or two the first time on a machine).

    Raises:
        ValueError / FileNotFoundError: no world model known, or the world model and the
            classifier were trained for different envs, frame sizes or action sets.
        RuntimeError: ``compiled`` on a machine where ``torch.compile`` cannot build.
    """
    classifier, info = load_safety_run(safety_run, device)
    if worldmodel_run is None and info.worldmodel_run is not None:
        worldmodel_run = Path(safety_run) / info.worldmodel_run  # a relative path is the run's
    if worldmodel_run is None:
        raise ValueError(f"safety run {safety_run} was trained without --worldmodel, so it does "
                         "not know which world model to search with; pass --worldmodel RUN")
    predictor = load_predictor(worldmodel_run, device, compiled)
    check_compatible(f"world model {worldmodel_run}", getattr(predictor, "env_id", info.env_id),
                     predictor.frame_shape, predictor.n_actions, f"safety run {safety_run}",
                     info.env_id, info.frame_shape, info.n_actions)
    config = dataclasses.replace(config or SearchConfig(),
                                 threshold=info.threshold if threshold is None else threshold)
    return LearnedSearch(predictor, classifier, config, device), info


def check_env_fits(info: Any, safety_run: str | Path, env: gymnasium.Env) -> None:
    """Raise ``ValueError`` unless ``env`` is the env, frame shape and actions of ``info``."""
    env_id, _ = env_identity(env)
    check_compatible(f"safety run {safety_run}", info.env_id, info.frame_shape, info.n_actions,
                     f"the env to shield ({env_id})", env_id, env.observation_space.shape,
                     int(env.action_space.n))


def make_search(shield: str, env: gymnasium.Env, config: SearchConfig | None = None,
                threshold: float | None = None, device: str | torch.device = "cpu",
                worldmodel_run: str | Path | None = None) -> SafetySearch:
    """``"oracle"`` -> :class:`OracleSearch` on copies of ``env``; a safety run directory ->
    :class:`LearnedSearch` checked against ``env``."""
    if shield == ORACLE:
        return OracleSearch.for_env(env, config)
    search, info = load_learned_search(shield, config, threshold, device, worldmodel_run)
    check_env_fits(info, shield, env)
    return search


def shielded_env(env: gymnasium.Env, shield: str, policy: Any = None, depth: int = 3,
                 device: str | torch.device = "cpu", **search_options: Any) -> ShieldWrapper:
    """``env`` wrapped in a :class:`ShieldWrapper` whose search is ``shield`` (``"oracle"`` or
    a safety run), searching ``depth`` levels; ``search_options`` are other
    :class:`SearchConfig` fields (``threshold`` defaults to the run's)."""
    threshold = search_options.pop("threshold", None)
    config = SearchConfig(depth=depth, **search_options)
    search = make_search(shield, env, config, threshold, device)
    return ShieldWrapper(env, Shield(search, policy))
