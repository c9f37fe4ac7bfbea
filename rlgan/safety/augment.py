"""Augmentations of classifier pairs that keep their unsafe label.

Both frames of a pair get the same transform, so the change between them (what makes a step
unsafe) is kept while the look of the scene varies.
"""

from __future__ import annotations

import torch

#: Range of the per-channel gain and offset of :func:`jitter_colours`, on intensities in [0, 1].
GAIN_RANGE = (0.4, 1.2)
OFFSET_RANGE = (-0.3, 0.2)


def mirror(pairs: torch.Tensor, fraction: float = 0.5) -> torch.Tensor:
    """Mirror left-right a random ``fraction`` of the pairs ``(B, 2C, H, W)``, in place."""
    chosen = torch.rand(len(pairs)) < fraction
    pairs[chosen] = pairs[chosen].flip(-1)
    return pairs


def jitter_colours(pairs: torch.Tensor, channels: int, fraction: float = 0.5) -> torch.Tensor:
    """Recolour a random ``fraction`` of the pairs ``(B, 2C, H, W)`` in [-1, 1], in place.

    Each chosen pair gets one random permutation of its ``channels`` colour channels, then a
    random gain and offset per channel (intensities clipped to [0, 1]), applied to both of its
    frames: a day map's palette turns into others (a darker or tinted road, other kerb colours),
    so a classifier trained on one map leans on shapes and motion rather than colours.
    """
    chosen = torch.nonzero(torch.rand(len(pairs)) < fraction).squeeze(1)
    if len(chosen) == 0:
        return pairs
    n, device = len(chosen), pairs.device
    order = torch.argsort(torch.rand(n, channels), dim=1)  # (n, C) a permutation per pair
    gain = torch.empty(n, channels, 1, 1).uniform_(*GAIN_RANGE).to(device)
    offset = torch.empty(n, channels, 1, 1).uniform_(*OFFSET_RANGE).to(device)
    selected = pairs[chosen]
    frames = []
    for first in (0, channels):
        frame = selected[:, first:first + channels]
        frame = torch.gather(frame, 1, order.to(device)[:, :, None, None].expand_as(frame))
        unit = ((frame + 1.0) / 2.0 * gain + offset).clamp(0.0, 1.0)
        frames.append(unit * 2.0 - 1.0)
    pairs[chosen] = torch.cat(frames, dim=1)
    return pairs
