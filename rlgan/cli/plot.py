"""``rlgan plot``: the learning curve of a run as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="plot a run's learning curve (PNG)")
    parser.add_argument("--run", required=True, help="run directory")
    parser.add_argument("--out", help="PNG path (default: RUN/learning_curve.png)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.agents.plotting import plot_learning_curve

    out = Path(args.out) if args.out else Path(args.run) / "learning_curve.png"
    print(plot_learning_curve(args.run, out))
    return 0
