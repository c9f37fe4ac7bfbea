"""``rlgan worldmodel train|eval|dream``: action-conditioned next-frame models (SAD-GAN, VAE)."""

from __future__ import annotations

import argparse
import json
import math
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

WORLDMODEL_CONFIG = "rlgan.worldmodel.config:WorldModelConfig"
#: ``train``'s named options: (flag, WorldModelConfig field, type or choices, help); the other
#: fields go through --set.
TRAIN_OPTIONS = [
    ("model", "model", ("gan", "vae"), "SAD-GAN (with --lambda-adv 0 the regression model) or "
                                       "a VAE with latent dynamics (one process)"),
    ("steps", "steps", int, "updates in all"),
    ("lambda-adv", "lambda_adv", float, "adversarial weight (0: the plain regression baseline)"),
    ("history", "history", int, "frames up to t the generator sees"),
    ("batch-size", "batch_size", int, "transitions per batch and process"),
    ("lr", "learning_rate", float, "Adam learning rate of G and D, decayed along lr_schedule"),
    ("d-steps", "d_steps", int, "discriminator steps per generator step"),
    ("gdl-weight", "gdl_weight", float, "gradient-difference loss weight"),
    ("discriminator", "discriminator", ("patch", "global", "sequence"),
     "PatchGAN or one global logit per step's pair, or PatchGAN on whole rollouts (sequence, "
     "with --set unroll=N)"),
    ("seed", "seed", int, "seed of the episode split, the noise and the initial weights"),
    ("device", "device", str, "auto (CUDA if present), cpu, cuda or cuda:N"),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worldmodel", help="train, evaluate or drive in a world model (SAD-GAN or a VAE)",
        description="SAD-GAN's world model: a GAN whose generator predicts the next frame from "
                    "the current frame(s), the action taken and noise; or a VAE with latent "
                    "dynamics (--model vae).")
    commands = parser.add_subparsers(dest="worldmodel_command", metavar="{train,eval,dream}",
                                     required=True)
    _add_train_parser(commands)
    _add_eval_parser(commands)
    _add_dream_parser(commands)


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a world model on a recorded dataset into --run DIR",
        description="Train G and D (or the VAE, --model vae) on --data (rlgan record), holding "
                    "out episodes for eval. "
                    "Also runs under torchrun --nproc_per_node=N -m rlgan worldmodel train "
                    "--data DIR --run-dir RUN ... (DistributedDataParallel; rank 0 writes the run).")
    train.add_argument("--data", required=True,
                       help="dataset from rlgan record, or outcome records from rlgan safety collect")
    train.add_argument("--run", "--run-dir", dest="run", required=True,
                       help="run directory to write (under torchrun spell it --run-dir: "
                            "torchrun reads --run as an abbreviation of its --run-path)")
    train.set_defaults(func=run_train,
                       config_fields=add_config_options(train, WORLDMODEL_CONFIG, TRAIN_OPTIONS))
    train.add_argument("--set", nargs="*", action="extend", default=[], metavar="K=V",
                       help="other WorldModelConfig options, e.g. base_width=24 z_dim=0")
    train.add_argument("--resume", action="store_true", help="continue the run's last checkpoint")
    train.add_argument("--init-from", metavar="RUN",
                       help="start the generator from another run's (e.g. a --lambda-adv 0 run, "
                            "then fine-tune adversarially); the discriminator starts afresh")
    train.add_argument("--overwrite", action="store_true", help="replace a world-model run in --run")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval", help="PSNR/SSIM/sharpness vs copy-last, open-loop rollouts, counterfactual "
                     "accuracy, the classifier's foresight",
        description="Evaluate a run on --data: its held-out episodes when --data is the "
                    "training dataset, every episode otherwise (e.g. another map). The "
                    "counterfactual test rebuilds states in the simulator (--env/--map default "
                    "to the data's); outcome records (rlgan safety collect) hold every action's "
                    "true next frame already, and no rollouts.")
    evaluate.add_argument("--run", required=True, help="world-model run directory")
    evaluate.add_argument("--data", required=True,
                          help="dataset from rlgan record, or outcome records from rlgan safety collect")
    evaluate.add_argument("--env", help="simulator id for the counterfactual test (default: the data's)")
    add_env_arguments(evaluate)
    evaluate.add_argument("--baseline-run", metavar="RUN",
                          help="a world-model run to compare with (e.g. lambda_adv=0, or a VAE)")
    evaluate.add_argument("--classifier", metavar="RUN",
                          help="safety run (rlgan safety train): also report its ROC AUC for "
                               "'unsafe within k steps' on frames predicted k = 1, 2, 4, 8 steps ahead")
    evaluate.add_argument("--samples", type=int, default=2000, help="most one-step transitions")
    evaluate.add_argument("--states", type=int, default=200,
                          help="most counterfactual states (0 skips the test)")
    evaluate.add_argument("--depth", type=int, default=16, help="open-loop rollout steps (default 16)")
    evaluate.add_argument("--rollouts", type=int, default=256, help="most open-loop rollouts")
    evaluate.add_argument("--foresight-starts", type=int, default=1024,
                          help="most rollouts the classifier scores (with --classifier)")
    add_mirror_average_argument(evaluate, "with --classifier; ")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the noise z")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=run_eval)


