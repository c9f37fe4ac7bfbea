"""Learning curves of training runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlgan.agents.training import Run
from rlgan.io import atomic_path


def plot_learning_curve(run_dir: str | Path, out: str | Path) -> Path:
    """Plot evaluation return (mean +- std) and unsafe steps per 1000 against training steps.

    Raises:
        ValueError: the run has no evaluations yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Run(run_dir)
    config = run.config()
    rows = run.evaluations()
    if not rows:
        raise ValueError(f"run {run.directory} has no evaluations yet (evaluations.csv is empty)")
    steps = np.array([row["step"] for row in rows])
    mean = np.array([row["mean_return"] for row in rows])
    std = np.array([row["std_return"] for row in rows])
    unsafe = np.array([row["unsafe_per_1000"] for row in rows])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(steps, mean, marker="o")
    top.fill_between(steps, mean - std, mean + std, alpha=0.25)
    top.set_ylabel("evaluation return")
    top.set_title(f"{config['algo']} on {config['env_id']}")
    bottom.plot(steps, unsafe, marker="o", color="tab:red")
    bottom.set_ylabel("unsafe steps / 1000")
    bottom.set_xlabel("environment steps")
    figure.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
    return out
