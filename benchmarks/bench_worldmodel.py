"""SAD-GAN world model benchmark: one command records, trains, evaluates and prints a table.

    python benchmarks/bench_worldmodel.py            # full run, about 75 min on 2 CPU cores
    python benchmarks/bench_worldmodel.py --quick    # a few minutes, to check it works
    python benchmarks/bench_worldmodel.py compare --budget tiny   # regression vs GAN vs VAE

``compare`` trains the lambda = 0 regression model, the GAN and the VAE on one dataset with one
budget (steps, batch, schedule, seed) and prints one table of open-loop PSNR, SSIM and
sharpness at rollout steps 1, 2, 4, 8, 16 (copy-last beside), the classifier's foresight AUC
with ``--classifier RUN`` (on ``--foresight-data DIR`` if given) and each model's training
throughput; ``--budget tiny`` records its own small dataset and runs in a minute or two (see
:func:`compare_main`).

1. records driving data with the scripted driver taking a random action 30% of the time, on the
   training map (day) and on a map the model never sees (night);
2. pretrains a generator on the reconstruction loss alone (lambda_adv = 0), then, from those
   weights (``rlgan worldmodel train --init-from``), trains the GAN (lambda_adv > 0, a fresh
   discriminator) and, as its control, the regression baseline (lambda_adv = 0) with the same
   schedule, batches and number of steps: only the adversarial term differs (SRGAN's recipe:
   pretrain on the pixel loss, then add the adversary);
3. evaluates both on held-out day episodes and on the night data (rlgan worldmodel eval) and
   times a depth-3 tree of predictions (3 + 9 + 27 frames, one batched call per level).

Anchors: copying the last frame, and the lambda = 0 model. Runs go to --out (default
benchmarks/runs/worldmodel, not committed); each run's samples.png shows its predictions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import time
from pathlib import Path

from common import machine, table  # first: it sets the dummy SDL driver
import numpy as np
import torch

from rlgan.cli import main as rlgan_main
from rlgan.data import DatasetError
from rlgan.safety.foresight import evaluate_foresight
from rlgan.safety.run import load_safety_run
from rlgan.worldmodel import WorldModel, train_worldmodel
from rlgan.worldmodel.data import dataset_identity
from rlgan.worldmodel.evaluate import evaluate_worldmodel
from rlgan.worldmodel.run import load_progress

#: (full, quick) budgets.
BUDGETS = {
    "train_steps": (24_000, 1_500),
    "other_steps": (3_000, 400),
    "pretrain_steps": (24_000, 150),
    "finetune_steps": (3_000, 50),
    "eval_samples": (2_000, 300),
    "eval_states": (200, 40),
}
ENV_KWARGS = ["max_steps=300"]  # shorter episodes: more of them to hold out
PRETRAIN_OPTIONS = {"lambda_adv": 0.0, "learning_rate": 1e-3, "lr_schedule": "cosine",
                    "batch_size": 32, "history": 2, "log_every": 100, "sample_every": 500,
                    "checkpoint_every": 1000, "seed": 0}
FINETUNE_OPTIONS = {**PRETRAIN_OPTIONS, "learning_rate": 2e-4, "adv_warmup": 200,
                    "checkpoint_every": 500}
GAN_LAMBDA = 0.001


def record(out: Path, map_name: str, steps: int, seed: int, env_kwargs: list[str] = ENV_KWARGS,
           agent: str = "scripted") -> Path:
    """``rlgan record`` with the epsilon-scripted driver, or ``agent`` (output silenced)."""
    with contextlib.redirect_stdout(io.StringIO()):
        code = rlgan_main(["record", "--env", "rlgan/Driving-v0", "--map", map_name,
                           "--agent", agent, "--epsilon", "0.3", "--steps", str(steps),
                           "--out", str(out), "--seed", str(seed), "--env-kwargs", *env_kwargs])
    if code:
        raise SystemExit(f"recording {out} failed")
    return out


def tree_latency_ms(run: Path, repeats: int = 30) -> float:
    """Median time of 3 + 9 + 27 predictions in three batched calls (a depth-3 search's)."""
    model = WorldModel.load(run, "cpu")
    height, width, channels = model.frame_shape
    frames = torch.rand(1, model.history, channels, height, width) * 2 - 1
    noise = torch.Generator().manual_seed(0)

    def tree() -> None:
        nodes = frames
        for _ in range(3):
            parents = nodes.repeat_interleave(model.n_actions, dim=0)
            actions = torch.arange(model.n_actions).repeat(len(nodes))
            children = model.predict(parents, actions, 1, generator=noise)[:, 0]
            nodes = torch.cat([parents[:, 1:], children[:, None]], dim=1)

    for _ in range(5):
        tree()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tree()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def train_stages(day: Path, out: Path, pretrain_steps: int, finetune_steps: int,
                 reuse: bool) -> tuple[dict[str, Path], dict[str, float]]:
    """The pretrained, GAN and regression runs (a finished one is kept with ``reuse``) and
    their training throughput (samples per second)."""
    runs, rates = {}, {}
    stages = (("pretrained", PRETRAIN_OPTIONS, pretrain_steps, None),
              ("gan", {**FINETUNE_OPTIONS, "lambda_adv": GAN_LAMBDA}, finetune_steps, "pretrained"),
              ("regression", FINETUNE_OPTIONS, finetune_steps, "pretrained"))
    for name, options, steps, init_from in stages:
        runs[name] = out / name
        if reuse and (runs[name] / "checkpoint" / "progress.json").is_file():
            result = load_progress(runs[name])
        else:
            result = train_worldmodel(day, runs[name], {**options, "steps": steps}, progress=True,
                                      overwrite=True,
                                      init_from=runs[init_from] if init_from else None)
        rates[name] = result["samples_per_second"]
    return runs, rates


def result_rows(day: dict, night: dict, rates: dict[str, float], latency: float) -> list[tuple[str, str, str, str]]:
    """The table: one row per metric, its day and night figures and the target."""
    gain_day = day["psnr"] - day["psnr_copy_last"]
    gain_night = night["psnr"] - night["psnr_copy_last"]
    psnr_loss = -day["psnr_gain"]
    sharper, sharper_stderr = day["sharpness_gain"], day["sharpness_gain_stderr"]
    # sharper: a paired gain beyond two standard errors, not a tie within noise
    sharpness_met = sharper > 2 * sharper_stderr and psnr_loss <= 1

    def both(key: str, digits: int = 2) -> tuple[str, str]:
        return fmt(day[key], digits), fmt(night[key], digits)

    def accuracy(result: dict) -> str:
        return f"{fmt(100 * result['counterfactual_accuracy'], 1, '%')} of {result['counterfactual_states']}"

    def ssim(result: dict) -> str:
        return " / ".join(fmt(result[key], 3) for key in ("ssim", "ssim_copy_last", "ssim_baseline"))

    return [
        ("one-step PSNR, GAN [dB]", *both("psnr"), ""),
        ("one-step PSNR, copy-last [dB]", *both("psnr_copy_last"), ""),
        ("GAN - copy-last [dB]", fmt(gain_day, unit=" dB"), fmt(gain_night, unit=" dB"),
         f">= +6 dB on day: **{'met' if gain_day >= 6 else 'not met'}**"),
        ("one-step PSNR, lambda=0 [dB]", *both("psnr_baseline"), ""),
        ("SSIM, GAN / copy-last / lambda=0", ssim(day), ssim(night), ""),
        ("open-loop PSNR, depth 1..5 [dB]", " / ".join(fmt(v, 1) for v in day["psnr_by_depth"]),
         " / ".join(fmt(v, 1) for v in night["psnr_by_depth"]), ""),
        ("counterfactual accuracy (states)", accuracy(day), accuracy(night),
         f">= 90% on day: **{'met' if day['counterfactual_accuracy'] >= 0.9 else 'not met'}**"),
        ("sharpness, GAN / lambda=0 [dB]",
         f"{fmt(day['sharpness'])} / {fmt(day['sharpness_baseline'])}",
         f"{fmt(night['sharpness'])} / {fmt(night['sharpness_baseline'])}",
         f"GAN sharper at <= 1 dB PSNR loss: **{'met' if sharpness_met else 'not met'}** "
         f"({sharper:+.3f} +- {sharper_stderr:.3f} dB sharper, {psnr_loss:+.3f} dB PSNR loss)"),
        ("training throughput, GAN / lambda=0 [samples/s]",
         f"{rates['gan']:.0f} / {rates['pretrained']:.0f}", "", "CPU"),
        ("depth-3 tree of predictions (39 frames) [ms]", fmt(latency, 1), "", "<= 30 ms"),
    ]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        compare_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="bench_worldmodel.py compare --help: the regression "
                                            "model, the GAN and the VAE side by side")
    parser.add_argument("--quick", action="store_true", help="tiny budget, to check it runs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs" / "worldmodel")
    parser.add_argument("--pretrain-steps", type=int, help="steps of the lambda=0 pretraining")
    parser.add_argument("--finetune-steps", type=int, help="steps of the GAN and of its control")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the recordings and finished runs already in --out")
    args = parser.parse_args(argv)
    budget = {key: value[1 if args.quick else 0] for key, value in BUDGETS.items()}
    pretrain_steps = args.pretrain_steps or budget["pretrain_steps"]
    finetune_steps = args.finetune_steps or budget["finetune_steps"]
    if args.out.exists() and not args.reuse:
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    day, night = args.out / "day", args.out / "night"
    if not (args.reuse and day.exists() and night.exists()):
        record(day, "day", budget["train_steps"], seed=0)
        record(night, "night", budget["other_steps"], seed=10_000)
    recorded = time.perf_counter()
    runs, rates = train_stages(day, args.out, pretrain_steps, finetune_steps, args.reuse)
    trained = time.perf_counter()
    evaluation = {"max_samples": budget["eval_samples"], "states": budget["eval_states"]}
    day_gan = evaluate_worldmodel(runs["gan"], day, baseline_run=runs["regression"], **evaluation)
    night_gan = evaluate_worldmodel(runs["gan"], night, baseline_run=runs["regression"], **evaluation)
    latency = tree_latency_ms(runs["gan"])
    finished = time.perf_counter()
    print(f"\nSAD-GAN world model, rlgan/Driving-v0 64x64: {pretrain_steps:,} steps of lambda=0 "
          f"pretraining, then {finetune_steps:,} steps with lambda_adv {GAN_LAMBDA} (GAN) or 0 "
          f"(lambda=0 control) on {budget['train_steps']:,} day transitions ({machine()}, torch "
          f"threads {torch.get_num_threads()})")
    print(f"time: recording {recorded - began:.0f} s, training {trained - recorded:.0f} s, "
          f"evaluation {finished - trained:.0f} s\n")
    print(table(result_rows(day_gan, night_gan, rates, latency),
                ("metric", "day (training map, held out)", "night (unseen map)", "target")))
    print(f"\nsample grids: {runs['gan'] / 'samples.png'}, {runs['regression'] / 'samples.png'}")



