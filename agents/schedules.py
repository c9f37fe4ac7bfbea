"""Schedules of training progress (0 at the start, 1 at the end), for epsilon and step sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearSchedule:
    """``start`` at progress 0, moving linearly to ``end`` at progress ``fraction``, then ``end``."""

    start: float
    end: float
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")

    def __call__(self, progress: float) -> float:
        if progress >= self.fraction:
            return self.end
        return self.start + (self.end - self.start) * max(progress, 0.0) / self.fraction
