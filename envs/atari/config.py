"""Settings of ``rlgan/Atari-v0`` and the names of the games shipped with ale-py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rlgan.config import check_choice, check_int_range, did_you_mean


@lru_cache(maxsize=1)
def game_ids() -> tuple[str, ...]:
    """ale-py's ROM ids (``"breakout"``, ``"pong"``, ...): every game in the wheel."""
    from ale_py import roms

    return tuple(sorted(roms.get_all_rom_ids()))


def game_id(name: str) -> str:
    """Normalise ``"Breakout"``, ``"breakout"``, ``"ALE/Breakout-v5"``, ``"MontezumaRevenge"`` to a
    ROM id (``"montezuma_revenge"``).

    Raises:
        ValueError: not a game shipped with ale-py (the message lists them).
    """
    short = re.sub(r"^ALE/|-v\d+$|NoFrameskip|Deterministic", "", name)
    rom = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", short).lower().replace("-", "_")
    if rom not in game_ids():
        raise ValueError(f"unknown Atari game {name!r}.{did_you_mean(rom, game_ids())} "
                         f"Games shipped with ale-py: {', '.join(game_ids())}")
    return rom


def ale_env_id(rom: str) -> str:
    """Gymnasium id of a ROM id: ``"montezuma_revenge"`` -> ``"ALE/MontezumaRevenge-v5"``."""
    return "ALE/" + "".join(part.capitalize() for part in rom.split("_")) + "-v5"


@dataclass(frozen=True)
class AtariConfig:
    """Options of ``rlgan/Atari-v0``.

    Attributes:
        game: any game shipped with ale-py (``"Breakout"``, ``"pong"``, ``"ALE/Pong-v5"``).
        obs_mode: ``"nature"``: 4 stacked 84x84 grayscale frames ``(4, 84, 84)``; ``"rgb"``: one
            RGB frame ``(obs_height, obs_width, 3)`` (for world-model data).
        obs_height, obs_width: size of the ``"rgb"`` frame.
        frame_skip: emulator frames per step (max-pooled over the last two).
        noop_max: up to this many no-ops after reset.
        repeat_action_probability: sticky actions (0.25 as in ALE v5; 0 for the 2015 setting).
        terminal_on_life_loss, clip_rewards: training options (off for evaluation).
        full_action_space: all 18 actions instead of the game's minimal set.
        max_steps: truncation in steps (27,000 steps = 108,000 frames = 30 min of play).
    """

    game: str = "Breakout"
    obs_mode: str = "nature"
    obs_height: int = 64
    obs_width: int = 64
    frame_skip: int = 4
    noop_max: int = 30
    repeat_action_probability: float = 0.25
    terminal_on_life_loss: bool = False
    clip_rewards: bool = False
    full_action_space: bool = False
    max_steps: int = 27_000

    def __post_init__(self) -> None:
        game_id(self.game)
        check_choice("obs_mode", self.obs_mode, ("nature", "rgb"))
        for name in ("obs_height", "obs_width"):
            check_int_range(name, getattr(self, name), 16, 512)
        if self.frame_skip < 1 or self.noop_max < 0 or self.max_steps < 1:
            raise ValueError("frame_skip and max_steps must be >= 1 and noop_max >= 0")
        if not 0.0 <= self.repeat_action_probability <= 1.0:
            raise ValueError(f"repeat_action_probability must be in [0, 1], got "
                             f"{self.repeat_action_probability}")

    @property
    def rom(self) -> str:
        """The ale-py ROM id of :attr:`game`."""
        return game_id(self.game)
