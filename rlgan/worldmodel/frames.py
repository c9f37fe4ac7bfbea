"""Conversions between recorded uint8 frames and the networks' float frames in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] (same shape)."""
    return frames.float().div(127.5).sub(1.0)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 0..255, rounded (same shape)."""
    return frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def stack_history(frames: torch.Tensor) -> torch.Tensor:
    """``(B, history, C, H, W)`` -> ``(B, history*C, H, W)``, oldest frame first."""
    batch, history, channels, height, width = frames.shape
    return frames.reshape(batch, history * channels, height, width)


def observations_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Observation-layout uint8 frames ``(..., H, W, C)`` -> uint8 tensor ``(..., C, H, W)``."""
    tensor = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames)
    return tensor.movedim(-1, -3).contiguous()


def tensor_to_observations(frames: torch.Tensor) -> np.ndarray:
    """uint8 tensor ``(..., C, H, W)`` -> numpy observation layout ``(..., H, W, C)``."""
    return np.ascontiguousarray(frames.movedim(-3, -1).cpu().numpy())
