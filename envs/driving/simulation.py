"""The driving simulation: a batch of N independent roads stepped together with numpy.

Units: metres, seconds, metres per second. Along the road the player is at ``position``
(metres from the start; the 6 km track loops), across it at ``lateral`` (metres from the road's
centre line, positive to the right). Curvature is 1/m, positive when the road bends right.
Every road has its own random generator, so a batch of N roads seeded ``s, s+1, ...`` is
exactly N single roads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

import numpy as np

from rlgan.envs.driving.config import DrivingConfig

SEGMENT = 2.0  # metres per track segment
TRACK_SEGMENTS = 3000  # the track loops every 6 km
TRACKS_PER_MAP = 256  # an episode drives one of these tracks, drawn by the road's generator
MAX_SPEED = 30.0
START_SPEED = 12.0
ACCELERATION = 5.0
COAST_DECELERATION = 2.0
BRAKE_DECELERATION = 12.0
STEER_SPEED = 4.5  # lateral m/s at full steering
DRIFT = 0.6  # lateral drift per (speed^2 * curvature)
PLAYER_WIDTH = 0.8
CAR_WIDTH = 1.8
CAR_LENGTH = 4.4
CONTACT_GAP = CAR_LENGTH / 2 + 0.9  # |gap| along the road below which the player touches a car
CONTACT_SIDE = (CAR_WIDTH + PLAYER_WIDTH) / 2  # ... and the distance across the road
SPAWN_AHEAD = (120.0, 260.0)
DESPAWN_BEHIND = -15.0
DESPAWN_AHEAD = 320.0
TRACK_LENGTH = TRACK_SEGMENTS * SEGMENT
HAZARD_AHEAD = (CONTACT_GAP + 0.5, 12.0)  # metres to a vehicle placed in the bike's lane
HAZARD_BESIDE = (-CONTACT_GAP, 6.0)  # ... and to one placed in the next lane


class Action(IntEnum):
    """Actions: the first three are SAD-GAN's; ``actions=5`` adds no-op and brake."""

    LEFT = 0
    RIGHT = 1
    UP = 2
    NOOP = 3
    BRAKE = 4


def touching(gap: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Whether the player touches a vehicle ``gap`` metres ahead along the road (negative
    behind) and ``side`` metres away across it (absolute); any shape, elementwise."""
    return (np.abs(gap) < CONTACT_GAP) & (side < CONTACT_SIDE)


@lru_cache(maxsize=4 * TRACKS_PER_MAP)
def build_track(track_seed: int, max_curvature: float, straight_fraction: float,
                section_length: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(curvature, heading, offset)`` of a looping track, cached by seed (read-only).

    ``curvature`` has one value per segment (TRACK_SEGMENTS); sections of random length are
    straight or curve with a smooth ease-in/ease-out. ``heading`` (radians) and ``offset``
    (metres) are its integrals over two laps (2 * TRACK_SEGMENTS), so differences up to one lap
    ahead of any point are continuous across the loop.
    """
    rng = np.random.default_rng(track_seed)
    curvature = np.zeros(TRACK_SEGMENTS)
    start = 40  # a straight start
    while start < TRACK_SEGMENTS - 40:
        length = int(rng.uniform(*section_length) / SEGMENT)
        end = min(start + length, TRACK_SEGMENTS - 40)
        if rng.random() >= straight_fraction:
            peak = rng.uniform(0.35, 1.0) * max_curvature * rng.choice((-1.0, 1.0))
            ramp = np.sin(np.linspace(0.0, np.pi, end - start)) ** 2
            curvature[start:end] = peak * ramp
        start = end
    heading = np.cumsum(np.tile(curvature, 2)) * SEGMENT
    offset = np.cumsum(heading) * SEGMENT
    for array in (curvature, heading, offset):
        array.setflags(write=False)
    return curvature, heading, offset


@dataclass(frozen=True)
class DrivingState:
    """Everything that decides a road's future: a small value, cheap to copy.

    Arrays are private copies (not views into a live simulator); ``rng_state`` is the road's
    ``numpy`` bit-generator state; ``start_position`` is where the episode began (metres).
    ``ended``: the episode ended on this state, so a vector env with next-step autoreset resets
    the road on its next step (set by the vector env; the simulator and single env ignore it).
    """

    track_seed: int
    position: float
    lateral: float
    speed: float
    car_position: np.ndarray
    car_lane: np.ndarray
    car_speed: np.ndarray
    steps: int
    crashes: int
    offroads: int
    rng_state: dict[str, Any]
    start_position: float = 0.0
    ended: bool = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DrivingState):
            return NotImplemented
        return all(np.array_equal(getattr(self, name), getattr(other, name))
                   if isinstance(getattr(self, name), np.ndarray)
                   else getattr(self, name) == getattr(other, name)
                   for name in self.__dataclass_fields__)

    __hash__ = None