# -- compare: the regression model, the GAN and the VAE on one budget ---------------------------
#: Per budget: the recording (frame size, steps, episode length), the training every model gets
#: and the evaluation.
COMPARE_BUDGETS = {
    "tiny": {"env_kwargs": ["obs_height=32", "obs_width=32", "max_steps=80", "hazard_start=0.8"],
             "record_steps": 1_000, "agent": "random",
             "train": {"steps": 150, "batch_size": 16}, "rollouts": 32, "foresight_starts": 128},
    "full": {"env_kwargs": ENV_KWARGS, "record_steps": 24_000, "agent": "scripted",
             "train": {"steps": 12_000, "batch_size": 32}, "rollouts": 256, "foresight_starts": 1024},
}
#: The compared models: the options each adds to the shared budget.
COMPARED_MODELS = {
    "regression": {"model": "gan", "lambda_adv": 0.0},
    "gan": {"model": "gan"},
    "vae": {"model": "vae"},
}
COMPARE_STEPS = (1, 2, 4, 8, 16)
COMPARE_DEPTH = COMPARE_STEPS[-1]


def compare_models(data: Path, out: Path, budget: dict, classifier: Path | None,
                   reuse: bool, foresight_data: Path | None = None) -> dict[str, dict]:
    """Train every model of :data:`COMPARED_MODELS` on ``data`` with ``budget["train"]`` (with
    ``reuse``, a finished run is kept and an interrupted one resumes from its last checkpoint)
    and evaluate it; return per model its ``eval`` (``rlgan worldmodel eval``'s dict),
    ``foresight`` (or None; on ``foresight_data``, default ``data``) and
    ``samples_per_second``."""
    shared = {**budget["train"], "seed": 0, "log_every": 50, "sample_every": 1_000,
              "checkpoint_every": 1_000, "device": "cpu"}
    results = {}
    for name, options in COMPARED_MODELS.items():
        run = out / name
        settings = {**shared, **options}
        started = reuse and (run / "checkpoint" / "progress.json").is_file()
        if started and load_progress(run)["step"] >= settings["steps"]:
            progress = load_progress(run)
        else:
            progress = train_worldmodel(data, run, settings, progress=False, resume=started,
                                        overwrite=not started)
        evaluation = evaluate_worldmodel(run, data, states=0, depth=COMPARE_DEPTH,
                                         rollouts_count=budget["rollouts"], max_samples=budget["rollouts"])
        foresight = (evaluate_foresight(classifier, run, foresight_data or data,
                                        count=budget["foresight_starts"])
                     if classifier else None)
        results[name] = {"eval": evaluation, "foresight": foresight,
                         "samples_per_second": progress["samples_per_second"]}
    return results