def _add_dream_parser(commands: argparse._SubParsersAction) -> None:
    dream = commands.add_parser(
        "dream", help="drive inside the world model's dream beside the real game",
        description="A pygame window with the real game (left) and the model's dream (right), "
                    "both driven by the same actions: with --agent human (the default) the env's "
                    "keys (the arrow keys for driving); R re-syncs the dream with the real "
                    "frame, Esc quits.")
    dream.add_argument("--run", required=True, help="world-model run directory")
    dream.add_argument("--env", help="Gymnasium id (default: the one the model was trained on)")
    add_env_arguments(dream)
    add_agent_argument(dream, "--policy", default="human", human=True)
    dream.add_argument("--steps", type=int, help="stop after this many steps (default: until Esc)")
    dream.add_argument("--sync-every", type=int, default=0,
                       help="re-sync the dream with the real frames every N steps (0 = only on R)")
    dream.add_argument("--scale", type=int, default=4, help="pixels per frame pixel (default 4)")
    dream.add_argument("--fps", type=float, help="frames per second (default: the env's; 0 = as fast as possible)")
    dream.add_argument("--video", help="also write the side-by-side frames to this .gif/.mp4")
    dream.add_argument("--seed", type=int, default=0)
    dream.add_argument("--device", default="auto")
    dream.set_defaults(func=run_dream)


def run_train(args: argparse.Namespace) -> int:
    from rlgan.config import parse_kv
    from rlgan.worldmodel.train import train_worldmodel

    options: dict[str, Any] = {**parse_kv(args.set), **config_options(args, args.config_fields)}
    result = train_worldmodel(args.data, args.run, options, resume=args.resume,
                              overwrite=args.overwrite, progress=not args.no_progress,
                              init_from=args.init_from)
    if result["rank"] != 0:  # under torchrun, rank 0 reports for every rank
        return 0
    if result.get("samples_per_second") is not None:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.run} is already trained for {result['step']} steps; raise --steps to go on")
    return 0


def _number(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}{unit}"


def format_report(result: dict[str, Any]) -> str:
    """The human-readable report of ``rlgan worldmodel eval``."""
    lines = [f"world model {result['run']} (step {result['step']}) on {result['data']}",
             f"  {result['split']}: {result['episodes']} episodes, {result['samples']} transitions",
             f"  {'':18}{'model':>10}{'copy-last':>12}{'baseline':>12}"]
    for key, label, digits in (("psnr", "PSNR [dB]", 2), ("ssim", "SSIM", 3),
                               ("sharpness", "sharpness [dB]", 2)):
        lines.append(f"  {label:18}{_number(result[key], digits):>10}"
                     f"{_number(result[key + '_copy_last'], digits):>12}"
                     f"{_number(result[key + '_baseline'], digits):>12}")
    if result["sharpness_gain"] is not None:
        lines.append("  model - baseline (paired, +- standard error): " + ", ".join(
            f"{name} {result[key + '_gain']:+.{digits + 1}f} +- {_number(result[key + '_gain_stderr'], digits + 1)}"
            for key, name, digits in (("psnr", "PSNR", 2), ("sharpness", "sharpness", 2))))
    lines.extend(format_rollouts(result))
    accuracy = result["counterfactual_accuracy"]
    lines.append(
        f"  counterfactual accuracy: "
        f"{_number(None if accuracy is None else 100 * accuracy, 1, '%')} of "
        f"{result['counterfactual_states']} states (per action "
        f"{_number(None if result['counterfactual_pair_accuracy'] is None else 100 * result['counterfactual_pair_accuracy'], 1, '%')}; "
        f"{result['counterfactual_states_skipped']} states where every action looked the same "
        "were skipped)")
    if result.get("foresight") is not None:
        lines.extend(format_foresight(result["foresight"]))
    return "\n".join(lines)


