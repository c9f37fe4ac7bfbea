"""``rlgan plot``: the learning curve of a run as a PNG; for a self-play run, both teams'
reward with its phases, the behaviour statistics, and a GIF of a learned game per phase."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="plot a run's learning curve (PNG)",
        description="Plot a run's learning curve. A self-play run (rlgan train --teams): both "
                    "teams' return with its phases and the behaviour statistics (PNG), the "
                    "statistics per phase (OUT_phases.json) and a game per phase "
                    "(OUT_phaseK.gif), beside the PNG.")
    parser.add_argument("--run", required=True, help="run directory")
    parser.add_argument("--out", help="PNG path (default: RUN/learning_curve.png, RUN/teams.png "
                                      "for a self-play run)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
