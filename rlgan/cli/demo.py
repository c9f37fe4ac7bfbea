"""``rlgan demo``: the first command a newcomer runs.

It drives ``rlgan/Driving-v0`` with a DQN agent alone, with the learned SAD-GAN shield and with
the oracle shield, in episodes that start in a hazard, on the map the shield trained on and on
an unseen one; shows the shielded agent (a pygame window when a display is present, else a
GIF); and writes a report. By default it uses the agent and shield bundled with rlgan;
``--from-scratch`` trains the shield first with ``rlgan shield train --budget demo``
(:mod:`rlgan.demo.pipeline`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from rlgan.demo.weights import DemoWeights


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="a DQN driver alone and shielded by SAD-GAN: window or GIF, and a report",
        description="Drive rlgan/Driving-v0 with the DQN agent alone, with the SAD-GAN shield "
                    "(world model + safety classifier, made by rlgan shield train) and with the "
                    "oracle shield, in episodes that start in a hazard, on the training map and "
                    "an unseen one; show the shielded agent beside the world model's predictions "
                    "for every action; write OUT/report.md. Uses the bundled agent and shield unless "
                    "--from-scratch or --weights is given.")
    parser.add_argument("--out", default="rlgan-output/demo", help="output directory")
    parser.add_argument("--from-scratch", action="store_true",
                        help="train the shield for the bundled agent first: rlgan shield train "
                             "--budget demo (about 20 min on 2 CPU cores; resumes if interrupted)")
    parser.add_argument("--budget", default="demo", choices=["demo", "tiny"],
                        help="budget of --from-scratch (tiny: a quick check)")
    parser.add_argument("--weights", help="a weights directory with agent/ (rlgan train) and "
                                          "shield/ (rlgan shield train) (default: the bundled ones)")
    parser.add_argument("--export-weights", metavar="DIR",
                        help="copy the inference files of the weights used into DIR")
    parser.add_argument("--maps", nargs="+", default=["day", "night"],
                        help="maps to evaluate on (default: day night)")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes per row (default: %(default)s)")
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS,
                        help="steps per episode (default: %(default)s)")
    parser.add_argument("--show-steps", type=int, default=150,
                        help="steps of the shielded episode shown (0: none)")
    parser.add_argument("--display", default="auto", choices=["auto", "window", "video"],
                        help="auto: a window when a display is present, else a GIF")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.set_defaults(func=run)


#: Sized so the agent's row on each map holds at least 30 unsafe events (benchmarks/RESULTS.md).
EPISODES = 200
MAX_STEPS = 30


def has_display() -> bool:
    """Whether pygame can open a window here."""
    if os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return False
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY")
                                                      or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    import torch

    from rlgan.demo.evaluation import evaluate_demo
    from rlgan.demo.pipeline import TRAIN_MAP
    from rlgan.demo.report import plot_rows, prediction_samples, write_report
    from rlgan.device import resolve_device

    _check_arguments(args)
    began = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # small batches; the maps run in parallel processes
    print(f"[demo] device: {device}")
    weights = _weights(args, out)
    files: dict[str, Path | None] = {"report": out / "report.md", "results": out / "results.json"}
    if args.show_steps:
        files["video"] = _show(weights, args, device, out)
    rows = evaluate_demo(weights, args.maps, TRAIN_MAP, args.episodes, args.max_steps, args.seed,
                         device, progress=lambda what: print(f"[demo] evaluating {what}", flush=True))
    files["plot"] = plot_rows(rows, out / "shield.png")
    files["predictions"] = prediction_samples(weights, TRAIN_MAP, out / "predictions.png",
                                              seed=args.seed, device=device)
    settings = {"weights": str(weights.root), "train_map": TRAIN_MAP, "maps": args.maps,
                "episodes": args.episodes, "max_steps": args.max_steps,
                "depth": weights.shield.read_choice()["depth"],
                "seed": args.seed, "device": str(device), "from_scratch": args.from_scratch}
    report = write_report(out, rows, settings, files)
    _print_rows(rows, args.maps, args.episodes)
    print(f"[demo] report: {report}  ({time.perf_counter() - began:.0f} s)")
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` on bad counts, maps or a clash of --from-scratch and --weights."""
    from rlgan.config import check_choice
    from rlgan.envs.driving.config import MAPS

    if args.episodes < 1 or args.max_steps < 1 or args.show_steps < 0:
        raise ValueError("--episodes and --max-steps must be >= 1 and --show-steps >= 0")
    if args.from_scratch and args.weights:
        raise ValueError("--from-scratch trains new weights; leave out --weights")
    for name in args.maps:
        check_choice("map", name, MAPS)


def _weights(args: argparse.Namespace, out: Path) -> DemoWeights:
    """The demo's weights: trained from scratch under ``out``, ``--weights`` or the bundled
    ones; checked, and exported with ``--export-weights``."""
    from rlgan.demo.pipeline import train_demo_shield
    from rlgan.demo.weights import BUNDLED, DemoWeights

    if args.from_scratch:
        weights = train_demo_shield(out / "runs", args.budget, args.seed, args.device)
    else:
        weights = DemoWeights(Path(args.weights) if args.weights else BUNDLED)
    weights.check()
    if args.export_weights:
        exported = weights.export(args.export_weights)
        print(f"[demo] exported the weights to {exported.root} ({exported.size_bytes() / 1e6:.1f} MB)")
    return weights


def _show(weights: DemoWeights, args: argparse.Namespace, device: torch.device, out: Path) -> Path:
    """Show the shielded agent (in a window when wanted and possible); return its GIF."""
    from rlgan.demo.pipeline import TRAIN_MAP
    from rlgan.demo.showcase import Window, run_showcase
    from rlgan.video import write_video

    window_wanted = args.display == "window" or (args.display == "auto" and has_display())
    window = Window(fps=10) if window_wanted else None
    print(f"[demo] showing {args.show_steps} steps of the shielded agent on {TRAIN_MAP}"
          f"{' in a window' if window else ''}")
    try:
        frames = run_showcase(weights, TRAIN_MAP, args.show_steps, args.seed, device, window)
    finally:
        if window is not None:
            window.close()
    return write_video(out / "shielded_agent.gif", frames, fps=10)


def _print_rows(rows: list[dict[str, Any]], maps: list[str], episodes: int) -> None:
    """One line per map: the unsafe events of each row and what each shield removed."""
    from rlgan.demo.report import removed_text

    for map_name in maps:
        row = {r["name"]: r for r in rows if r["map"] == map_name}
        print(f"[demo] {map_name}: unsafe events agent {row['agent']['unsafe_events']}, "
              f"GAN shield {row['gan_shield']['unsafe_events']}, oracle "
              f"{row['oracle_shield']['unsafe_events']} ({episodes} episodes each); "
              f"GAN removed {removed_text(row['gan_shield'])}, oracle "
              f"{removed_text(row['oracle_shield'])}")
