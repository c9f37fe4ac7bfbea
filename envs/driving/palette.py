"""Random colours for a driving map (domain randomisation of its look, not of its road).

:func:`random_palette` keeps a map's layout, traffic and scenery shapes and draws every colour
anew from a seed: sky, grass, road, kerb, lane marks, scenery, roadside posts, vehicles, the
fog (on or off, and how far) and the light: the sky, grass, road, scenery and posts are
dimmed by a random factor (dusk to noon) while paint and lamps (kerb, lane marks, lit
scenery, post tops, vehicles) keep their brightness. Data recorded over many palettes
teaches a world model or a classifier the road's geometry rather than one map's colours, as
CarRacing's ``domain_randomize`` does. The colours that carry the task stand out from the
road (the grass beside it, its lane marks, the vehicles on it), so the road edge and the
traffic stay visible in every palette.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rlgan.envs.driving.config import RGB, MapSpec

#: Least mean absolute difference (0..255, averaged over R, G, B) between the road and its
#: lane marks and each vehicle colour, and between the (dimmed) road and grass.
MIN_CONTRAST = 60.0
MIN_GROUND_CONTRAST = 20.0
#: Range of the light factor that dims the sky, ground, scenery and roadside posts.
LIGHT = (0.15, 1.0)
#: Brightness of the second stripe of the grass and the road relative to the first.
STRIPE_SHADE = 0.9
#: Probability that a palette has fog, and the range of its 63%-fog distance in metres.
FOG_PROBABILITY = 0.5
FOG_DISTANCE = (100.0, 250.0)


def contrast(first: RGB, second: RGB) -> float:
    """Mean absolute difference of two RGB colours over their channels (0..255)."""
    return float(np.abs(np.subtract(first, second, dtype=float)).mean())


def random_palette(spec: MapSpec, seed: int) -> MapSpec:
    """``spec`` with all its colours and its fog drawn from ``seed`` (same seed, same palette).

    The road, scenery style, lanes, curvature and traffic of ``spec`` are kept.
    """
    rng = np.random.default_rng(seed)
    light = float(rng.uniform(*LIGHT))

    def colour(dim: bool = False) -> RGB:
        scale = light if dim else 1.0
        red, green, blue = (int(value * scale) for value in rng.integers(0, 256, 3))
        return red, green, blue

    def contrasting(reference: RGB, least: float = MIN_CONTRAST, dim: bool = False) -> RGB:
        while True:
            drawn = colour(dim)
            if contrast(drawn, reference) >= least:
                return drawn

    def striped(first: RGB) -> tuple[RGB, RGB]:
        red, green, blue = (int(value * STRIPE_SHADE) for value in first)
        return first, (red, green, blue)

    road = colour(dim=True)
    sky_horizon = colour(dim=True)
    foggy = rng.random() < FOG_PROBABILITY
    fog_distance = float(rng.uniform(*FOG_DISTANCE)) if foggy else 0.0
    return dataclasses.replace(
        spec, sky_top=colour(dim=True), sky_horizon=sky_horizon,
        grass=striped(contrasting(road, MIN_GROUND_CONTRAST, dim=True)), road=striped(road),
        rumble=(colour(), colour()), lane_mark=contrasting(road), scenery=colour(dim=True),
        scenery_cap=colour(), roadside_trunk=colour(dim=True), roadside_top=colour(),
        car_colours=tuple(contrasting(road) for _ in spec.car_colours), fog=sky_horizon,
        fog_distance=fog_distance)
