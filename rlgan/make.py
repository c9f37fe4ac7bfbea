"""Make any Gymnasium environment by id, with an error that lists rlgan's ids on a typo."""

from __future__ import annotations

from typing import Any

import gymnasium

from rlgan.config import check_types, did_you_mean, option_types
from rlgan.envs.registration import GYMNASIUM_IDS

#: Short names used by ``rlgan play`` and friends -> Gymnasium ids.
GAME_IDS = {
    "driving": "rlgan/Driving-v0",
    "hide-and-seek": "rlgan/HideAndSeek-v0",
    "atari": "rlgan/Atari-v0",
}


def resolve_env_id(name: str) -> str:
    """Map a short name (``driving``) to its id; return any other name unchanged."""
    return GAME_IDS.get(name, name)


def make_env(env_id: str, render_mode: str | None = None, **env_kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make(env_id, render_mode=..., **env_kwargs)`` with a clear unknown-id error.

    Raises:
        ValueError: ``env_id`` is not registered (the message lists rlgan's ids).
        TypeError: an option's value does not fit the type the env's constructor gives it (its
            type hint, else its default's type); rlgan's envs check their config dataclass.
    """
    env_id = resolve_env_id(env_id)
    try:
        spec = gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        raise ValueError(
            f"unknown environment id {env_id!r}.{did_you_mean(env_id, gymnasium.registry)} "
            f"rlgan's ids: {', '.join(GYMNASIUM_IDS)} (any registered Gymnasium id also works)"
        ) from error
    creator = spec.entry_point
    if isinstance(creator, str):
        creator = gymnasium.envs.registration.load_env_creator(creator)
    if creator is not None:
        check_types(env_kwargs, option_types(creator), env_id)
    return gymnasium.make(env_id, render_mode=render_mode, **env_kwargs)
