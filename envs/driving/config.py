"""Settings of the driving simulator and its named maps."""

from __future__ import annotations

from dataclasses import dataclass

from rlgan.config import check_choice, check_int_range
from rlgan.envs.driving.palette import random_palette

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class MapSpec:
    """What makes a map look and drive differently.

    Colours are RGB 0..255. Curvature is in 1/m (a curve of radius 250 m has 0.004); sections
    of the road are ``section_length`` metres long, straight with probability
    ``straight_fraction``, else curving with |curvature| up to ``max_curvature``.
    """

    sky_top: RGB
    sky_horizon: RGB
    grass: tuple[RGB, RGB]
    road: tuple[RGB, RGB]
    rumble: tuple[RGB, RGB]
    lane_mark: RGB
    scenery: RGB
    scenery_cap: RGB
    scenery_style: str  # "hills", "peaks", "mesas" or "city"
    roadside_trunk: RGB
    roadside_top: RGB
    car_colours: tuple[RGB, ...]
    fog: RGB
    fog_distance: float  # metres at which the scene is 63% fog; 0 disables fog
    lanes: int
    lane_width: float  # metres
    max_curvature: float
    straight_fraction: float
    section_length: tuple[float, float]
    cars: int
    car_speed: tuple[float, float]  # m/s


MAPS: dict[str, MapSpec] = {
    "day": MapSpec(
        sky_top=(70, 130, 220), sky_horizon=(170, 210, 245),
        grass=((60, 160, 60), (50, 140, 50)), road=((110, 110, 110), (102, 102, 102)),
        rumble=((220, 40, 40), (240, 240, 240)), lane_mark=(245, 245, 245),
        scenery=(95, 120, 150), scenery_cap=(95, 120, 150), scenery_style="hills",
        roadside_trunk=(110, 70, 30), roadside_top=(30, 110, 40),
        car_colours=((200, 30, 30), (30, 60, 200), (230, 200, 40), (240, 240, 240)),
        fog=(170, 210, 245), fog_distance=0.0, lanes=3, lane_width=3.5,
        max_curvature=0.004, straight_fraction=0.4, section_length=(60, 200), cars=6,
        car_speed=(10, 18)),
    "night": MapSpec(
        sky_top=(5, 5, 25), sky_horizon=(40, 30, 70),
        grass=((15, 40, 25), (10, 30, 20)), road=((45, 45, 55), (40, 40, 50)),
        rumble=((200, 200, 60), (60, 60, 60)), lane_mark=(240, 200, 60),
        scenery=(20, 20, 35), scenery_cap=(230, 210, 90), scenery_style="city",
        roadside_trunk=(90, 90, 100), roadside_top=(255, 230, 120),
        car_colours=((255, 60, 60), (60, 220, 255), (255, 160, 40), (200, 60, 255)),
        fog=(20, 15, 40), fog_distance=120.0, lanes=3, lane_width=3.5,
        max_curvature=0.005, straight_fraction=0.3, section_length=(50, 150), cars=8,
        car_speed=(12, 20)),
    "desert": MapSpec(
        sky_top=(235, 150, 70), sky_horizon=(250, 220, 150),
        grass=((225, 190, 120), (210, 175, 105)), road=((150, 120, 95), (142, 113, 90)),
        rumble=((250, 250, 250), (180, 60, 30)), lane_mark=(255, 255, 255),
        scenery=(170, 80, 45), scenery_cap=(140, 60, 35), scenery_style="mesas",
        roadside_trunk=(40, 120, 50), roadside_top=(40, 140, 60),
        car_colours=((20, 20, 20), (30, 90, 160), (200, 200, 200)),
        fog=(250, 220, 150), fog_distance=0.0, lanes=4, lane_width=3.75,
        max_curvature=0.0025, straight_fraction=0.6, section_length=(100, 300), cars=4,
        car_speed=(8, 16)),
    "snow": MapSpec(
        sky_top=(150, 160, 175), sky_horizon=(215, 220, 230),
        grass=((240, 244, 250), (222, 228, 238)), road=((80, 90, 110), (74, 84, 104)),
        rumble=((40, 60, 160), (240, 240, 240)), lane_mark=(250, 250, 250),
        scenery=(110, 115, 140), scenery_cap=(250, 250, 255), scenery_style="peaks",
        roadside_trunk=(70, 50, 30), roadside_top=(20, 70, 45),
        car_colours=((180, 20, 20), (20, 20, 20), (20, 120, 60)),
        fog=(215, 220, 230), fog_distance=200.0, lanes=2, lane_width=3.5,
        max_curvature=0.007, straight_fraction=0.25, section_length=(40, 120), cars=5,
        car_speed=(8, 14)),
}


