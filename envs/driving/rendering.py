"""Pseudo-3D chase-camera renderer of a :class:`RoadBatch`, in numpy (no pygame).

The classic "Lou's pseudo 3d" road: every screen row below the horizon is a depth; the road's
centre at that depth is shifted by the curves between the camera and that depth; grass,
rumble strips and lane marks alternate light/dark every few metres so motion is visible. Above
the horizon: a sky gradient and a parallax skyline that slides as the road turns. Other
vehicles and roadside objects are depth-scaled sprites drawn far to near; the player's bike
sits at the bottom centre (the camera follows it across the road).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rlgan.envs.driving.config import MapSpec
from rlgan.envs.driving.simulation import (
    CAR_WIDTH,
    SEGMENT,
    TRACK_SEGMENTS,
    RoadBatch,
)

HORIZON = 0.42  # horizon row as a fraction of the height
FOCAL = 0.8  # focal length as a fraction of the width
NEAR = 10.0  # metres from the camera to the bottom row
CAMERA_BACK = 13.0  # metres from the camera to the player
DRAW_DISTANCE = 300.0
STRIPE = 4.0  # metres per light/dark stripe
RUMBLE = 0.7  # rumble strip width, metres
MARK = 0.12  # half width of a lane mark, metres
ROADSIDE_SPACING = 30.0
ROADSIDE_DISTANCE = 160.0
CAR_HEIGHT = 1.4
GRAYSCALE_WEIGHTS = np.array([0.299, 0.587, 0.114])

# Ground classes indexing the per-row palette.
GRASS, ROAD, RUMBLE_A, RUMBLE_B, LANE_MARK = 0, 2, 4, 5, 6


class SpriteLayout(NamedTuple):
    """Where the ``P`` parts of each of a road's ``S`` sprites are and how they are coloured.

    Sprites are the cars, then the roadside objects on the left, then those on the right;
    roadside objects pad their parts to ``P`` with empty ones.

    Attributes:
        edges: ``(S, P, 4)`` float, each part's top, bottom, left and right edge, metres from
            its sprite's ground point, signed so that a screen edge is ``origin + edge * scale``.
        real: ``(S, P)`` bool, the part is not padding.
        colour_id: ``(S * P,)`` int64, the part's row of ``RoadRenderer.sprite_colours``.
        body: ``(S * P,)`` bool, the part is a car's body (coloured by the car instead).
        fogged: ``(S * P,)`` float, 1 where fog tints the part, 0 where it does not.
    """

    edges: np.ndarray
    real: np.ndarray
    colour_id: np.ndarray
    body: np.ndarray
    fogged: np.ndarray


class RoadRenderer:
    """Render ``(N, height, width, 3)`` uint8 frames of a road batch on one map.

    Args:
        height, width: frame size in pixels.
        spec: the map's look.
        show_unsafe: draw a burst over the bike when its road's state is unsafe
            (:meth:`RoadBatch.unsafe_now`).
    """

    def __init__(self, height: int, width: int, spec: MapSpec, show_unsafe: bool = False) -> None:
        self.height, self.width, self.spec = height, width, spec
        self.show_unsafe = show_unsafe
        self.horizon = int(round(HORIZON * height))
        self.focal = FOCAL * width
        self.camera_height = NEAR * (height - self.horizon) / self.focal
        rows = np.arange(self.horizon, height) + 0.5 - self.horizon
        self.row_depth = np.minimum(self.focal * self.camera_height / rows, DRAW_DISTANCE)
        self.row_scale = self.focal / self.row_depth  # pixels per metre at each row
        self.columns = np.arange(width) + 0.5
        self.half_width = spec.lanes * spec.lane_width / 2
        self.row_palette = self._row_palette()
        self.row_index = np.arange(len(self.row_depth))
        self.sky = self._sky()
        self.skyline = self._skyline()
        self.panorama = self._panorama()
        # The sky and ground scanlines one after the other in one table, every panorama row
        # followed by its first W pixels again: each frame row is W consecutive pixels of it.
        sky = np.concatenate([self.panorama, self.panorama[:, :width]], axis=1)
        background = np.concatenate([sky.reshape(-1, 3), self._ground_templates()])
        self.sky_rows = np.arange(self.horizon) * sky.shape[1]
        self.ground_rows = sky.shape[0] * sky.shape[1] + self.row_index * 2 * 3 * width \
            + int(1.5 * width)
        self.row_windows = np.moveaxis(sliding_window_view(background, width, axis=0), -1, 1)
        car, roadside = self._sprite_table()
        self.n_parts = len(car)
        self.car_boxes = np.array([box for box, _ in car])
        self.car_colours = np.array(spec.car_colours, dtype=float)
        self.side_boxes = np.array([box for box, _ in roadside])
        # Sprite colours: the car parts (bodies black), the roadside parts, the car bodies.
        self.sprite_colours = np.concatenate([
            np.array([colour or (0, 0, 0) for _, colour in car], dtype=float),
            np.array([colour for _, colour in roadside], dtype=float), self.car_colours])
        self.sprite_colours_uint8 = self.sprite_colours.astype(np.uint8)
        self.fog_colour = np.array(spec.fog, dtype=float)
        self.roadside_slots = np.arange(int(ROADSIDE_DISTANCE / ROADSIDE_SPACING))
        side = self.half_width + 3.5
        self.roadside_across = np.repeat([-side, side], len(self.roadside_slots))
        self.edge_limits = np.array([height, height, width, width], dtype=float)
        self._layouts: dict[int, SpriteLayout] = {}
        self.player_mask, self.player_colours = self._player_sprite()
        self.burst_mask, self.burst_colours = self._burst_sprite()
        self._top = np.empty(0, dtype=np.int32)

    # -- static layers -------------------------------------------------------------------
    def _fog(self, depth: np.ndarray) -> np.ndarray:
        if self.spec.fog_distance <= 0:
            return np.zeros_like(depth)
        return 1.0 - np.exp(-depth / self.spec.fog_distance)

    def _row_palette(self) -> np.ndarray:
        """(rows, 7, 3) colours per ground class, fogged by each row's depth."""
        spec = self.spec
        colours = np.array([spec.grass[0], spec.grass[1], spec.road[0], spec.road[1],
                            spec.rumble[0], spec.rumble[1], spec.lane_mark], dtype=float)
        fog = self._fog(self.row_depth)[:, None, None]
        return (colours[None] * (1 - fog) + np.array(spec.fog, float) * fog).astype(np.uint8)

    def _sky(self) -> np.ndarray:
        """(horizon, width, 3) sky gradient."""
        t = np.linspace(0.0, 1.0, max(self.horizon, 1))[:, None]
        sky = np.array(self.spec.sky_top, float) * (1 - t) + np.array(self.spec.sky_horizon, float) * t
        return np.repeat(sky[:, None, :], self.width, axis=1).astype(np.uint8)[: self.horizon]

    def _skyline(self) -> np.ndarray:
        """Skyline heights (pixels) over a 4-screen-wide periodic panorama."""
        rng = np.random.default_rng(1234)
        period = 4 * self.width
        x = np.arange(period) / period * 2 * np.pi
        style = self.spec.scenery_style
        scale = self.horizon
        if style == "city":
            widths = rng.integers(max(2, self.width // 16), max(3, self.width // 6), size=period)
            heights, position = np.zeros(period), 0
            for width in widths:
                heights[position:position + width] = rng.uniform(0.15, 0.55) * scale
                position += width
                if position >= period:
                    break
            return heights
        waves = sum(rng.uniform(0.3, 1.0) / k * np.sin(k * x + rng.uniform(0, 2 * np.pi))
                    for k in (1, 2, 3, 5, 8))
        heights = (waves - waves.min()) / np.ptp(waves)
        if style == "peaks":
            heights = heights**1.6 * 0.7 + 0.12
        elif style == "mesas":
            heights = np.where(heights > 0.55, 0.5, 0.12 + 0.1 * heights)
        else:
            heights = heights * 0.35 + 0.08
        return heights * scale

    # -- frames --------------------------------------------------------------------------
    def render(self, roads: RoadBatch, indices: np.ndarray | None = None) -> np.ndarray:
        """Frames of the roads at ``indices`` (all by default): ``(n, H, W, 3)`` uint8.

        Every row of sky or ground is a window of :attr:`row_windows`, so the background is
        one gather of whole rows; the sprites and the player are drawn over it.
        """
        if indices is None:
            indices = np.arange(roads.num_roads)
        camera = roads.position[indices] - CAMERA_BACK
        lateral = roads.lateral[indices]
        base = np.mod(camera, TRACK_SEGMENTS * SEGMENT)
        offset, heading = roads.offset, roads.heading  # (N, 2 laps): indexed, never copied
        here = base / SEGMENT
        i0 = here.astype(np.int64)
        f0 = here - i0
        start = offset[indices, i0] * (1 - f0) + offset[indices, i0 + 1] * f0
        angle = heading[indices, i0]

        def relative_offset(depth: np.ndarray) -> np.ndarray:
            """Lateral offset (m) of the road centre at ``depth`` (n, d) ahead of the camera."""
            where = (base[:, None] + depth) / SEGMENT
            index = where.astype(np.int64)
            frac = where - index
            row = indices[:, None]
            absolute = offset[row, index] * (1 - frac) + offset[row, index + 1] * frac
            return absolute - start[:, None] - angle[:, None] * depth

        starts = np.concatenate([self._sky_starts(angle), self._ground_starts(
            base, lateral, relative_offset(self.row_depth[None, :]))], axis=1)
        frames = self.row_windows[starts]
        self._draw_sprites(frames, self._depth_buffer(len(indices)), roads, indices, camera,
                           lateral, relative_offset)
        self._draw_player(frames)
        if self.show_unsafe:
            unsafe = roads.unsafe_now()[indices]
            frames[np.flatnonzero(unsafe)[:, None], self.burst_mask] = self.burst_colours
        return frames

    def _depth_buffer(self, n: int) -> np.ndarray:
        """The sprites' depth buffer of ``n`` frames, ``(n * H * W,)`` int32, all -1 (reused:
        :meth:`_draw_sprites` leaves it so)."""
        if len(self._top) < n * self.height * self.width:
            self._top = np.full(n * self.height * self.width, -1, dtype=np.int32)
        return self._top[: n * self.height * self.width]

    def _panorama(self) -> np.ndarray:
        """The sky with the skyline over 4 screen widths, ``(horizon, 4W, 3)``; frames show a
        window of it that slides as the road turns."""
        period = len(self.skyline)
        columns = np.arange(period)
        panorama = np.repeat(self.sky[:, :1], period, axis=1)
        y = np.arange(self.horizon)[:, None]
        top = self.horizon - self.skyline[None, :]
        body = y >= top
        panorama[body] = self.spec.scenery
        if self.spec.scenery_style == "city":
            lit = body & (y % 3 == 1) & (columns[None, :] % 4 == 1) & (y > top + 1)
        else:
            lit = body & (y < top + 0.3 * self.skyline[None, :])
        panorama[lit] = self.spec.scenery_cap
        return panorama

    def _ground_templates(self) -> np.ndarray:
        """Every ground row as a scanline template, ``(rows * 2 * 3W, 3)`` colours.

        Row ``r`` with stripe parity ``p`` is the colour of the pixel ``k - 1.5W`` pixels from
        the road's centre; a frame row is a window of W pixels into it, so drawing the ground
        is one gather.
        """
        span = 3 * self.width
        offset_px = np.arange(span) - 1.5 * self.width + 0.5
        across = offset_px[None, :] / self.row_scale[:, None]  # (rows, span) metres
        distance = np.abs(across)
        on_road = distance < self.half_width
        on_rumble = (distance < self.half_width + RUMBLE) & ~on_road
        lanes = (across + self.half_width) / self.spec.lane_width
        to_mark = np.abs(lanes - np.round(lanes)) * self.spec.lane_width
        mark_width = np.maximum(MARK, 0.35 / self.row_scale)[:, None]
        mark = (to_mark < mark_width) & on_road & (distance < self.half_width - 0.5)
        templates = np.empty((len(self.row_depth), 2, span, 3), dtype=np.uint8)
        rows = np.arange(len(self.row_depth))[:, None]
        for parity in (0, 1):
            classes = GRASS + parity + ROAD * on_road + RUMBLE_A * on_rumble
            if parity == 0 and self.spec.lanes > 1:
                classes = np.where(mark, LANE_MARK, classes)
            templates[:, parity] = self.row_palette[rows, classes]
        return templates.reshape(-1, 3)

    def _sky_starts(self, heading: np.ndarray) -> np.ndarray:
        """Where the sky's rows start in :attr:`row_windows`, ``(n, horizon)`` int64: the
        panorama slid by each road's ``heading`` ``(n,)`` (radians)."""
        period = self.panorama.shape[1]
        shift = (heading * self.width * 1.2).astype(np.int64)
        return self.sky_rows[None, :] + shift[:, None] % period

    def _ground_starts(self, base: np.ndarray, lateral: np.ndarray,
                       road_offset: np.ndarray) -> np.ndarray:
        """Where the ground's rows start in :attr:`row_windows`, ``(n, rows)`` int64: every row
        a window of its stripe's scanline template, centred on the road.

        ``base`` ``(n,)`` is the camera's place along the track and ``lateral`` ``(n,)`` the
        player's across it, ``road_offset`` ``(n, rows)`` the road's centre at each row, metres.
        """
        centre = self.width / 2 + (road_offset - lateral[:, None]) * self.row_scale[None, :]
        shift = np.clip(np.rint(centre), -self.width, 2 * self.width).astype(np.int64)
        stripe = np.floor((base[:, None] + self.row_depth[None, :]) / STRIPE).astype(np.int64) & 1
        return self.ground_rows + stripe * (3 * self.width) - shift

    def _sprite_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Parts of the sprites as boxes in metres ``(bottom, top, left, right)`` above the
        ground and across from the sprite's centre, with base colours; row ``k`` of the car
        parts uses colour ``None`` for the car's own body colour."""
        car = [
            ((0.0, CAR_HEIGHT, -CAR_WIDTH / 2, CAR_WIDTH / 2), None),
            ((0.8, 1.23, -0.63, 0.63), (40, 50, 70)),
            ((0.39, 0.63, -0.9, -0.54), (255, 40, 30)),
            ((0.39, 0.63, 0.54, 0.9), (255, 40, 30)),
            ((0.0, 0.21, -0.95, -0.5), (15, 15, 15)),
            ((0.0, 0.21, 0.5, 0.95), (15, 15, 15)),
        ]
        roadside = [
            ((0.0, 2.5, -0.25, 0.25), self.spec.roadside_trunk),
            ((2.2, 5.5, -1.2, 1.2), self.spec.roadside_top),
        ]
        return car, roadside

    def _sprite_layout(self, n_cars: int) -> SpriteLayout:
        """The :class:`SpriteLayout` of roads with ``n_cars`` other vehicles (built once)."""
        if n_cars not in self._layouts:
            n_sprites = n_cars + len(self.roadside_across)
            boxes = np.zeros((n_sprites, self.n_parts, 4))
            boxes[:n_cars] = self.car_boxes
            boxes[n_cars:, : len(self.side_boxes)] = self.side_boxes
            edges = np.stack([-boxes[..., 1], -boxes[..., 0], boxes[..., 2], boxes[..., 3]], -1)
            colour_id = np.zeros((n_sprites, self.n_parts), dtype=np.int64)
            colour_id[:n_cars] = np.arange(self.n_parts)
            colour_id[n_cars:, : len(self.side_boxes)] = self.n_parts + np.arange(len(self.side_boxes))
            body = np.zeros((n_sprites, self.n_parts), dtype=bool)
            body[:, 0] = np.arange(n_sprites) < n_cars
            fogged = np.ones((n_sprites, self.n_parts))
            fogged[:n_cars, 4:6] = 0.0  # tyres stay black
            self._layouts[n_cars] = SpriteLayout(edges, boxes[..., 1] > boxes[..., 0],
                                                 colour_id.ravel(), body.ravel(), fogged.ravel())
        return self._layouts[n_cars]

    def _sprite_places(self, roads: RoadBatch, indices: np.ndarray,
                       camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth ahead of the camera and place across the road, ``(n, S)`` metres each, of the
        sprites: the cars, then the roadside objects on the left, then those on the right."""
        car_depth = roads.car_position[indices] - camera[:, None]
        first = np.ceil((camera + NEAR) / ROADSIDE_SPACING)
        side_depth = (first[:, None] + self.roadside_slots) * ROADSIDE_SPACING - camera[:, None]
        depth = np.concatenate([car_depth, side_depth, side_depth], axis=1)
        across = np.empty_like(depth)
        across[:, : car_depth.shape[1]] = roads.car_lateral()[indices]
        across[:, car_depth.shape[1]:] = self.roadside_across
        return depth, across

    def _part_colours(self, layout: SpriteLayout, part: np.ndarray, sprite: np.ndarray,
                      depth: np.ndarray, car_speed: np.ndarray) -> np.ndarray:
        """Colours ``(K, 3)`` uint8 of the sprite parts ``part`` (flat indices into
        ``(n, S, P)``) of the sprites ``sprite`` (flat indices into ``(n, S)``): car bodies take
        a colour by ``car_speed`` ``(n, cars)``, and fog tints by ``depth`` ``(n, S)``."""
        n_cars = car_speed.shape[1]
        body_id = np.zeros(depth.shape, dtype=np.int64)
        body_id[:, :n_cars] = len(self.sprite_colours) - len(self.car_colours) \
            + (car_speed * 7).astype(np.int64) % len(self.car_colours)
        slot = part % len(layout.colour_id)
        colour_id = np.where(layout.body[slot], body_id.ravel()[sprite], layout.colour_id[slot])
        if self.spec.fog_distance <= 0:
            return self.sprite_colours_uint8[colour_id]
        fog = (self._fog(depth).ravel()[sprite] * layout.fogged[slot])[:, None]
        colours = self.sprite_colours[colour_id] * (1 - fog) + self.fog_colour * fog
        return colours.astype(np.uint8)

    def _draw_sprites(self, frames: np.ndarray, top: np.ndarray, roads: RoadBatch,
                      indices: np.ndarray, camera: np.ndarray, lateral: np.ndarray,
                      relative_offset) -> None:
        """Rasterise every visible sprite part of every road at once, nearest on top.

        ``frames`` ``(n, H, W, 3)`` uint8 is drawn on; ``top`` is the depth buffer of as many
        pixels, all -1 before and after.
        """
        layout = self._sprite_layout(roads.num_cars)
        depth, across = self._sprite_places(roads, indices, camera)
        visible = (depth > NEAR * 0.9) & (depth < DRAW_DISTANCE)
        bounds = self._part_bounds(layout, visible, depth, across, lateral, relative_offset)
        present = visible[:, :, None] & layout.real & (bounds[..., 1] > bounds[..., 0]) \
            & (bounds[..., 3] > bounds[..., 2])
        part = np.flatnonzero(present)  # (K,) into (n, S, P)
        if len(part) == 0:
            return
        sprite = part // self.n_parts  # into (n, S)
        frame = sprite // depth.shape[1]
        # Painter's order: farther sprites get lower layers; later parts lie on earlier ones.
        rank = np.argsort(np.argsort(-np.where(visible, depth, np.inf), axis=1, kind="stable"), axis=1)
        layer = rank.ravel()[sprite] * self.n_parts + part % self.n_parts
        key = (frame * present[0].size + layer).astype(np.int32)  # orders parts within a frame
        palette = np.empty((present.size, 3), dtype=np.uint8)
        palette[key] = self._part_colours(layout, part, sprite, depth, roads.car_speed[indices])
        y0, y1, x0, x1 = bounds.reshape(-1, 4)[part].astype(np.int64).T
        height, width = y1 - y0, x1 - x0
        pixels = _box_pixels((frame * self.height + y0) * self.width + x0, height, width,
                             self.width)
        np.maximum.at(top, pixels, np.repeat(key, height * width))
        _as_pixels(frames).reshape(-1)[pixels] = _as_pixels(palette)[top[pixels]]
        top[pixels] = -1

    def _part_bounds(self, layout: SpriteLayout, visible: np.ndarray, depth: np.ndarray,
                     across: np.ndarray, lateral: np.ndarray, relative_offset) -> np.ndarray:
        """Screen boxes of the sprite parts, ``(n, S, P, 4)`` float: first and last + 1 row,
        first and last + 1 column, whole pixels clipped to the frame.

        ``visible``, ``depth`` and ``across`` (metres from the road's centre) are ``(n, S)``,
        ``lateral`` ``(n,)`` the players' places; hidden sprites are placed at the near plane.
        """
        seen = np.where(visible, depth, NEAR)
        centre = relative_offset(seen) + across - lateral[:, None]
        scale = self.focal / seen
        bottom = self.horizon + self.camera_height * scale
        x = self.width / 2 + centre * scale
        bounds = layout.edges * scale[:, :, None, None]  # computed in place from here on
        bounds += np.stack([bottom, bottom, x, x], axis=-1)[:, :, None, :]
        bounds += 0.5
        return np.clip(np.floor(bounds, out=bounds), 0, self.edge_limits, out=bounds)

    def _player_sprite(self) -> tuple[np.ndarray, np.ndarray]:
        """Mask ``(H, W)`` and colours ``(count, 3)`` of the player's bike and rider."""
        frame = np.zeros((self.height, self.width, 4), dtype=np.uint8)
        bottom, x, scale = self._project(CAMERA_BACK, 0.0)
        scale *= 1.5
        parts = [((0.0, 0.9, -0.18, 0.18), (20, 20, 20)),
                 ((0.55, 0.75, -0.45, 0.45), (200, 30, 30)),
                 ((0.75, 1.55, -0.32, 0.32), (30, 60, 160)),
                 ((1.5, 1.95, -0.2, 0.2), (240, 200, 40))]
        for (low, high, left, right), colour in parts:
            y0, y1 = int(np.floor(bottom - high * scale + 0.5)), int(np.floor(bottom - low * scale + 0.5))
            x0, x1 = int(np.floor(x + left * scale + 0.5)), int(np.floor(x + right * scale + 0.5))
            frame[max(y0, 0):min(y1, self.height), max(x0, 0):min(x1, self.width)] = (*colour, 1)
        mask = frame[..., 3] == 1
        return mask, frame[mask][:, :3]

    def _burst_sprite(self) -> tuple[np.ndarray, np.ndarray]:
        """Mask ``(H, W)`` and colours ``(count, 3)`` of the crash burst over the bike: an
        eight-pointed yellow star (a diamond over a square) with a white core, 2.6 m across."""
        bottom, x, scale = self._project(CAMERA_BACK, 0.0)
        scale *= 1.5  # as the player's sprite
        rows, columns = np.mgrid[0:self.height, 0:self.width] + 0.5
        across, up = (columns - x) / scale, (bottom - rows) / scale - 1.0  # metres from the centre
        star = (np.abs(across) + np.abs(up) <= 1.3) | ((np.abs(across) <= 0.8) & (np.abs(up) <= 0.8))
        core = np.abs(across) + np.abs(up) <= 0.5
        colours = np.where(core[star][:, None], np.uint8(255), np.array([255, 200, 0], np.uint8))
        return star, colours

    def _project(self, depth: float, across: float) -> tuple[float, float, float]:
        """Screen (bottom row, centre column, pixels per metre) of a point on the ground."""
        scale = self.focal / depth
        return self.horizon + self.camera_height * scale, self.width / 2 + across * scale, scale

    def _draw_player(self, frames: np.ndarray) -> None:
        frames[:, self.player_mask] = self.player_colours


def _as_pixels(colours: np.ndarray) -> np.ndarray:
    """A ``(..., 3)`` uint8 C-contiguous array viewed as ``(...)`` 3-byte items, so that
    fancy indexing moves whole pixels."""
    return colours.view(np.dtype((np.void, 3)))[..., 0]


def _box_pixels(corner: np.ndarray, height: np.ndarray, width: np.ndarray,
                stride: int) -> np.ndarray:
    """Flat indices of every pixel of ``K`` boxes, box after box, row by row.

    Args:
        corner: ``(K,)`` int64 index of each box's top-left pixel.
        height, width: ``(K,)`` int64 box sizes in pixels, at least 1.
        stride: indices from one image row to the next.

    Returns:
        ``(sum(height * width),)`` int64.
    """
    row_start = np.repeat(corner, height) + stride * _ramps(height)
    row_width = np.repeat(width, height)
    return np.repeat(row_start, row_width) + _ramps(row_width)


def _ramps(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., count - 1`` for every count of ``(K,)`` int64 ``counts``, concatenated."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def to_grayscale(frames: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB uint8 -> ``(..., 1)`` luminance uint8."""
    return (frames @ GRAYSCALE_WEIGHTS).round().astype(np.uint8)[..., None]