def compare_rows(results: dict[str, dict]) -> list[tuple[str, ...]]:
    """The table: per model and metric the values at :data:`COMPARE_STEPS`, copy-last's once,
    the foresight AUC at the horizons that are rollout steps, and the training throughput."""
    rows = []
    first = next(iter(results.values()))["eval"]
    for metric, digits in (("psnr", 2), ("ssim", 3), ("sharpness", 2)):
        for name, result in results.items():
            values = result["eval"][f"{metric}_by_depth"]
            rows.append((name, metric, *[fmt(values[k - 1], digits) for k in COMPARE_STEPS],
                         f"{result['samples_per_second']:.0f}"))
        copy = first[f"{metric}_by_depth_copy_last"]
        rows.append(("copy-last", metric, *[fmt(copy[k - 1], digits) for k in COMPARE_STEPS], ""))
    for name, result in results.items():
        foresight = result["foresight"]
        if foresight is None:
            continue
        auc = dict(zip(foresight["horizons"], foresight["auc"]["model"]))
        rows.append((name, "AUC unsafe within k", *[fmt(auc.get(k), 3) for k in COMPARE_STEPS], ""))
    foresights = [result["foresight"] for result in results.values() if result["foresight"]]
    if foresights:
        recorded = dict(zip(foresights[0]["horizons"], foresights[0]["auc_recorded_frames"]))
        rows.append(("recorded frames", "AUC unsafe within k",
                     *[fmt(recorded.get(k), 3) for k in COMPARE_STEPS], ""))
        positives = dict(zip(foresights[0]["horizons"], foresights[0]["positives"]))
        rows.append((f"{foresights[0]['starts']} starts", "unsafe within k",
                     *[str(positives.get(k, "")) for k in COMPARE_STEPS], ""))
    return rows