@dataclass(frozen=True)
class DrivingConfig:
    """Options of ``rlgan/Driving-v0`` (pass them as keywords to ``gymnasium.make``).

    Attributes:
        map: one of :data:`MAPS`.
        obs_height, obs_width: observation size in pixels (16..512).
        grayscale: observation ``(H, W, 1)`` instead of ``(H, W, 3)``.
        actions: 3 (left, right, up) as in SAD-GAN, or 5 (adds no-op and brake).
        max_steps: steps before the episode is truncated (one step is ``dt`` seconds).
        on_unsafe: ``"terminate"`` the episode on a crash or leaving the road, or ``"respawn"``
            (slow down, clear the way and carry on).
        cars: number of other vehicles; ``None`` takes the map's density.
        render_size: side of the ``rgb_array``/``human`` frame in pixels.
        dt: seconds per step.
        crash_penalty, offroad_penalty: subtracted from the reward on those events.
        headway_penalty: shaping for learning agents, 0 (the default) disables it: each step
            subtracts ``headway_penalty * (1 - gap / headway)`` when the nearest vehicle ahead
            in the player's path is ``gap < headway`` metres away (bumper to bumper), so an
            agent feels a coming crash before it happens.
        headway: metres at which ``headway_penalty`` starts (1..100).
        show_unsafe: draw a burst over the bike in every frame whose state is unsafe (touching
            a vehicle or off the road), so the event is in the pixels, as a crash is on screen
            in a real game: the last frame of an episode that ends on a crash shows it. Off by
            default (observations as in v0). Meant for world-model and classifier data, since a
            64x64 frame otherwise shows a crash as a pixel or two of overlap. With
            ``on_unsafe="respawn"`` the respawn clears the state, so no frame shows the burst.
        hazard_start: probability (0..1) that an episode starts in a hazard: at a random point
            of the track, the bike in a random lane at a random speed, one vehicle close ahead
            in its lane or beside it in the next. 0 (the default) starts every episode as v0
            does. Meant for recording near-crash data (world model, safety classifier), where
            ordinary driving gives a crash every few hundred steps.
        palette_seed: ``None`` (the default) draws the map in its own colours; an integer
            >= 0 draws it in random colours from that seed (:func:`rlgan.envs.driving.palette.
            random_palette`: sky, grass, road, kerb, lane marks, scenery, roadside posts,
            vehicles and fog; the road, scenery shapes and traffic stay the map's). Records
            over many seeds teach a world model the road rather than one map's colours.
    """

    map: str = "day"
    obs_height: int = 64
    obs_width: int = 64
    grayscale: bool = False
    actions: int = 3
    max_steps: int = 1000
    on_unsafe: str = "terminate"
    cars: int | None = None
    render_size: int = 256
    dt: float = 0.1
    crash_penalty: float = 5.0
    offroad_penalty: float = 5.0
    headway_penalty: float = 0.0
    headway: float = 20.0
    show_unsafe: bool = False
    hazard_start: float = 0.0
    palette_seed: int | None = None

    def __post_init__(self) -> None:
        check_choice("map", self.map, MAPS)
        for name in ("obs_height", "obs_width"):
            check_int_range(name, getattr(self, name), 16, 512)
        check_choice("actions", self.actions, (3, 5))
        check_choice("on_unsafe", self.on_unsafe, ("terminate", "respawn"))
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.cars is not None and not 0 <= self.cars <= 32:
            raise ValueError(f"cars must be in 0..32, got {self.cars}")
        if not 32 <= self.render_size <= 1024:
            raise ValueError(f"render_size must be in 32..1024, got {self.render_size}")
        if not self.headway_penalty >= 0:
            raise ValueError(f"headway_penalty must be >= 0, got {self.headway_penalty!r}")
        if not 1.0 <= self.headway <= 100.0:
            raise ValueError(f"headway must be in 1..100 metres, got {self.headway!r}")
        if not isinstance(self.show_unsafe, bool):
            raise ValueError(f"show_unsafe must be true or false, got {self.show_unsafe!r}")
        if not 0.0 <= self.hazard_start <= 1.0:
            raise ValueError(f"hazard_start must be a probability in 0..1, got {self.hazard_start!r}")
        if not 0.01 <= self.dt <= 0.5:
            raise ValueError(f"dt must be in 0.01..0.5 seconds, got {self.dt}")
        if self.palette_seed is not None and (
                isinstance(self.palette_seed, bool) or not isinstance(self.palette_seed, int)
                or self.palette_seed < 0):
            raise ValueError(f"palette_seed must be None or an integer >= 0, got {self.palette_seed!r}")

    @property
    def map_spec(self) -> MapSpec:
        """The preset of :attr:`map`, recoloured when :attr:`palette_seed` is set."""
        if self.palette_seed is None:
            return MAPS[self.map]
        return random_palette(MAPS[self.map], self.palette_seed)

    @property
    def n_cars(self) -> int:
        """Number of other vehicles on the road."""
        return self.map_spec.cars if self.cars is None else self.cars
