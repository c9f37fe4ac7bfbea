"""Network weights from safetensors files, with errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load the safetensors file ``path`` into ``module``, strictly (every tensor, same shapes).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: ``path`` is corrupt, or holds another network's weights (with the first
            missing key or size mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found: {path}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} is corrupt: {error}") from error
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines[1:] if "size mismatch" in line or "key" in line),
                      lines[0])
        raise ValueError(f"{path} was made for another network: {reason}") from error
