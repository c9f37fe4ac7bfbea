"""The safety classifier: (frame t, frame t+1) -> logit of P(the step was unsafe).

An AlexNet-style network (a large strided first convolution, max pooling, three 3x3
convolutions, two fully connected layers with dropout) scaled down to small frames, so a
depth-3 search at 64x64 classifies its 39 pairs in a few milliseconds on a CPU.
:class:`MirrorAveraged` averages it over each pair and its left-right mirror image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rlgan.worldmodel.frames import to_unit


@dataclass(frozen=True)
class ClassifierShape:
    """Shape of the safety classifier.

    Attributes:
        height, width: frame size in pixels (>= 16).
        channels: channels of one frame (3 RGB, 1 grayscale); the input has ``2 * channels``.
        width_multiplier: channels of the first convolution; later layers use 2x and 3x it.
        hidden: units of each fully connected layer.
        dropout: dropout probability before each fully connected layer (training only).
    """

    height: int = 64
    width: int = 64
    channels: int = 3
    width_multiplier: int = 12
    hidden: int = 128
    dropout: float = 0.3

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 16:
                raise ValueError(f"{name} must be an integer >= 16, got {value!r}")
        if self.channels not in (1, 3, 4):
            raise ValueError(f"channels must be 1, 3 or 4, got {self.channels!r}")
        if self.width_multiplier < 1 or self.hidden < 1:
            raise ValueError(f"width_multiplier and hidden must be >= 1, got "
                             f"{self.width_multiplier} and {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one frame, the observation layout."""
        return (self.height, self.width, self.channels)


class SafetyClassifier(nn.Module):
    """``forward(pairs)``: float ``(B, 2C, H, W)`` in [-1, 1] (frame t then frame t+1 on the
    channel axis) -> unsafe logits ``(B,)``; ``sigmoid`` of a logit is P(unsafe)."""

    def __init__(self, config: ClassifierShape) -> None:
        super().__init__()
        self.config = config
        w = config.width_multiplier
        self.features = nn.Sequential(
            nn.Conv2d(2 * config.channels, w, 5, stride=2, padding=2),  # (B, w, H/2, W/2)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, w, H/4, W/4)
            nn.Conv2d(w, 2 * w, 5, padding=2),  # (B, 2w, H/4, W/4)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 2w, H/8, W/8)
            nn.Conv2d(2 * w, 3 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(3 * w, 3 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(3 * w, 2 * w, 3, padding=1),  # (B, 2w, H/8, W/8)
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(4),  # (B, 2w, 4, 4)
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(2 * w * 16, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, 1),
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        expected = (2 * self.config.channels, self.config.height, self.config.width)
        if pairs.dim() != 4 or tuple(pairs.shape[1:]) != expected:
            raise ValueError(f"expected pairs of shape (B, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}), got {tuple(pairs.shape)}")
        return self.head(self.features(pairs)).squeeze(1)


class MirrorAveraged(nn.Module):
    """A classifier averaged over each pair and its left-right mirror (test-time augmentation).

    The unsafe label does not change when both frames are mirrored, and the classifier is
    trained on mirrored pairs (``flip``), so the two views are two readings of one step; their
    mean P(unsafe) ranks predicted frames better than either. It costs two classifier passes.

    ``forward(pairs)``: float ``(B, 2C, H, W)`` -> the logit of the mean P(unsafe) ``(B,)``.
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(torch.cat([pairs, pairs.flip(-1)])).unflatten(0, (2, len(pairs)))
        log_unsafe = torch.logsumexp(nn.functional.logsigmoid(logits), dim=0)
        log_safe = torch.logsumexp(nn.functional.logsigmoid(-logits), dim=0)
        return log_unsafe - log_safe


def make_pairs(frame_t: torch.Tensor, frame_t1: torch.Tensor) -> torch.Tensor:
    """Stack frames ``(B, C, H, W)`` (uint8, or float in [-1, 1]) into classifier input
    float ``(B, 2C, H, W)`` in [-1, 1]."""
    if frame_t.dtype == torch.uint8:
        frame_t = to_unit(frame_t)
    if frame_t1.dtype == torch.uint8:
        frame_t1 = to_unit(frame_t1)
    return torch.cat([frame_t, frame_t1], dim=1)
