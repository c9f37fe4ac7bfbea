"""``DIR/report.md`` of ``rlgan shield train``: what each stage made, in tables."""

from __future__ import annotations

from typing import Any

from rlgan.io import atomic_write, read_json
from rlgan.pipeline.settings import ShieldSettings
from rlgan.pipeline.shield_dir import ShieldDir
from rlgan.safety.evaluation import format_table, percent_with_error


def shielded_rows_table(rows: list[dict[str, Any]]) -> str:
    """Removed fraction and return kept (each with its standard error) of every shielded row."""
    lines = ["| row | unsafe events | removed | return kept |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['unsafe_events']} | "
                     f"{percent_with_error(row.get('removed'), row.get('removed_stderr'))} | "
                     f"{percent_with_error(row.get('return_kept'), row.get('return_kept_stderr'))} |")
    return "\n".join(lines)


def _calibration_table(calibration: dict[str, Any]) -> str:
    lines = ["| depth | threshold | unsafe / 1000 | interventions / 1000 | score |", "|---|---|---|---|---|"]
    for row in calibration["rows"]:
        mark = " **chosen**" if (row["depth"], row["threshold"]) == (calibration["depth"], calibration["threshold"]) else ""
        lines.append(f"| {row['depth']} | {row['threshold']:.2f} | {1000 * row['unsafe']:.2f} | "
                     f"{1000 * row['interventions']:.1f} | {1000 * row['score']:.2f}{mark} |")
    return "\n".join(lines)


def _depth_gains(calibration: dict[str, Any]) -> str:
    """The sentence on the deeper searches' paired gains ("" for runs calibrated before them)."""
    gains = calibration.get("depth_gain")
    if not gains:
        return ""
    shallowest = min(int(row["depth"]) for row in calibration["rows"])
    listed = ", ".join(f"depth {depth} {1000 * g['gain']:+.2f} +- {1000 * g['stderr']:.2f}"
                       for depth, g in gains.items())
    return (f" A deeper search is chosen only when its score beats depth {shallowest}'s by more "
            f"than {calibration['depth_stderrs']:g} standard errors (paired over states): {listed}.")


def write_report(shield: ShieldDir, settings: ShieldSettings) -> None:
    """Write ``report.md`` from ``progress.json``, ``calibration.json`` and ``evaluation.json``."""
    progress = shield.progress()
    total = sum(stage["seconds"] for stage in progress.values())
    lines = [f"# Shield for {settings.env_id}", "",
             f"Agent `{settings.agent}`, env options `{settings.env_kwargs}`, budget "
             f"`{settings.budget}`, seed {settings.seed}. Every setting: `settings.json`.", "",
             f"Wall time: {total / 60:.1f} min.", "", "| stage | minutes | summary |", "|---|---|---|"]
    for name, stage in progress.items():
        summary = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                            for key, value in stage["summary"].items() if not isinstance(value, dict))
        lines.append(f"| {name} | {stage['seconds'] / 60:.1f} | {summary} |")
    if shield.calibration.is_file():
        calibration = read_json(shield.calibration)
        lines += ["", "## Depth and threshold, chosen on held-out records", "",
                  f"{calibration['states']} held-out states; the agent's own actions: "
                  f"{1000 * calibration['agent_unsafe']:.2f} unsafe per 1000 steps. Score: unsafe + "
                  f"{settings.calibrate.intervention_cost} x interventions, per 1000 steps."
                  + _depth_gains(calibration), "", _calibration_table(calibration)]
    if shield.evaluation.is_file():
        evaluation = read_json(shield.evaluation)
        rows = evaluation["rows"]
        lines += ["", "## Closed loop", "",
                  f"{evaluation['episodes']} episodes per row from seed {evaluation['seed']} (the same "
                  f"seeds in every row), env options `{evaluation['env_kwargs']}`; the default "
                  f"depth is {evaluation['depth']}; the oracle shield searches the true simulator "
                  f"{evaluation['oracle_depth']} steps ahead, as far as the learned shield sees "
                  "(its depth plus its labels' doom horizon). Standard errors: paired bootstrap "
                  "over episodes.", "",
                  format_table(rows), "", shielded_rows_table(rows[1:])]
    atomic_write(shield.report, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