def compare_main(argv: list[str]) -> None:
    """``bench_worldmodel.py compare``: the regression model, the GAN and the VAE side by side."""
    parser = argparse.ArgumentParser(prog="bench_worldmodel.py compare",
                                     description="Train and evaluate the lambda=0 regression "
                                                 "model, the GAN and the VAE on one budget")
    parser.add_argument("--budget", choices=tuple(COMPARE_BUDGETS), default="full")
    parser.add_argument("--data", type=Path, help="dataset to use (default: record one into --out)")
    parser.add_argument("--classifier", type=Path, metavar="RUN",
                        help="safety run: also report its foresight AUC on each model's rollouts")
    parser.add_argument("--foresight-data", type=Path, metavar="DIR",
                        help="recording to measure foresight on (default: the training data), "
                             "e.g. hazard starts, where unsafe steps are many")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs" / "worldmodel_compare")
    parser.add_argument("--reuse", action="store_true", help="keep the data and finished runs in --out")
    args = parser.parse_args(argv)
    if args.foresight_data is not None and args.classifier is None:
        parser.error("--foresight-data needs --classifier")
    try:  # a missing or corrupt input fails before any training
        if args.classifier is not None:
            load_safety_run(args.classifier, "cpu")
        if args.foresight_data is not None:
            dataset_identity(args.foresight_data)
    except (DatasetError, FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    budget = COMPARE_BUDGETS[args.budget]
    if args.out.exists() and not args.reuse:
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    data = args.data
    if data is None:
        data = args.out / "data"
        if not (args.reuse and data.exists()):
            shutil.rmtree(data, ignore_errors=True)
            record(data, "day", budget["record_steps"], seed=0, env_kwargs=budget["env_kwargs"],
                   agent=budget["agent"])
    results = compare_models(data, args.out, budget, args.classifier, args.reuse,
                             args.foresight_data)
    with open(args.out / "compare.json", "w") as file:
        json.dump(results, file, indent=1)
    first = next(iter(results.values()))["eval"]
    print(f"\nworld models on {data} ({first['split']}, {first['rollouts']} rollouts of "
          f"{COMPARE_DEPTH} steps), budget {args.budget}: {budget['train']['steps']:,} steps of "
          f"{budget['train']['batch_size']} transitions each ({machine()}, torch threads "
          f"{torch.get_num_threads()}, {time.perf_counter() - began:.0f} s)\n")
    print(table(compare_rows(results), ("model", "metric", *[f"step {k}" for k in COMPARE_STEPS],
                                        "train samples/s")))
    print(f"\nall figures: {args.out / 'compare.json'}")


if __name__ == "__main__":
    main()