#: Rollout steps the text report shows (the JSON has every step).
REPORTED_STEPS = (1, 2, 4, 8, 16)


def format_rollouts(result: dict[str, Any]) -> list[str]:
    """The open-loop lines of the report: PSNR, SSIM and sharpness at steps 1, 2, 4, 8, 16."""
    if not result["rollouts"]:
        return ["  open-loop rollouts: n/a (no episode in the data goes on long enough, or "
                "outcome records)"]
    depth = len(result["psnr_by_depth"])
    steps = [k for k in REPORTED_STEPS if k <= depth] or [depth]
    header = "".join(f"{f'step {k}':>9}" for k in steps)
    lines = [f"  open-loop, {result['rollouts']} rollouts of {depth} steps "
             "(model / copy-last / baseline):", f"  {'':28}{header}"]
    for key, label, digits in (("psnr", "PSNR [dB]", 2), ("ssim", "SSIM", 3),
                               ("sharpness", "sharpness [dB]", 2)):
        for suffix, who in (("", "model"), ("_copy_last", "copy-last"), ("_baseline", "baseline")):
            values = result[f"{key}_by_depth{suffix}"]
            if values is None:
                continue
            cells = "".join(f"{_number(values[k - 1], digits):>9}" for k in steps)
            lines.append(f"  {f'{label}, {who}':28}{cells}")
    return lines


def format_foresight(foresight: dict[str, Any]) -> list[str]:
    """The classifier's ROC AUC per horizon on predicted and recorded frames."""
    header = "".join(f"{f'k={k}':>8}" for k in foresight["horizons"])
    lines = [f"  unsafe within k steps, ROC AUC of {foresight['classifier']}"
             f"{mirror_note(foresight.get('mirror_average', False))} on "
             f"{foresight['starts']} rollouts ({foresight['split']}):", f"  {'':28}{header}"]
    rows = [*foresight["auc"].items(), ("recorded frames", foresight["auc_recorded_frames"])]
    errors = [*foresight["auc_stderr"].values(), foresight["auc_recorded_frames_stderr"]]
    for (name, values), stderr in zip(rows, errors):
        lines.append(f"  {name:28}" + "".join(f"{_number(v, 3):>8}" for v in values))
        lines.append(f"  {'  +- (over episodes)':28}" + "".join(f"{_number(v, 3):>8}" for v in stderr))
    lines.append(f"  {'unsafe starts':28}" + "".join(f"{n:>8}" for n in foresight["positives"]))
    return lines


def run_eval(args: argparse.Namespace) -> int:
    from rlgan.device import resolve_device
    from rlgan.worldmodel.evaluate import evaluate_worldmodel

    if args.classifier:
        from rlgan.safety.run import read_safety_info

        read_safety_info(args.classifier)  # a bad classifier fails before the evaluation
        if args.foresight_starts < 1:
            raise ValueError(f"--foresight-starts must be >= 1, got {args.foresight_starts}")
    elif args.mirror_average:
        raise ValueError("--mirror-average scores the classifier's foresight: give --classifier RUN")
    device = resolve_device(args.device)
    result = evaluate_worldmodel(args.run, args.data, env_id=args.env, env_kwargs=env_kwargs_from(args),
                                 baseline_run=args.baseline_run, max_samples=args.samples,
                                 states=args.states, depth=args.depth, rollouts_count=args.rollouts,
                                 device=device, seed=args.seed)
    result["foresight"] = None
    if args.classifier:
        from rlgan.safety.foresight import evaluate_foresight

        result["foresight"] = evaluate_foresight(args.classifier, args.run, args.data, args.baseline_run,
                                                 count=args.foresight_starts, device=device,
                                                 seed=args.seed, mirror_average=args.mirror_average)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def run_dream(args: argparse.Namespace) -> int:
    from rlgan.device import resolve_device
    from rlgan.worldmodel.dream_window import run_dream_window

    summary = run_dream_window(args.run, env_id=args.env, env_kwargs=env_kwargs_from(args),
                               agent=args.agent, steps=args.steps, sync_every=args.sync_every,
                               scale=args.scale, fps=args.fps, video=args.video, seed=args.seed,
                               device=resolve_device(args.device))
    print(json.dumps(summary, indent=2))
    return 0
