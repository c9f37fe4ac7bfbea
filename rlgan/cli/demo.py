"""``rlgan demo``: the first command a newcomer runs.

It drives ``rlgan/Driving-v0`` with a DQN agent alone, with the SAD-GAN shield and with the
oracle shield, on the map the models trained on and on unseen maps, shows the shielded agent
(a pygame window when a display is present, else a GIF), and writes a report. By default it
uses the small weights bundled with rlgan; ``--from-scratch`` trains them first
(:mod:`rlgan.demo.pipeline`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="a DQN driver alone and shielded by SAD-GAN: window or GIF, and a report",
        description="Drive rlgan/Driving-v0 with the DQN agent alone, with the SAD-GAN shield "
                    "(world model + safety classifier) and with the oracle shield, on the "
                    "training map and an unseen one; show the shielded agent beside the world "
                    "model's predictions for every key; write OUT/report.md. Uses the bundled "
                    "weights unless --from-scratch or --weights is given.")
    parser.add_argument("--out", default="rlgan-output/demo", help="output directory")
    parser.add_argument("--from-scratch", action="store_true",
                        help="record data and train the world model, classifier and agent first "
                             "(about 30 min on 2 CPU cores; resumes if interrupted)")
    parser.add_argument("--budget", default="default", choices=["default", "tiny"],
                        help="training budget of --from-scratch (tiny: a quick check)")
    parser.add_argument("--weights", help="a weights directory with worldmodel/, safety/ and "
                                          "agent/ runs (default: the bundled weights)")
    parser.add_argument("--export-weights", metavar="DIR",
                        help="copy the inference files of the weights used into DIR")
    parser.add_argument("--maps", nargs="+", default=["day", "night"],
                        help="maps to evaluate on (default: day night)")
    parser.add_argument("--episodes", type=int, default=3, help="episodes per row")
    parser.add_argument("--max-steps", type=int, default=300, help="steps per episode")
    parser.add_argument("--depth", type=int, default=3, help="search depth of the shields")
    parser.add_argument("--show-steps", type=int, default=150,
                        help="steps of the shielded episode shown (0: none)")
    parser.add_argument("--display", default="auto", choices=["auto", "window", "video"],
                        help="auto: a window when a display is present, else a GIF")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.set_defaults(func=run)


def has_display() -> bool:
    """Whether pygame can open a window here."""
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return False
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY")
                                                      or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    from rlgan.demo.evaluation import evaluate, removed_fraction
    from rlgan.demo.pipeline import BUDGETS, TRAIN_MAP, run_pipeline
    from rlgan.demo.report import plot_rows, prediction_samples, write_report
    from rlgan.demo.showcase import Window, run_showcase
    from rlgan.demo.weights import BUNDLED, DemoWeights
    from rlgan.device import resolve_device
    from rlgan.video import write_video

    if args.episodes < 1 or args.max_steps < 1 or args.show_steps < 0:
        raise ValueError("--episodes and --max-steps must be >= 1 and --show-steps >= 0")
    if args.from_scratch and args.weights:
        raise ValueError("--from-scratch trains new weights; leave out --weights")
    began = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    print(f"[demo] device: {device}")
    if args.from_scratch:
        weights = run_pipeline(out / "runs", BUDGETS[args.budget], args.seed)
    else:
        weights = DemoWeights(Path(args.weights) if args.weights else BUNDLED)
    weights.check()
    if args.export_weights:
        exported = weights.export(args.export_weights)
        print(f"[demo] exported the weights to {exported.root} ({exported.size_bytes() / 1e6:.1f} MB)")

    files: dict[str, Path | None] = {"report": out / "report.md", "results": out / "results.json"}
    if args.show_steps:
        window_wanted = args.display == "window" or (args.display == "auto" and has_display())
        window = Window(fps=10) if window_wanted else None
        print(f"[demo] showing {args.show_steps} steps of the shielded agent on {TRAIN_MAP}"
              f"{' in a window' if window else ''}")
        try:
            frames = run_showcase(weights, TRAIN_MAP, args.show_steps, args.depth, args.seed,
                                  device, window)
        finally:
            if window is not None:
                window.close()
        files["video"] = write_video(out / "shielded_agent.gif", frames, fps=10)
    rows = evaluate(weights, args.maps, TRAIN_MAP, args.episodes, args.max_steps, args.depth,
                    args.seed, device, progress=lambda what: print(f"[demo] evaluating {what}",
                                                                   flush=True))
    files["plot"] = plot_rows(rows, out / "shield.png")
    files["predictions"] = prediction_samples(weights, TRAIN_MAP, out / "predictions.png",
                                              seed=args.seed, device=device)
    settings = {"weights": str(weights.root), "train_map": TRAIN_MAP, "maps": args.maps,
                "episodes": args.episodes, "max_steps": args.max_steps, "depth": args.depth,
                "seed": args.seed, "device": str(device), "from_scratch": args.from_scratch}
    report = write_report(out, rows, settings, files)
    for map_name in args.maps:
        row = {r["name"]: r for r in rows if r["map"] == map_name}
        removed = removed_fraction(rows, map_name, "gan_shield")
        print(f"[demo] {map_name}: unsafe/1000 agent {row['agent']['unsafe_per_1000']:.1f}, "
              f"GAN shield {row['gan_shield']['unsafe_per_1000']:.1f}, oracle "
              f"{row['oracle_shield']['unsafe_per_1000']:.1f}"
              + ("" if removed is None else f" (GAN removed {100 * removed:.0f}%)"))
    print(f"[demo] report: {report}  ({time.perf_counter() - began:.0f} s)")
    return 0
