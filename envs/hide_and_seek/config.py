"""Settings of the hide-and-seek gridworld."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlgan.config import check_choice

MAX_SIZE = 16
OBSERVATIONS = ("egocentric", "full", "pixels")

#: Options of the learned safety shield's hide-and-seek task, "a hider that avoids being seen"
#: (``gymnasium.make("rlgan/HideAndSeek-v0", **SHIELD_TASK)``; on the command line
#: ``--env-kwargs observation=pixels view_cone=true vision_range=2 prep_fraction=0 walls=0``).
#: Pixel frames; one seeker that sees a short cone ahead of it (90 degrees wide, 2 cells deep)
#: and hunts from the first step, in one open room with two boxes. A random hider is seen on
#: 333 steps per 1000; the oracle shield (searching the true simulator) cuts that to 37 at
#: depth 1 and 4.4 at depths 2 and 3 (50 episodes of ``rlgan shield eval``). With the default
#: options (unlimited sight, two walls) about 40% of the free floor is in sight at any time,
#: the hidden cells are often further than a short search reaches, and every step the
#: oracle-shielded hider is seen on is unavoidable within the search depth (no action is safe
#: for even one step): the oracle removes only about half of the events. Copy it before
#: changing it.
SHIELD_TASK: dict[str, Any] = {"observation": "pixels", "view_cone": True, "vision_range": 2.0,
                               "prep_fraction": 0.0, "walls": 0}


@dataclass(frozen=True)
class HideAndSeekConfig:
    """Options of ``rlgan/HideAndSeek-v0`` (keywords of ``gymnasium.make`` / ``parallel_env``).

    Attributes:
        size: the grid is ``size x size`` cells including the outer walls (5..20).
        n_hiders, n_seekers: team sizes.
        n_boxes: movable boxes.
        walls: interior wall segments (each a line with a door), i.e. how many rooms.
        vision_range: seekers see at most this far (cell-centre distance); ``None``: no limit.
        view_cone: seekers see only within 45 degrees of the direction of their last move.
        prep_fraction: fraction of the episode during which seekers are frozen and nobody is
            rewarded.
        max_steps: episode length (truncation).
        lockable: adds action 5, lock/unlock the box in front (a locked box cannot be pushed;
            only the team that locked it can unlock it).
        observation: ``"egocentric"`` (a ``view_size`` window around the agent), ``"full"``
            (the whole grid), both symbolic planes, or ``"pixels"`` (a top-down RGB image,
            :mod:`rlgan.envs.hide_and_seek.pixels`).
        view_size: side of the egocentric window (odd).
        obs_height, obs_width: size of the ``"pixels"`` image [pixels], multiples of 16 and at
            least ``size`` (one pixel per cell).
        role: the learner's team in the single-agent env, ``"hider"`` or ``"seeker"``.
        layout: a hand-made map, rows of ``#`` wall, ``.`` floor, ``B`` box, ``H`` hider,
            ``S`` seeker (outer walls included; overrides size, walls, boxes and team sizes).
    """

    size: int = 9
    n_hiders: int = 1
    n_seekers: int = 1
    n_boxes: int = 2
    walls: int = 2
    vision_range: float | None = None
    view_cone: bool = False
    prep_fraction: float = 0.4
    max_steps: int = 100
    lockable: bool = False
    observation: str = "egocentric"
    view_size: int = 5
    obs_height: int = 64
    obs_width: int = 64
    role: str = "hider"
    layout: str | None = None

    def __post_init__(self) -> None:
        if self.layout is not None:
            rows = layout_rows(self.layout)
            object.__setattr__(self, "size", len(rows))
            object.__setattr__(self, "n_hiders", sum(row.count("H") for row in rows))
            object.__setattr__(self, "n_seekers", sum(row.count("S") for row in rows))
            object.__setattr__(self, "n_boxes", sum(row.count("B") for row in rows))
        if not 5 <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be in 5..{MAX_SIZE} (outer walls included), got {self.size}")
        if self.n_hiders < 1 or self.n_seekers < 1:
            raise ValueError(f"need at least one hider and one seeker, got {self.n_hiders} "
                             f"hiders and {self.n_seekers} seekers")
        if self.n_boxes < 0 or self.walls < 0:
            raise ValueError("n_boxes and walls must be >= 0")
        inner = (self.size - 2) ** 2
        if self.n_hiders + self.n_seekers + self.n_boxes > inner // 2:
            raise ValueError(
                f"{self.n_hiders} hiders + {self.n_seekers} seekers + {self.n_boxes} boxes do not "
                f"fit in a {self.size}x{self.size} grid ({inner} inner cells; at most half may "
                "be occupied)")
        if self.vision_range is not None and self.vision_range <= 0:
            raise ValueError(f"vision_range must be > 0 or None, got {self.vision_range}")
        if not 0.0 <= self.prep_fraction < 1.0:
            raise ValueError(f"prep_fraction must be in [0, 1), got {self.prep_fraction}")
        if self.max_steps < 1 or self.max_steps > 255:
            raise ValueError(f"max_steps must be in 1..255, got {self.max_steps}")
        check_choice("observation", self.observation, OBSERVATIONS)
        check_choice("role", self.role, ("hider", "seeker"))
        if self.view_size < 3 or self.view_size % 2 == 0:
            raise ValueError(f"view_size must be odd and >= 3, got {self.view_size}")
        for name in ("obs_height", "obs_width"):
            value = getattr(self, name)
            integer = isinstance(value, int) and not isinstance(value, bool)
            if not integer or value % 16 or value < self.size:
                raise ValueError(f"{name} must be a multiple of 16 and >= size ({self.size}), "
                                 f"got {value!r}")

    @property
    def n_agents(self) -> int:
        """Hiders first, then seekers."""
        return self.n_hiders + self.n_seekers

    @property
    def n_actions(self) -> int:
        """5 (stay, up, down, left, right), 6 with ``lockable``."""
        return 6 if self.lockable else 5

    @property
    def prep_steps(self) -> int:
        """Steps of the preparation phase."""
        return int(self.prep_fraction * self.max_steps)


def layout_rows(layout: str) -> list[str]:
    """Split and check a hand-made layout.

    Raises:
        ValueError: rows of different lengths, not square, unknown characters, or open border.
    """
    rows = [row.strip() for row in layout.strip().splitlines() if row.strip()]
    if not rows or any(len(row) != len(rows) for row in rows):
        raise ValueError(f"layout must be a square of equal-length rows, got {len(rows)} rows of "
                         f"lengths {sorted({len(row) for row in rows})}")
    unknown = set("".join(rows)) - set("#.BHS")
    if unknown:
        raise ValueError(f"layout has unknown characters {sorted(unknown)}; use # . B H S")
    border = rows[0] + rows[-1] + "".join(row[0] + row[-1] for row in rows)
    if set(border) != {"#"}:
        raise ValueError("layout must be enclosed by walls (#) on every side")
    return rows
