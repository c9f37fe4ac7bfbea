"""Arguments shared by several subcommands, and the rule that names them.

One name per concept, in every command:

- ``--agent``: who acts: ``scripted`` (the env's built-in policy), ``random``, ``human`` (the
  keyboard, where a person can play) or the run directory of ``rlgan train`` (its best agent,
  greedy). ``rlgan eval``, ``record``, ``worldmodel dream``, ``safety collect`` and
  ``shield train|eval`` all take it.
- ``--shield``: the shield that corrects the agent: a shield directory (``rlgan shield
  train``: its chosen depth and calibrated threshold), a safety run (``rlgan safety train``,
  which names its world model) or ``oracle`` (the true simulator).
- ``--worldmodel``: a world-model run that another command uses; ``--data``: a dataset
  (``rlgan record``) or outcome records (``rlgan safety collect``) that a command reads;
  ``--weights``: the demo's agent and shield together.

Where a command writes:

- ``--run DIR``: the run directory of the one model a ``train`` subcommand trains
  (``rlgan train``, ``rlgan worldmodel train``, ``rlgan safety train``): its checkpoints,
  settings and logs. The commands that inspect that run read it back with ``--run``
  (``rlgan plot``, ``rlgan worldmodel eval|dream``, ``rlgan safety eval``). Under torchrun,
  ``rlgan worldmodel train`` spells it ``--run-dir`` (torchrun takes ``--run`` for its own
  ``--run-path``).
- ``--out PATH``: everything else a command writes: a dataset (``rlgan record``), outcome
  records (``rlgan safety collect``), a shield directory (``rlgan shield train``), the
  demo's report folder, a plot.
- A second output beside the main one is named by what it holds: ``--video``, ``--record``,
  ``--export-weights``.

A renamed option keeps its old spelling as a deprecated alias (:func:`add_renamed_argument`):
it still works, prints a one-line warning on stderr and is left out of ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from rlgan.config import parse_kv

#: The baseline agents: named by a word, not by a run directory (``human`` aside).
BASELINE_AGENTS = ("random", "scripted")


class _Renamed(argparse.Action):
    """Store the option's value; an old spelling of the option also does, with a warning."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if option_string is not None and option_string not in self.option_strings:
            print(f"{parser.prog}: warning: {option_string} is deprecated; use "
                  f"{self.option_strings[0]}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed_argument(parser: argparse.ArgumentParser, name: str, *old_names: str,
                         **kwargs: Any) -> argparse.Action:
    """Add the option ``name`` (a value option, like ``add_argument``'s default action) that
    also answers to its deprecated spellings ``old_names``: they parse into the same value,
    print a one-line warning on stderr and are left out of ``--help``."""
    action = parser.add_argument(name, *old_names, action=_Renamed, **kwargs)
    action.option_strings = [name]  # the parser still knows the old spellings
    return action


class ConfigDefault:
    """The default of a config dataclass field, shown by ``--help`` through
    ``%(config_default)s`` and looked up only then, so building the parser imports no model
    code (``rlgan --help`` stays fast).

    Args:
        config: ``"module:Class"`` of the dataclass.
        field: the field's name.
    """

    def __init__(self, config: str, field: str) -> None:
        self.config, self.field = config, field

    def __str__(self) -> str:
        module, name = self.config.split(":")
        fields = dataclasses.fields(getattr(importlib.import_module(module), name))
        return str(next(field.default for field in fields if field.name == self.field))


