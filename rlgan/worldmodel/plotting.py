"""Per-step curves of ``rlgan worldmodel eval --json``: ``rlgan plot --worldmodel-eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlgan.io import atomic_path, read_json
from rlgan.worldmodel.rollouts import ROLLOUT_METRICS

#: Axis label of each rollout metric.
METRIC_LABELS = {"psnr": "PSNR [dB]", "ssim": "SSIM", "sharpness": "sharpness [dB]"}
#: (key suffix, legend, line style) of the curves of one metric.
CURVES = (("", "model", "-"), ("_copy_last", "copy-last", "--"), ("_baseline", "baseline", ":"))


def read_evaluation(path: str | Path) -> dict[str, Any]:
    """The JSON object of ``rlgan worldmodel eval --json``, checked to hold rollout curves.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or not the output of ``rlgan worldmodel eval --json``, or no
            rollouts in it (outcome records, or episodes too short for the depth).
    """
    result = read_json(path, what="world-model evaluation")
    missing = [f"{name}_by_depth" for name in ROLLOUT_METRICS
               if not isinstance(result, dict) or f"{name}_by_depth" not in result]
    if missing:
        raise ValueError(f"{path} is not the output of rlgan worldmodel eval --json (no "
                         f"{', '.join(missing)}); write one with: rlgan worldmodel eval --run RUN "
                         f"--data DIR --json > {Path(path).name}")
    if not result.get("rollouts"):
        raise ValueError(f"{path} has no open-loop rollouts to plot (outcome records, or no "
                         "episode as long as --depth); evaluate on a recorded dataset")
    return result


def plot_worldmodel_evaluation(path: str | Path, out: str | Path) -> Path:
    """Plot PSNR, SSIM and sharpness against the rollout step (model, copy-last, baseline),
    and the classifier's ROC AUC against the horizon when the evaluation has one.

    Args:
        path: JSON file of ``rlgan worldmodel eval --json``.
        out: PNG to write (atomically).

    Returns:
        ``out``.

    Raises:
        FileNotFoundError / ValueError: see :func:`read_evaluation`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    result = read_evaluation(path)
    foresight = result.get("foresight")
    panels = len(ROLLOUT_METRICS) + (1 if foresight else 0)
    figure, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.6))
    steps = range(1, len(result["psnr_by_depth"]) + 1)
    for axis, name in zip(axes, ROLLOUT_METRICS):
        for suffix, label, style in CURVES:
            values = result.get(f"{name}_by_depth{suffix}")
            if values:
                axis.plot(steps, values, style, marker="o", markersize=3, label=label)
        axis.set_xlabel("rollout step")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(METRIC_LABELS[name])
        axis.grid(alpha=0.3)
    axes[0].legend()
    axes[0].set_title(f"{Path(result['run']).name}, {result['rollouts']} rollouts", fontsize=9)
    if foresight:
        axis = axes[-1]
        horizons = foresight["horizons"]
        rows = [*foresight["auc"].items(), ("recorded frames", foresight["auc_recorded_frames"])]
        stderr = {**foresight.get("auc_stderr", {}),  # absent from evaluations before it was reported
                  "recorded frames": foresight.get("auc_recorded_frames_stderr")}
        for label, values in rows:
            errors = stderr.get(label)
            axis.errorbar(horizons, [float("nan") if v is None else v for v in values],
                          yerr=None if errors is None else [float("nan") if v is None else v for v in errors],
                          marker="o", capsize=3, label=label)
        axis.axhline(0.5, color="grey", linewidth=0.8)
        axis.set_xscale("log", base=2)
        axis.set_xticks(horizons, [str(k) for k in horizons])
        axis.set_xlabel("unsafe within k steps")
        mirrored = ", mirror-averaged" if foresight.get("mirror_average") else ""
        axis.set_ylabel(f"classifier ROC AUC{mirrored}")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    plt.close(figure)
    return out
