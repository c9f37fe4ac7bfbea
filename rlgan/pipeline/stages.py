"""The five stages of ``rlgan shield train``, each a call of rlgan's library functions.

Each stage reads the outputs of the stages before it from the shield directory ``DIR``,
writes its own, and returns a JSON summary (kept in ``DIR/progress.json``) together with the
files that make its output (hashed, so a corrupt output is found before it is used):

- ``collect``: outcome records of the agent's near-unsafe states, ``DIR/records``
  (:func:`rlgan.safety.outcomes.collect_outcomes`);
- ``worldmodel``: the SAD-GAN generator on every action's true next frame, ``DIR/worldmodel``
  (:func:`rlgan.worldmodel.train.train_worldmodel`);
- ``classifier``: the safety classifier on real and generated pairs, ``DIR/classifier``
  (:func:`rlgan.safety.training.train_classifier`);
- ``calibrate``: the search depth and threshold chosen on held-out records,
  ``DIR/shield.json`` (:mod:`rlgan.pipeline.calibration`);
- ``evaluate``: the agent alone, under the learned shield at every depth and under the oracle
  shield, on fresh episodes, ``DIR/evaluation.json`` (:mod:`rlgan.safety.evaluation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlgan.io import write_json
from rlgan.pipeline.settings import ShieldSettings
from rlgan.pipeline.shield_dir import ShieldDir

#: ``(shield directory, settings, progress bars) -> (summary, output files)``.
Stage = Callable[[ShieldDir, ShieldSettings, bool], tuple[dict[str, Any], list[Path]]]


def collect(shield: ShieldDir, settings: ShieldSettings, progress: bool) -> tuple[dict[str, Any], list[Path]]:
    """Outcome records; an interrupted collection carries on after its last shard."""
    from rlgan.safety.outcomes import collect_outcomes

    env_kwargs = {**settings.env_kwargs, **settings.collect.env_kwargs}
    resume = (shield.records / "metadata.json").is_file()
    metadata = collect_outcomes(settings.env_id, env_kwargs, settings.agent, shield.records,
                                settings.collect.outcomes, resume=resume, progress=progress,
                                variants=settings.collect.variants)
    shards = metadata["shards"]
    summary = {"states": sum(shard["records"] for shard in shards),
               "episodes": len(shards) * settings.collect.outcomes.num_envs,
               "unsafe_events": sum(shard["unsafe_events"] for shard in shards)}
    if summary["unsafe_events"] == 0:
        raise ValueError(f"the agent met no unsafe step in {summary['episodes']} episodes, so there is "
                         "nothing to learn a shield from; collect more episodes "
                         "(--set collect.outcomes.episodes=N) or explore more "
                         "(--set collect.outcomes.epsilon=P)")
    return summary, [shield.records / "metadata.json"]


def worldmodel(shield: ShieldDir, settings: ShieldSettings, progress: bool) -> tuple[dict[str, Any], list[Path]]:
    """The world model; an interrupted training resumes from its last checkpoint."""
    from rlgan.worldmodel.run import RUN_FILE, checkpoint_dir
    from rlgan.worldmodel.train import train_worldmodel

    resume = (shield.worldmodel / RUN_FILE).is_file()
    result = train_worldmodel(shield.records, shield.worldmodel,
                              {**settings.worldmodel, "device": settings.device}, resume=resume,
                              progress=progress)
    summary = {"steps": result["step"], "train_seconds": result.get("train_seconds"),
               "samples_per_second": result.get("samples_per_second"), **result.get("val", {})}
    return summary, [shield.worldmodel / RUN_FILE,
                     checkpoint_dir(shield.worldmodel) / "generator.safetensors"]


def classifier(shield: ShieldDir, settings: ShieldSettings, progress: bool) -> tuple[dict[str, Any], list[Path]]:
    """The safety classifier on real and generated pairs (trained afresh if interrupted)."""
    from rlgan.device import resolve_device
    from rlgan.safety.predictor import load_predictor
    from rlgan.safety.run import CONFIG_FILE, WEIGHTS_FILE
    from rlgan.safety.training import train_classifier

    config = dataclasses.replace(settings.classifier, device=settings.device)
    predictor = load_predictor(shield.worldmodel, resolve_device(settings.device))
    summary = train_classifier(shield.records, shield.classifier, config, predictor,
                               shield.worldmodel, overwrite=True, progress=progress)
    summary.pop("run", None)
    return summary, [shield.classifier / CONFIG_FILE, shield.classifier / WEIGHTS_FILE]


def calibrate(shield: ShieldDir, settings: ShieldSettings, progress: bool) -> tuple[dict[str, Any], list[Path]]:
    """Depth and threshold from held-out records; writes ``DIR/shield.json``."""
    from rlgan.device import resolve_device
    from rlgan.pipeline.calibration import calibrate as score_settings, held_out_records
    from rlgan.safety.models import load_learned_search

    options = settings.calibrate
    search, _ = load_learned_search(shield.classifier, device=resolve_device(settings.device),
                                    worldmodel_run=shield.worldmodel)
    records = held_out_records(shield.records, settings.classifier.val_fraction, settings.seed,
                               options.max_states)
    result = score_settings(search, records, options.depths, options.thresholds,
                            options.intervention_cost)
    shield.write_choice(result["depth"], result["threshold"], result["best_threshold"],
                        settings.collect.outcomes.doom_horizon)
    write_json(shield.calibration, result)
    return ({key: result[key] for key in ("depth", "threshold", "states", "agent_unsafe")},
            [shield.choice_file, shield.calibration])


def evaluate(shield: ShieldDir, settings: ShieldSettings, progress: bool) -> tuple[dict[str, Any], list[Path]]:
    """The comparison rows on fresh episodes; writes ``DIR/evaluation.json``."""
    import sys

    from rlgan.device import resolve_device
    from rlgan.pipeline.comparison import compare_shields, gan_row_name

    options = settings.evaluate
    env_kwargs = {**settings.env_kwargs, **options.env_kwargs}

    def report(name: str) -> None:
        if progress:
            print(f"[shield] evaluating {name} ({options.episodes} episodes)", file=sys.stderr, flush=True)

    partial = shield.root / "evaluation.partial.json"  # the rows of an interrupted evaluation
    rows = compare_shields(shield, settings.env_id, env_kwargs, settings.agent, options.episodes,
                           options.seed, options.depths, options.probe, device=resolve_device(settings.device),
                           progress=report, partial=partial)
    depth = shield.read_choice()["depth"]
    write_json(shield.evaluation, {"rows": rows, "depth": depth, "oracle_depth": shield.lookahead(),
                                   "episodes": options.episodes, "seed": options.seed,
                                   "env_kwargs": env_kwargs})
    partial.unlink(missing_ok=True)
    summary = {"agent_unsafe_events": rows[0]["unsafe_events"]}
    chosen = [row for row in rows if row["name"] == gan_row_name(depth)]
    if chosen:
        summary.update({key: chosen[0][key] for key in ("removed", "removed_stderr", "return_kept")})
    return summary, [shield.evaluation]


STAGES: dict[str, Stage] = {"collect": collect, "worldmodel": worldmodel, "classifier": classifier,
                            "calibrate": calibrate, "evaluate": evaluate}
