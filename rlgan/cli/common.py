"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from rlgan.config import parse_kv


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--env-kwargs k=v ...`` and the shortcuts ``--map``, ``--game``, ``--role``."""
    parser.add_argument("--env-kwargs", nargs="*", action="extend", default=[], metavar="K=V",
                        help="environment options, e.g. max_steps=500 grayscale=true")
    parser.add_argument("--map", help="driving map (same as --env-kwargs map=M)")
    parser.add_argument("--game", help="Atari game (same as --env-kwargs game=G)")
    parser.add_argument("--role", help="hide-and-seek role: hider or seeker")


def add_agent_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--agent``: the policy a command runs (or shields)."""
    parser.add_argument("--agent", default="scripted",
                        help="run directory of rlgan train, random or scripted (default: %(default)s)")


def env_kwargs_from(args: argparse.Namespace) -> dict[str, Any]:
    """Collect environment options from ``--env-kwargs`` and the shortcut flags."""
    kwargs = parse_kv(args.env_kwargs)
    for name in ("map", "game", "role"):
        value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = value
    return kwargs