@dataclass
class StepResult:
    """Per-road outcome of one step, arrays of shape (N,)."""

    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    crash: np.ndarray
    offroad: np.ndarray


class RoadBatch:
    """N roads with their player, traffic and random generators.

    Public arrays (shape (N,) unless noted) are read by the renderer and the adapters:
    ``position``, ``lateral``, ``speed``, ``car_position``/``car_lane``/``car_speed`` (N, K),
    ``curvature`` (N, TRACK_SEGMENTS), ``heading``/``offset`` (N, 2 * TRACK_SEGMENTS), ``steps``, ``crashes``, ``offroads``,
    ``start_position`` (where each episode began).
    """

    def __init__(self, num_roads: int, config: DrivingConfig) -> None:
        self.config = config
        self.spec = config.map_spec
        self.num_roads = num_roads
        self.num_cars = config.n_cars
        lanes = self.spec.lanes
        self.lane_centres = (np.arange(lanes) - (lanes - 1) / 2) * self.spec.lane_width
        self.half_width = lanes * self.spec.lane_width / 2
        self.rngs = [np.random.default_rng() for _ in range(num_roads)]
        self.track_seed = np.zeros(num_roads, dtype=np.int64)
        self.curvature = np.zeros((num_roads, TRACK_SEGMENTS))
        self.heading = np.zeros((num_roads, 2 * TRACK_SEGMENTS))
        self.offset = np.zeros((num_roads, 2 * TRACK_SEGMENTS))
        self.position = np.zeros(num_roads)
        self.start_position = np.zeros(num_roads)
        self.lateral = np.zeros(num_roads)
        self.speed = np.zeros(num_roads)
        self.car_position = np.zeros((num_roads, self.num_cars))
        self.car_lane = np.zeros((num_roads, self.num_cars), dtype=np.int64)
        self.car_speed = np.zeros((num_roads, self.num_cars))
        self.steps = np.zeros(num_roads, dtype=np.int64)
        self.crashes = np.zeros(num_roads, dtype=np.int64)
        self.offroads = np.zeros(num_roads, dtype=np.int64)

    # -- episodes and states -------------------------------------------------------------
    def reset(self, index: int, seed: int | None = None) -> None:
        """Start a new episode on road ``index`` (re-seeding its generator when given a seed).

        The bike starts in the middle lane at the track's start at ``START_SPEED``, the traffic
        30 m or more ahead; with probability ``config.hazard_start`` the episode starts in a
        hazard instead (see :meth:`_place_hazard`).
        """
        if seed is not None:
            self.rngs[index] = np.random.default_rng(seed)
        rng = self.rngs[index]
        self._set_track(index, int(rng.integers(TRACKS_PER_MAP)))
        self.position[index] = self.start_position[index] = 0.0
        self.lateral[index] = self.lane_centres[len(self.lane_centres) // 2]
        self.speed[index] = START_SPEED
        self.steps[index] = self.crashes[index] = self.offroads[index] = 0
        for car in range(self.num_cars):
            self._spawn_car(index, car, rng.uniform(30.0, SPAWN_AHEAD[1]))
        if self.config.hazard_start and rng.random() < self.config.hazard_start:
            self._place_hazard(index)

    def _place_hazard(self, index: int) -> None:
        """Move road ``index``'s fresh episode into a hazard: anywhere along the track, the bike
        in a random lane at a random speed, vehicle 0 either ahead in the bike's lane
        (``HAZARD_AHEAD`` metres, half the time) or in a neighbouring lane beside or just ahead
        of the bike (``HAZARD_BESIDE``). The start itself is safe; what follows may not be."""
        rng, centres = self.rngs[index], self.lane_centres
        start = rng.uniform(0.0, TRACK_LENGTH)
        self.position[index] = self.start_position[index] = start
        self.car_position[index] += start
        lane = int(rng.integers(len(centres)))
        self.lateral[index] = centres[lane] + rng.uniform(-0.5, 0.5)
        self.speed[index] = rng.uniform(START_SPEED, MAX_SPEED)
        neighbours = [other for other in (lane - 1, lane + 1) if 0 <= other < len(centres)]
        if not neighbours or rng.random() < 0.5:
            self.car_lane[index, 0], ahead = lane, rng.uniform(*HAZARD_AHEAD)
        else:
            self.car_lane[index, 0], ahead = rng.choice(neighbours), rng.uniform(*HAZARD_BESIDE)
        self.car_position[index, 0] = start + ahead

    def distance(self) -> np.ndarray:
        """(N,) metres each player has driven this episode."""
        return self.position - self.start_position

    def _set_track(self, index: int, track_seed: int) -> None:
        spec = self.spec
        curvature, heading, offset = build_track(track_seed, spec.max_curvature,
                                                 spec.straight_fraction, spec.section_length)
        self.track_seed[index] = track_seed
        self.curvature[index], self.heading[index], self.offset[index] = curvature, heading, offset

    def _spawn_car(self, index: int, car: int, ahead: float) -> None:
        rng = self.rngs[index]
        self.car_position[index, car] = self.position[index] + ahead
        self.car_lane[index, car] = rng.integers(len(self.lane_centres))
        self.car_speed[index, car] = rng.uniform(*self.spec.car_speed)

    def get_state(self, index: int) -> DrivingState:
        """Copy road ``index`` into a :class:`DrivingState`."""
        return DrivingState(
            track_seed=int(self.track_seed[index]), position=float(self.position[index]),
            lateral=float(self.lateral[index]), speed=float(self.speed[index]),
            car_position=self.car_position[index].copy(), car_lane=self.car_lane[index].copy(),
            car_speed=self.car_speed[index].copy(), steps=int(self.steps[index]),
            crashes=int(self.crashes[index]), offroads=int(self.offroads[index]),
            rng_state=_copy_rng_state(self.rngs[index].bit_generator.state),
            start_position=float(self.start_position[index]),
        )

    def set_state(self, index: int, state: DrivingState) -> None:
        """Restore road ``index`` exactly from ``state``.

        Raises:
            ValueError: the state has another number of cars than this simulator.
        """
        if not isinstance(state, DrivingState):
            raise TypeError(f"expected a DrivingState, got {type(state).__name__}")
        if len(state.car_position) != self.num_cars:
            raise ValueError(f"state has {len(state.car_position)} cars, this road has "
                             f"{self.num_cars} (was it saved on another map or cars setting?)")
        if self.track_seed[index] != state.track_seed or not self.offset[index].any():
            self._set_track(index, state.track_seed)
        self.position[index], self.lateral[index] = state.position, state.lateral
        self.start_position[index] = state.start_position
        self.speed[index] = state.speed
        self.car_position[index] = state.car_position
        self.car_lane[index] = state.car_lane
        self.car_speed[index] = state.car_speed
        self.steps[index], self.crashes[index] = state.steps, state.crashes
        self.offroads[index] = state.offroads
        rng = np.random.default_rng()
        rng.bit_generator.state = _copy_rng_state(state.rng_state)
        self.rngs[index] = rng

    # -- dynamics -----------------------------------------------------------------------
    def segment_index(self, position: np.ndarray) -> np.ndarray:
        """Track segment under each position (the track loops)."""
        return (position / SEGMENT).astype(np.int64) % TRACK_SEGMENTS

    def curvature_here(self) -> np.ndarray:
        """Curvature (1/m) under each player."""
        return self.curvature[np.arange(self.num_roads), self.segment_index(self.position)]

    def car_lateral(self) -> np.ndarray:
        """(N, K) lateral positions of the other vehicles (lane centres)."""
        return self.lane_centres[self.car_lane]

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every road by one step of ``config.dt`` seconds with ``actions`` (N,)."""
        config, dt = self.config, self.config.dt
        up, brake = actions == Action.UP, actions == Action.BRAKE
        acceleration = np.where(up, ACCELERATION,
                                np.where(brake, -BRAKE_DECELERATION, -COAST_DECELERATION))
        self.speed = np.clip(self.speed + acceleration * dt, 0.0, MAX_SPEED)
        steer = (actions == Action.RIGHT).astype(float) - (actions == Action.LEFT)
        grip = np.minimum(1.0, self.speed / 5.0)
        drift = DRIFT * self.speed**2 * self.curvature_here()
        self.lateral = self.lateral + (STEER_SPEED * grip * steer - drift) * dt
        progress = self.speed * dt
        self.position = self.position + progress
        self.car_position = self.car_position + self.car_speed * dt

        gap, side = self._gaps()
        hit = touching(gap, side)
        crash = hit.any(axis=1)
        offroad = self._off_road()
        self.crashes += crash
        self.offroads += offroad & ~crash
        self.steps += 1
        reward = progress / (MAX_SPEED * dt) - config.crash_penalty * crash \
            - config.offroad_penalty * (offroad & ~crash)
        if config.headway_penalty:
            reward = reward - config.headway_penalty * self._headway_cost(gap, side)
        unsafe = crash | offroad
        if config.on_unsafe == "respawn":
            self._respawn(crash, offroad, hit)
            terminated = np.zeros(self.num_roads, dtype=bool)
        else:
            terminated = unsafe
        self._recycle_cars()
        truncated = (self.steps >= config.max_steps) & ~terminated
        return StepResult(reward, terminated, truncated, crash, offroad)

    def _gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) metres from each player to every vehicle: along the road (positive ahead)
        and across it (absolute)."""
        return (self.car_position - self.position[:, None],
                np.abs(self.car_lateral() - self.lateral[:, None]))

    def _off_road(self) -> np.ndarray:
        """(N,) whether each player is beyond the road's edge (kerbs included)."""
        return np.abs(self.lateral) > self.half_width + 0.3

    def unsafe_now(self) -> np.ndarray:
        """(N,) whether each player touches a vehicle or is off the road in the current state:
        what :meth:`step` reports as a crash or off-road event, read from the state alone (true
        in the state an episode ends in with ``on_unsafe="terminate"``; a respawn clears it)."""
        return touching(*self._gaps()).any(axis=1) | self._off_road()

    def _headway_cost(self, gap: np.ndarray, side: np.ndarray) -> np.ndarray:
        """(N,) 1 - bumper gap / ``config.headway`` of the nearest vehicle ahead in each
        player's path (0 when none is closer than ``headway`` metres)."""
        bumper_gap = gap - CONTACT_GAP
        in_path = (side < CONTACT_SIDE) & (bumper_gap >= 0)
        nearest = np.where(in_path, bumper_gap, np.inf).min(axis=1)
        return np.clip(1.0 - nearest / self.config.headway, 0.0, 1.0)

    def _respawn(self, crash: np.ndarray, offroad: np.ndarray, hit: np.ndarray) -> None:
        """Carry on after an unsafe event: slow down, back onto the road, clear the wreck."""
        self.speed = np.where(crash, np.minimum(self.speed, 5.0), self.speed)
        limit = self.half_width - self.spec.lane_width / 2
        self.lateral = np.where(offroad, np.clip(self.lateral, -limit, limit), self.lateral)
        self.speed = np.where(offroad, self.speed * 0.5, self.speed)
        for index, car in zip(*np.nonzero(hit)):
            self._spawn_car(index, car, self.rngs[index].uniform(*SPAWN_AHEAD))

    def _recycle_cars(self) -> None:
        """Cars far behind or ahead reappear ahead, from each road's own generator."""
        gap = self.car_position - self.position[:, None]
        for index, car in zip(*np.nonzero((gap < DESPAWN_BEHIND) | (gap > DESPAWN_AHEAD))):
            self._spawn_car(index, car, self.rngs[index].uniform(*SPAWN_AHEAD))

    # -- observation helpers --------------------------------------------------------------
    def lane_index(self) -> np.ndarray:
        """Nearest lane of each player (0 = leftmost), -1 off the road."""
        lane = np.abs(self.lateral[:, None] - self.lane_centres[None, :]).argmin(axis=1)
        return np.where(np.abs(self.lateral) > self.half_width, -1, lane)

    def scripted_actions(self) -> np.ndarray:
        """The built-in driver: keep to a free lane, change lanes around cars, follow curves.

        Returns (N,) actions; with 3 actions it never brakes (it steers or accelerates).
        """
        centres = self.lane_centres
        lanes = len(centres)
        rows = np.arange(self.num_roads)
        current = np.abs(self.lateral[:, None] - centres[None, :]).argmin(axis=1)
        gap = self.car_position - self.position[:, None]
        lookahead = 12.0 + 2.2 * self.speed
        ahead = gap > -(CAR_LENGTH + 2.0)
        free = np.full((self.num_roads, lanes), np.inf)
        for lane in range(lanes):
            in_lane = ahead & (self.car_lane == lane)
            free[:, lane] = np.where(in_lane, gap, np.inf).min(axis=1)
        blocked = free[rows, current] < lookahead[:]
        candidates = np.stack([np.clip(current - 1, 0, lanes - 1), current,
                               np.clip(current + 1, 0, lanes - 1)], axis=1)
        candidate_free = free[rows[:, None], candidates]
        candidate_free[:, 1] += 1e-6  # prefer staying when equally free
        best = candidates[rows, candidate_free.argmax(axis=1)]
        target_lane = np.where(blocked, best, current)
        drift = DRIFT * self.speed**2 * self.curvature_here() * self.config.dt
        error = centres[target_lane] - (self.lateral - drift)
        actions = np.full(self.num_roads, Action.UP, dtype=np.int64)
        still_blocked = blocked & (free[rows, target_lane] < lookahead)
        tolerance = 0.35
        if self.config.actions == 5:
            actions[still_blocked] = Action.BRAKE
        else:
            actions[still_blocked] = np.where(error[still_blocked] >= 0, Action.RIGHT, Action.LEFT)
        actions[error > tolerance] = Action.RIGHT
        actions[error < -tolerance] = Action.LEFT
        return actions


def _copy_rng_state(state: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a numpy bit-generator state (nested dicts of ints and strings)."""
    return {key: _copy_rng_state(value) if isinstance(value, dict) else value
            for key, value in state.items()}
