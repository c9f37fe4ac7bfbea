"""The ``rlgan`` command line: one subcommand per module in this package.

Each subcommand module defines ``add_parser(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning an exit code). Heavy imports happen
inside ``func``, so ``rlgan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

#: Subcommand modules of :mod:`rlgan.cli`, in the order ``rlgan --help`` lists them.
SUBCOMMANDS = ["demo", "play", "record", "train", "eval", "plot", "worldmodel", "safety", "shield"]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like those of the commands themselves
    (``rlgan CMD: error: ...``, exit code 2); ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``rlgan`` argument parser with every subcommand."""
    parser = Parser(
        prog="rlgan",
        description="Reinforcement learning with learned world models (SAD-GAN).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"rlgan.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rlgan`` command line; return the exit code.

    Errors from bad input (unknown ids, options, corrupt files, paths that cannot be read or
    written) print one line and exit 2.
    """
    from rlgan.io import DirectoryBusyError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, DirectoryBusyError) as error:
        print(f"rlgan {args.command}: error: {error}", file=sys.stderr)
        return 2
