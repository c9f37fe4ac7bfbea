"""``rlgan plot``: the learning curve of a run as a PNG (for a self-play run, both teams'
reward with its phases, the behaviour statistics and a GIF of a learned game per phase), or a
world-model evaluation's per-step curves."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="plot a run's learning curve or a world-model evaluation (PNG)",
        description="--run RUN: the learning curve of an agent run (rlgan train); for a "
                    "self-play run (rlgan train --teams), both teams' return with its phases and "
                    "the behaviour statistics (PNG), the statistics per phase (OUT_phases.json) "
                    "and a game per phase (OUT_phaseK.gif), beside the PNG. "
                    "--worldmodel-eval EVAL.json: PSNR, SSIM and sharpness per open-loop step "
                    "and the classifier's foresight AUC (rlgan worldmodel eval --json > EVAL.json).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="agent run directory")
    source.add_argument("--worldmodel-eval", metavar="EVAL.json",
                        help="output of rlgan worldmodel eval --json")
    parser.add_argument("--out", help="PNG path (default: RUN/learning_curve.png, RUN/teams.png "
                                      "for a self-play run, or EVAL.png beside EVAL.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.worldmodel_eval:
        from rlgan.worldmodel.plotting import plot_worldmodel_evaluation

        out = Path(args.out) if args.out else Path(args.worldmodel_eval).with_suffix(".png")
        print(plot_worldmodel_evaluation(args.worldmodel_eval, out))
        return 0
    from rlgan.agents.plotting import plot_learning_curve
    from rlgan.agents.training import Run

    if Run(args.run).config()["algo"] == "ppo":
        from rlgan.agents.team_plotting import plot_teams

        written = plot_teams(args.run, Path(args.out) if args.out else Path(args.run) / "teams.png")
        print("\n".join(written.values()))
        return 0
    out = Path(args.out) if args.out else Path(args.run) / "learning_curve.png"
    print(plot_learning_curve(args.run, out))
    return 0
