"""``rlgan plot``: a run's learning curve, or a world-model evaluation's per-step curves, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="plot a run's learning curve or a world-model evaluation (PNG)",
        description="--run RUN: the learning curve of an agent run (rlgan train). "
                    "--worldmodel-eval EVAL.json: PSNR, SSIM and sharpness per open-loop step "
                    "and the classifier's foresight AUC (rlgan worldmodel eval --json > EVAL.json).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="agent run directory")
    source.add_argument("--worldmodel-eval", metavar="EVAL.json",
                        help="output of rlgan worldmodel eval --json")
    parser.add_argument("--out", help="PNG path (default: RUN/learning_curve.png, or EVAL.png "
                                      "beside EVAL.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.worldmodel_eval:
        from rlgan.worldmodel.plotting import plot_worldmodel_evaluation

        out = Path(args.out) if args.out else Path(args.worldmodel_eval).with_suffix(".png")
        print(plot_worldmodel_evaluation(args.worldmodel_eval, out))
        return 0
    from rlgan.agents.plotting import plot_learning_curve

    out = Path(args.out) if args.out else Path(args.run) / "learning_curve.png"
    print(plot_learning_curve(args.run, out))
    return 0
