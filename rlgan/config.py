"""Typed configuration: build dataclass configs from keyword overrides with helpful errors.

Every rlgan environment, agent and model keeps its settings in a frozen dataclass. Users pass
overrides as keywords (``gymnasium.make(..., max_steps=500)``) or on the command line
(``--env-kwargs max_steps=500``); an unknown key fails with the valid keys and the closest
match, and a value of the wrong type (``max_steps=2.5``) with the option and the type it expects.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np

ConfigT = TypeVar("ConfigT")

#: Words accepted in any case for JSON's ``true``, ``false`` and ``null``.
KEYWORDS = {"true": True, "false": False, "none": None, "null": None}


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


def check_int_range(name: str, value: Any, low: int, high: int) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an integer (not a bool) in
    ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def build_config(config_cls: type[ConfigT], overrides: Mapping[str, Any] | None = None,
                 base: ConfigT | None = None) -> ConfigT:
    """Return ``config_cls`` (a dataclass) with ``overrides`` applied to ``base`` or the defaults.

    Raises:
        TypeError: a key in ``overrides`` is not a field of ``config_cls``, or its value does
            not fit the field's type (see :func:`check_types`).
    """
    overrides = dict(overrides or {})
    field_names = [f.name for f in dataclasses.fields(config_cls)]
    for key in overrides:
        if key not in field_names:
            raise TypeError(
                f"{config_cls.__name__} has no option {key!r}.{did_you_mean(key, field_names)} "
                f"Valid options: {', '.join(field_names)}"
            )
    check_types(overrides, option_types(config_cls), config_cls.__name__)
    if base is None:
        return config_cls(**overrides)
    return dataclasses.replace(base, **overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-friendly dict of a dataclass config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def parse_value(text: str) -> Any:
    """Parse a command-line value: JSON when it parses (``4``, ``0.5``, ``true``, ``[1,2]``),
    ``True``/``False``/``None`` in any case, else the plain string (``night``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return KEYWORDS.get(text.strip().lower(), text)


def parse_kv(pairs: Iterable[str] | None) -> dict[str, Any]:
    """Turn ``["map=night", "max_steps=500"]`` into ``{"map": "night", "max_steps": 500}``.

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


def option_types(target: type | Callable[..., Any]) -> dict[str, Any]:
    """The type each option of ``target`` takes, by name.

    A dataclass gives its fields' types; a class or function its parameters' type hints, else
    the type of their default (``is_slippery=True`` -> ``bool``). Options with neither (or
    hinted ``Any``) are left out, so :func:`check_types` accepts any value for them.
    """
    if dataclasses.is_dataclass(target):
        hints = _hints(target)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(target)
                if hints.get(f.name, Any) is not Any}
    function = target.__init__ if inspect.isclass(target) else target
    hints = _hints(function)
    result: dict[str, Any] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        if annotation is parameter.empty and parameter.default not in (parameter.empty, None):
            annotation = type(parameter.default)
        unknown = annotation is parameter.empty or annotation is Any
        if not (unknown or isinstance(annotation, str)):  # a str: a hint that did not resolve
            result[name] = annotation
    return result


def check_types(options: Mapping[str, Any], expected: Mapping[str, Any], owner: str) -> None:
    """Refuse an option whose value does not fit its type in ``expected`` (from
    :func:`option_types`); options not in ``expected`` pass.

    An int fits a float, a list a tuple and the reverse; a bool fits only a bool.

    Raises:
        TypeError: names ``owner``, the option, the type it expects and the value given.
    """
    for key, value in options.items():
        if key in expected and not _fits(value, expected[key]):
            raise TypeError(f"{owner} option {key!r} expects {_type_name(expected[key])}, got "
                            f"{value!r} ({type(value).__name__})")


def _hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target)
    except Exception:  # an unresolvable forward reference: the caller reads the raw annotations
        return {}


def _fits(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or isinstance(annotation, (str, TypeVar)):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if annotation is bool:
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if annotation is int:
        return isinstance(value, (int, np.integer))
    if annotation is float:
        return isinstance(value, (int, float, np.integer, np.floating))
    base = origin or annotation
    if base in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (tuple, list)):
            return False
        if base is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_fits, value, args))
        return not args or all(_fits(item, args[0]) for item in value)
    if base in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping)
    if base is collections.abc.Callable:
        return callable(value)
    return not inspect.isclass(base) or isinstance(value, base)


def _type_name(annotation: Any) -> str:
    if inspect.isclass(annotation) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")
