"""Pseudo-3D chase-camera renderer of a :class:`RoadBatch`, in numpy (no pygame).

The classic "Lou's pseudo 3d" road: every screen row below the horizon is a depth; the road's
centre at that depth is shifted by the curves between the camera and that depth; grass,
rumble strips and lane marks alternate light/dark every few metres so motion is visible. Above
the horizon: a sky gradient and a parallax skyline that slides as the road turns. Other
vehicles and roadside objects are depth-scaled sprites drawn far to near; the player's bike
sits at the bottom centre (the camera follows it across the road).
"""

from __future__ import annotations

import numpy as np

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


class RoadRenderer:
    """Render ``(N, height, width, 3)`` uint8 frames of a road batch on one map.

    Args:
        height, width: frame size in pixels.
        spec: the map's look.
        lanes, lane_width: road layout in metres (for marks and rumble strips).
    """

    def __init__(self, height: int, width: int, spec: MapSpec) -> None:
        self.height, self.width, self.spec = height, width, spec
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
        self.ground = _pack(self._ground_templates())
        self.sky = self._sky()
        self.skyline = self._skyline()
        self.panorama = self._panorama()
        self.flat_panorama = _pack(self.panorama.reshape(-1, 3))
        self.sky_rows = np.arange(self.horizon) * self.panorama.shape[1]
        car, roadside = self._sprite_table()
        self.n_parts = len(car)
        self.car_boxes = np.array([box for box, _ in car])
        self.car_part_colours = np.array([colour or (0, 0, 0) for _, colour in car], dtype=float)
        self.car_colours = np.array(spec.car_colours, dtype=float)
        self.side_boxes = np.array([box for box, _ in roadside])
        self.side_colours = np.array([colour for _, colour in roadside], dtype=float)
        self.fog_colour = np.array(spec.fog, dtype=float)
        self.player_mask, self.player_colours = self._player_sprite()

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
        """Frames of the roads at ``indices`` (all by default): ``(n, H, W, 3)`` uint8."""
        if indices is None:
            indices = np.arange(roads.num_roads)
        frames = np.empty((len(indices), self.height, self.width, 3), dtype=np.uint8)
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

        self._draw_sky(frames, angle)
        self._draw_ground(frames, base, lateral, relative_offset(self.row_depth[None, :]))
        self._draw_sprites(frames, roads, indices, camera, lateral, relative_offset)
        self._draw_player(frames)
        return frames

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

    def _draw_sky(self, frames: np.ndarray, heading: np.ndarray) -> None:
        period = self.panorama.shape[1]
        shift = (heading * self.width * 1.2).astype(np.int64)
        columns = (np.arange(self.width)[None, :] + shift[:, None]) % period  # (n, W)
        index = self.sky_rows[None, :, None] + columns[:, None, :]  # (n, horizon, W)
        frames[:, : self.horizon] = _unpack(np.take(self.flat_panorama, index))

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

    def _draw_ground(self, frames: np.ndarray, base: np.ndarray, lateral: np.ndarray,
                     road_offset: np.ndarray) -> None:
        span = 3 * self.width
        centre = self.width / 2 + (road_offset - lateral[:, None]) * self.row_scale[None, :]
        shift = np.clip(np.rint(centre), -self.width, 2 * self.width).astype(np.int64)
        stripe = np.floor((base[:, None] + self.row_depth[None, :]) / STRIPE).astype(np.int64) & 1
        start = (self.row_index[None, :] * 2 + stripe) * span + int(1.5 * self.width) - shift
        index = start[:, :, None] + np.arange(self.width)
        frames[:, self.horizon:] = _unpack(np.take(self.ground, index))

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

    def _draw_sprites(self, frames: np.ndarray, roads: RoadBatch, indices: np.ndarray,
                      camera: np.ndarray, lateral: np.ndarray, relative_offset) -> None:
        """Rasterise every visible sprite part of every road at once, nearest on top."""
        n_frames = len(indices)
        car_depth = roads.car_position[indices] - camera[:, None]
        first = np.ceil((camera + NEAR) / ROADSIDE_SPACING)
        side_depth = (first[:, None] + np.arange(int(ROADSIDE_DISTANCE / ROADSIDE_SPACING))) \
            * ROADSIDE_SPACING - camera[:, None]
        side = self.half_width + 3.5
        n_cars = car_depth.shape[1]
        depth = np.concatenate([car_depth, side_depth, side_depth], axis=1)  # (n, S)
        across = np.concatenate([roads.car_lateral()[indices], np.full_like(side_depth, -side),
                                 np.full_like(side_depth, side)], axis=1)
        visible = (depth > NEAR * 0.9) & (depth < DRAW_DISTANCE)
        centre = relative_offset(np.where(visible, depth, NEAR)) + across - lateral[:, None]
        scale = self.focal / np.where(visible, depth, NEAR)
        bottom = self.horizon + self.camera_height * scale
        x = self.width / 2 + centre * scale
        # Parts: (n, S, P) boxes; cars have 6 parts, roadside objects 2 (padded with empties).
        boxes = np.zeros((depth.shape[1], self.n_parts, 4))
        boxes[:n_cars] = self.car_boxes
        boxes[n_cars:, : len(self.side_boxes)] = self.side_boxes
        colours = np.zeros((n_frames, depth.shape[1], self.n_parts, 3))
        body = self.car_colours[(roads.car_speed[indices] * 7).astype(np.int64) % len(self.car_colours)]
        colours[:, :n_cars] = self.car_part_colours
        colours[:, :n_cars, 0] = body
        colours[:, n_cars:, : len(self.side_boxes)] = self.side_colours
        fog = self._fog(depth)[:, :, None, None]
        colours = colours * (1 - fog) + self.fog_colour * fog
        colours[:, :n_cars, 4:6] = (15, 15, 15)  # tyres stay black
        top = np.floor(bottom[..., None] - boxes[None, :, :, 1] * scale[..., None] + 0.5)
        low = np.floor(bottom[..., None] - boxes[None, :, :, 0] * scale[..., None] + 0.5)
        left = np.floor(x[..., None] + boxes[None, :, :, 2] * scale[..., None] + 0.5)
        right = np.floor(x[..., None] + boxes[None, :, :, 3] * scale[..., None] + 0.5)
        y0 = np.clip(top, 0, self.height).astype(np.int64)
        y1 = np.clip(low, 0, self.height).astype(np.int64)
        x0 = np.clip(left, 0, self.width).astype(np.int64)
        x1 = np.clip(right, 0, self.width).astype(np.int64)
        present = visible[..., None] & (y1 > y0) & (x1 > x0) & (boxes[None, :, :, 1] > boxes[None, :, :, 0])
        # Painter's order: farther sprites get lower layers; later parts lie on earlier ones.
        rank = np.argsort(np.argsort(-np.where(visible, depth, np.inf), axis=1, kind="stable"), axis=1)
        layer = rank[..., None] * self.n_parts + np.arange(self.n_parts)
        which = np.nonzero(present)
        if len(which[0]) == 0:
            return
        y0, y1, x0, x1 = y0[which], y1[which], x0[which], x1[which]
        width = x1 - x0
        counts = (y1 - y0) * width
        box = np.repeat(np.arange(len(counts)), counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pixel = which[0][box] * (self.height * self.width) \
            + (y0[box] + local // width[box]) * self.width + x0[box] + local % width[box]
        pixel_layer = layer[which][box].astype(np.int16)
        top_layer = np.full(n_frames * self.height * self.width, -1, dtype=np.int16)
        np.maximum.at(top_layer, pixel, pixel_layer)
        wins = pixel_layer == top_layer[pixel]
        flat = frames.reshape(-1, 3)
        flat[pixel[wins]] = colours[which][box[wins]].astype(np.uint8)

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

    def _project(self, depth: float, across: float) -> tuple[float, float, float]:
        """Screen (bottom row, centre column, pixels per metre) of a point on the ground."""
        scale = self.focal / depth
        return self.horizon + self.camera_height * scale, self.width / 2 + across * scale, scale

    def _draw_player(self, frames: np.ndarray) -> None:
        frames[:, self.player_mask] = self.player_colours


def _pack(colours: np.ndarray) -> np.ndarray:
    """``(K, 3)`` uint8 colours as ``(K,)`` uint32 (one gather moves a whole pixel)."""
    padded = np.zeros((len(colours), 4), dtype=np.uint8)
    padded[:, :3] = colours
    return padded.view(np.uint32).ravel()


def _unpack(packed: np.ndarray) -> np.ndarray:
    """``(...)`` uint32 from :func:`_pack` back to ``(..., 3)`` uint8 (a view)."""
    return packed[..., None].view(np.uint8)[..., :3]


def to_grayscale(frames: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB uint8 -> ``(..., 1)`` luminance uint8."""
    return (frames @ GRAYSCALE_WEIGHTS).round().astype(np.uint8)[..., None]
