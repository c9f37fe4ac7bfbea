"""``rlgan safety collect|train|eval``: the safety classifier's data, training and metrics."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rlgan.cli.common import (
    add_agent_argument,
    add_config_options,
    add_env_arguments,
    add_mirror_average_argument,
    config_options,
    env_kwargs_from,
    mirror_note,
)

OUTCOME_CONFIG = "rlgan.safety.outcomes:OutcomeConfig"
CLASSIFIER_CONFIG = "rlgan.safety.training:ClassifierConfig"
#: ``collect``'s options: (flag, OutcomeConfig field, type, help).
COLLECT_OPTIONS = [
    ("episodes", "episodes", int, "episodes to run (rounded up to a multiple of --num-envs)"),
    ("num-envs", "num_envs", int, "episodes run at once; one shard each batch"),
    ("before", "before", int, "states kept before each unsafe step"),
    ("safe-fraction", "safe_fraction", float, "probability of keeping any other state"),
    ("doom-horizon", "doom_horizon", int, "also label an action unsafe when every sequence of "
                                          "this many actions after it meets an unsafe step (0..4)"),
    ("history", "history", int, "frames kept per state (the world model's history)"),
    ("epsilon", "epsilon", float, "probability of a random action instead of the agent's at "
                                  "each step, to reach states a shield steers it into"),
    ("seed", "seed", int, "episode e resets with seed + e"),
]
#: ``train``'s named options: (flag, ClassifierConfig field, type, help); the other fields go
#: through --set.
TRAIN_OPTIONS = [
    ("steps", "steps", int, "optimiser steps"),
    ("batch-size", "batch_size", int, "pairs per step"),
    ("lr", "learning_rate", float, "Adam learning rate"),
    ("threshold", "threshold", float, "P(unsafe) that counts as unsafe"),
    ("seed", "seed", int, "seed of the episode split, the sampling and the initial weights"),
    ("device", "device", str, "auto (CUDA if present), cpu or cuda"),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "safety", help="train or evaluate the safety classifier (frame t, frame t+1) -> P(unsafe)",
        description="The safety classifier of the SAD-GAN search. 'train' fits it on a recorded "
                    "dataset (with --worldmodel also on generated next frames) into a safety "
                    "run; 'eval' prints precision, recall and ROC AUC on held-out pairs; "
                    "'collect' writes outcome records of an agent's near-unsafe states to train on.")
    commands = parser.add_subparsers(dest="safety_command", metavar="{collect,train,eval}", required=True)
    _add_collect_parser(commands)
    _add_train_parser(commands)
    _add_eval_parser(commands)


def _add_collect_parser(commands: argparse._SubParsersAction) -> None:
    collect = commands.add_parser(
        "collect", help="outcome records of an agent's states before its unsafe steps",
        description="Run --agent on --num-envs copies of the env at once; keep the --before "
                    "states before each of its unsafe steps and a --safe-fraction of the others, "
                    "and step every action from each in the true simulator (next frame, unsafe "
                    "or doomed within --doom-horizon steps). rlgan safety train --data DIR "
                    "trains on every action's pair (see rlgan.safety.outcomes).")
    collect.add_argument("--env", default="rlgan/Driving-v0", help="Gymnasium id (default: rlgan/Driving-v0)")
    add_env_arguments(collect)
    add_agent_argument(collect)
    collect.add_argument("--out", required=True, help="outcome records directory to write")
    collect.add_argument("--maps", nargs="+", metavar="MAP",
                         help="driving maps that take turns by shard, for records of several maps "
                              "in one dataset (instead of --map)")
    collect.add_argument("--palette-seeds", nargs="+", metavar="SEED",
                         help="driving palettes that take turns by shard: an integer draws the "
                              "map in random colours from that seed (the env's palette_seed), "
                              "none keeps its own; with --maps, every map in every palette")
    collect.set_defaults(func=run_collect,
                         config_fields=add_config_options(collect, OUTCOME_CONFIG, COLLECT_OPTIONS))
    collect.add_argument("--resume", action="store_true",
                         help="carry on an interrupted collection, or extend one to more --episodes")
    collect.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a classifier into --run DIR",
        description="Train on the ground-truth unsafe labels of --data, holding out episodes; "
                    "the run records the world model (--worldmodel) that rlgan shield eval "
                    "--shield DIR will search with.")
    train.add_argument("--data", required=True, help="dataset from rlgan record or rlgan safety collect")
    train.add_argument("--run", required=True, help="safety run directory to write")
    train.add_argument("--worldmodel", metavar="RUN", help="world-model run: also train on its predictions")
    train.set_defaults(func=run_train,
                       config_fields=add_config_options(train, CLASSIFIER_CONFIG, TRAIN_OPTIONS))
    train.add_argument("--set", nargs="*", action="extend", default=[], metavar="K=V",
                       help="other ClassifierConfig options, e.g. val_fraction=0.3 max_generated=2000")
    train.add_argument("--overwrite", action="store_true", help="replace a safety run in --run")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval", help="precision, recall, ROC AUC on held-out real and generated pairs",
        description="Evaluate a safety run on --data: its held-out episodes when --data is the "
                    "training dataset, every episode otherwise. Generated pairs use --worldmodel "
                    "(default: the run's world model, if any).")
    evaluate.add_argument("--run", required=True, help="safety run directory")
    evaluate.add_argument("--data", required=True, help="dataset from rlgan record or rlgan safety collect")
    evaluate.add_argument("--worldmodel", metavar="RUN", help="world-model run for generated pairs")
    evaluate.add_argument("--threshold", type=float, help="override the run's threshold")
    evaluate.add_argument("--max-generated", type=int, default=4096, help="most generated pairs")
    add_mirror_average_argument(evaluate)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=run_eval)


def palette_seed(text: str) -> int | None:
    """A ``--palette-seeds`` value: ``none`` or an integer >= 0.

    Raises:
        ValueError: anything else.
    """
    if text.lower() == "none":
        return None
    if not text.isdigit():
        raise ValueError(f"a palette seed is none or an integer >= 0, got {text!r}")
    return int(text)


def run_collect(args: argparse.Namespace) -> int:
    from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes

    env_id, env_kwargs = args.env, env_kwargs_from(args)
    if args.maps and "map" in env_kwargs:
        raise ValueError("give either --maps or a single map (--map or --env-kwargs map=M), not both")
    if args.palette_seeds and "palette_seed" in env_kwargs:
        raise ValueError("give either --palette-seeds or --env-kwargs palette_seed=S, not both")
    variants = [{"map": name} for name in args.maps or ()]
    if args.palette_seeds:
        variants = [{**variant, "palette_seed": palette_seed(text)}
                    for text in args.palette_seeds for variant in variants or [{}]]
    config = OutcomeConfig(**config_options(args, args.config_fields))
    metadata = collect_outcomes(env_id, env_kwargs, args.agent, args.out, config, args.resume,
                                progress=not args.no_progress, variants=variants)
    shards = metadata["shards"]
    print(f"{args.out}: {sum(entry['records'] for entry in shards)} states of "
          f"{len(shards) * config.num_envs} episodes, "
          f"{sum(entry['unsafe_events'] for entry in shards)} unsafe events")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from rlgan.config import build_config, parse_kv
    from rlgan.device import resolve_device
    from rlgan.safety.predictor import load_predictor
    from rlgan.safety.training import ClassifierConfig, train_classifier

    config = build_config(ClassifierConfig, {**parse_kv(args.set), **config_options(args, args.config_fields)})
    predictor = load_predictor(args.worldmodel, resolve_device(config.device)) if args.worldmodel else None
    summary = train_classifier(args.data, args.run, config, predictor, args.worldmodel,
                               overwrite=args.overwrite, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    return 0


def _format(report: dict[str, Any] | None) -> str:
    if report is None:
        return "none"

    def number(key: str) -> str:
        return "n/a" if report[key] is None else f"{report[key]:.3f}"

    return (f"precision {number('precision')}  recall {number('recall')}  "
            f"ROC AUC {number('roc_auc')}  ({report['n']} pairs, {report['positives']} unsafe)")


def run_eval(args: argparse.Namespace) -> int:
    from rlgan.device import resolve_device
    from rlgan.safety.classifier_eval import evaluate_classifier

    result = evaluate_classifier(args.run, args.data, args.worldmodel, args.threshold,
                                 resolve_device(args.device), args.max_generated, args.seed,
                                 args.mirror_average)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"safety run {args.run} on {args.data} ({result['split']}, threshold {result['threshold']}"
          f"{mirror_note(result['mirror_average'])})")
    print(f"  real pairs       {_format(result['real'])}")
    print(f"  generated pairs  {_format(result['generated'])}")
    return 0
