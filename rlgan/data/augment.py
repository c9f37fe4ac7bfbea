"""Augmentations of stacked frames (a classifier's pair, a world model's history and next
frame) that keep what happens between them.

All frames of a stack get the same transform, so the change between them (the motion, what
makes a step unsafe) is kept while the look of the scene varies.
"""

from __future__ import annotations

import torch

#: Range of the per-channel gain and offset of :func:`jitter_colours`, on intensities in [0, 1].
GAIN_RANGE = (0.4, 1.2)
OFFSET_RANGE = (-0.3, 0.2)


def mirror(stacks: torch.Tensor, fraction: float = 0.5) -> torch.Tensor:
    """Mirror left-right a random ``fraction`` of the stacks ``(B, k*C, H, W)``, in place."""
    chosen = torch.rand(len(stacks)) < fraction
    stacks[chosen] = stacks[chosen].flip(-1)
    return stacks


def jitter_colours(stacks: torch.Tensor, channels: int, fraction: float = 0.5) -> torch.Tensor:
    """Recolour a random ``fraction`` of the stacks of frames ``(B, k*C, H, W)`` in [-1, 1]
    (``k`` frames of ``channels`` channels each), in place.

    Each chosen stack gets one random permutation of its ``channels`` colour channels, then a
    random gain and offset per channel (intensities clipped to [0, 1]), applied to all of its
    frames: a day map's palette turns into others (a darker or tinted road, other kerb colours),
    so a network trained on one map leans on shapes and motion rather than colours.
    """
    chosen = torch.nonzero(torch.rand(len(stacks)) < fraction).squeeze(1)
    if len(chosen) == 0:
        return stacks
    n, device = len(chosen), stacks.device
    order = torch.argsort(torch.rand(n, channels), dim=1)  # (n, C) a permutation per stack
    gain = torch.empty(n, channels, 1, 1).uniform_(*GAIN_RANGE).to(device)
    offset = torch.empty(n, channels, 1, 1).uniform_(*OFFSET_RANGE).to(device)
    selected = stacks[chosen]
    frames = []
    for first in range(0, stacks.shape[1], channels):
        frame = selected[:, first:first + channels]
        frame = torch.gather(frame, 1, order.to(device)[:, :, None, None].expand_as(frame))
        unit = ((frame + 1.0) / 2.0 * gain + offset).clamp(0.0, 1.0)
        frames.append(unit * 2.0 - 1.0)
    stacks[chosen] = torch.cat(frames, dim=1)
    return stacks