def add_config_options(parser: argparse.ArgumentParser, config: str,
                       options: Sequence[tuple[str, str, type | tuple[str, ...], str]]) -> list[str]:
    """Add one ``--flag`` per config field, whose default is the config's own.

    A flag left out stays None, so the dataclass's default applies (:func:`config_options`);
    ``--help`` shows that default.

    Args:
        config: ``"module:Class"`` of the config dataclass.
        options: ``(flag, field, type or choices, help)`` per option, the flag without its
            ``--``; the value is stored under the field's name.

    Returns:
        The fields, for :func:`config_options`.
    """
    for flag, field, kind, text in options:
        value = {"choices": kind} if isinstance(kind, tuple) else \
            {"type": kind, "metavar": flag.upper().replace("-", "_")}
        action = parser.add_argument(f"--{flag}", dest=field, help=f"{text} (default: %(config_default)s)",
                                     **value)
        action.config_default = ConfigDefault(config, field)
    return [field for _, field, _, _ in options]


def config_options(args: argparse.Namespace, fields: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` of the options of :func:`add_config_options` given on the command line."""
    return {field: getattr(args, field) for field in fields if getattr(args, field) is not None}


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--env-kwargs k=v ...`` and the shortcuts ``--map``, ``--game``, ``--role``."""
    parser.add_argument("--env-kwargs", nargs="*", action="extend", default=[], metavar="K=V",
                        help="environment options, e.g. max_steps=500 grayscale=true")
    parser.add_argument("--map", help="driving map (same as --env-kwargs map=M)")
    parser.add_argument("--game", help="Atari game (same as --env-kwargs game=G)")
    parser.add_argument("--role", help="hide-and-seek role: hider or seeker")


def add_agent_argument(parser: argparse.ArgumentParser, *old_names: str,
                       default: str | None = "scripted", human: bool = False) -> None:
    """Add ``--agent``: who acts (see the module docstring), with ``old_names`` as deprecated
    spellings; ``human`` when a person at the keyboard may act; required when ``default`` is
    None."""
    agents = "human, scripted, random" if human else "scripted, random"
    shown = "" if default is None else " (default: %(default)s)"
    add_renamed_argument(parser, "--agent", *old_names, default=default, required=default is None,
                         metavar="AGENT", help=f"who acts: {agents} or the run directory of rlgan "
                                               f"train{shown}")


def add_mirror_average_argument(parser: argparse.ArgumentParser, condition: str = "") -> None:
    """Add ``--mirror-average``: the safety classifier scores each pair with its mirror image
    (:class:`rlgan.safety.classifier.MirrorAveraged`); ``condition`` opens its help's note."""
    parser.add_argument("--mirror-average", action="store_true",
                        help="score each pair as the mean P(unsafe) of it and its left-right "
                             f"mirror image ({condition}two classifier passes)")


def mirror_note(mirror_average: bool) -> str:
    """What a report adds after the classifier's name when ``--mirror-average`` scored it."""
    return ", averaged with the mirror image" if mirror_average else ""


def env_kwargs_from(args: argparse.Namespace) -> dict[str, Any]:
    """Collect environment options from ``--env-kwargs`` and the shortcut flags."""
    kwargs = parse_kv(args.env_kwargs)
    for name in ("map", "game", "role"):
        value = getattr(args, name, None)
        if value is not None:
            kwargs[name] = value
    return kwargs


def resolve_shield(shield: str, depth: int | None = None,
                   threshold: float | None = None) -> tuple[str, int | None, float | None]:
    """What ``--shield`` searches with: ``(safety run or "oracle", depth, threshold)``.

    A shield directory gives its safety run, its chosen depth unless ``depth`` is given, and
    that depth's calibrated threshold unless ``threshold`` is given; a safety run or
    ``oracle`` comes back as it is.

    Raises:
        FileNotFoundError / ValueError: a shield directory whose ``shield.json`` is corrupt.
    """
    from rlgan.pipeline.shield_dir import ShieldDir

    if not ShieldDir.holds_shield(shield):
        return shield, depth, threshold
    shield_dir = ShieldDir(shield)
    choice = shield_dir.read_choice()
    depth = choice["depth"] if depth is None else depth
    threshold = shield_dir.threshold(depth) if threshold is None else threshold
    return str(shield_dir.root / choice["classifier"]), depth, threshold
