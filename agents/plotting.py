"""Learning curves of training runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlgan.agents.training import Run
from rlgan.io import atomic_path


def plot_learning_curve(run_dir: str | Path, out: str | Path) -> Path:
    """Plot evaluation return (mean +- std over the evaluation episodes) against training
    steps, and below it unsafe steps per 1000 when the env ever reported one.

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
    panels = 2 if unsafe.any() else 1
    figure, axes = plt.subplots(panels, 1, figsize=(7, 3 + 3 * (panels - 1)), sharex=True, squeeze=False)
    top, bottom = axes[0, 0], axes[-1, 0]
    top.plot(steps, mean, marker="o")
    top.fill_between(steps, mean - std, mean + std, alpha=0.25)
    top.set_ylabel(f"evaluation return\n(mean +- std, {int(rows[-1]['episodes'])} episodes)")
    options = ", ".join(f"{key}={value}" for key, value in config.get("env_kwargs", {}).items())
    top.set_title(f"{config['algo']} on {config['env_id']}" + (f" ({options})" if options else ""))
    if panels == 2:
        bottom.plot(steps, unsafe, marker="o", color="tab:red")
        bottom.set_ylabel("unsafe steps / 1000")
    bottom.set_xlabel("environment steps")
    figure.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
    return out
