"""Pick the torch device (``"auto"`` means CUDA when present, else CPU) and its inference layout."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return ``torch.device`` for ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        ValueError: CUDA was asked for on a machine without it.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def inference_memory_format(device: str | torch.device) -> torch.memory_format:
    """Memory layout for running convolution networks on ``device``: channels-last (NHWC) on
    the CPU, where oneDNN's convolutions then skip reordering the maps at every layer;
    contiguous (NCHW) elsewhere."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format
