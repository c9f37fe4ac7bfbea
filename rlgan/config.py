"""Typed configuration: build dataclass configs from keyword overrides with helpful errors.

Every rlgan environment, agent and model keeps its settings in a frozen dataclass. Users pass
overrides as keywords (``gymnasium.make(..., lanes=4)``) or on the command line
(``--env-kwargs lanes=4``); an unknown key fails with the valid keys and the closest match.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` naming ``name``, the bad ``value`` and the valid ``choices``."""
    choices = list(choices)
    if value not in choices:
        hint = did_you_mean(str(value), [str(c) for c in choices])
        raise ValueError(
            f"unknown {name} {value!r}; valid choices: {', '.join(map(repr, choices))}.{hint}"
        )


def build_config(config_cls: type[ConfigT], overrides: Mapping[str, Any] | None = None,
                 base: ConfigT | None = None) -> ConfigT:
    """Return ``config_cls`` (a dataclass) with ``overrides`` applied to ``base`` or the defaults.

    Raises:
        TypeError: a key in ``overrides`` is not a field of ``config_cls``.
    """
    overrides = dict(overrides or {})
    field_names = [f.name for f in dataclasses.fields(config_cls)]
    for key in overrides:
        if key not in field_names:
            raise TypeError(
                f"{config_cls.__name__} has no option {key!r}.{did_you_mean(key, field_names)} "
                f"Valid options: {', '.join(field_names)}"
            )
    if base is None:
        return config_cls(**overrides)
    return dataclasses.replace(base, **overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-friendly dict of a dataclass config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def parse_value(text: str) -> Any:
    """Parse a command-line value: JSON when it parses (``4``, ``0.5``, ``true``, ``[1,2]``),
    else the plain string (``night``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_kv(pairs: Iterable[str] | None) -> dict[str, Any]:
    """Turn ``["map=night", "lanes=4"]`` into ``{"map": "night", "lanes": 4}``.

    Raises:
        ValueError: an item has no ``=``.
    """
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {pair!r}")
        result[key.strip().replace("-", "_")] = parse_value(value)
    return result
