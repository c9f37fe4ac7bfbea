"""Shared helpers of the benchmarks: timing loops and Markdown tables."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def steps_per_second(step: Callable[[], int], seconds: float, warmup: int = 20) -> float:
    """Call ``step`` (returning how many env steps it made) for about ``seconds``; return rate."""
    for _ in range(warmup):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += step()
    return steps / (time.perf_counter() - start)


def single_env_stepper(env, seed: int = 0) -> Callable[[], int]:
    """A random-action stepper of one Gymnasium env, resetting on episode end."""
    env.reset(seed=seed)
    env.action_space.seed(seed)

    def step() -> int:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        return 1

    return step


def vector_env_stepper(env, seed: int = 0) -> Callable[[], int]:
    """A random-action stepper of a Gymnasium ``VectorEnv`` (autoresets itself)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)

    def step() -> int:
        env.step(env.action_space.sample())
        return env.num_envs

    return step


def machine() -> str:
    """One line describing where the figures were measured."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
