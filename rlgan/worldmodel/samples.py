"""Sample grids: frame t, true frame t+1 and the prediction for every action, side by side."""

from __future__ import annotations

import numpy as np
import torch

from rlgan.worldmodel.frames import to_uint8


@torch.no_grad()
def sample_grid(generator: torch.nn.Module, frames: torch.Tensor, next_frames: torch.Tensor,
                z: torch.Tensor, n_actions: int, channels: int) -> np.ndarray:
    """Rows of ``[frame t | true t+1 | predicted t+1 for action 0 | 1 | ...]``.

    Args:
        generator: the generator (called as is; put it in eval mode first).
        frames: float ``(N, history*C, H, W)`` in [-1, 1].
        next_frames: float ``(N, C, H, W)``, the recorded frame t+1.
        z: float ``(N, z_dim)``, fixed noise so grids over training are comparable.
        n_actions: actions to show.
        channels: C (1 is shown as gray).

    Returns:
        uint8 RGB image ``(N*(H+1)+1, (2+n_actions)*(W+1)+1, 3)`` with white separators.
    """
    columns = [frames[:, -channels:], next_frames]
    for action in range(n_actions):
        actions = torch.full((len(frames),), action, dtype=torch.int64, device=frames.device)
        columns.append(generator(frames, actions, z))
    tiles = torch.stack([to_uint8(column) for column in columns], dim=1).cpu()  # (N, K, C, H, W)
    if channels == 1:
        tiles = tiles.expand(-1, -1, 3, -1, -1)
    n, k, _, height, width = tiles.shape
    grid = np.full((n * (height + 1) + 1, k * (width + 1) + 1, 3), 255, np.uint8)
    for row in range(n):
        for col in range(k):
            top, left = 1 + row * (height + 1), 1 + col * (width + 1)
            grid[top:top + height, left:left + width] = tiles[row, col, :3].permute(1, 2, 0).numpy()
    return grid
