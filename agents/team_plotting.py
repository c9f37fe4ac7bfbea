"""What emerged in a self-play run: both teams' reward over training cut into phases at its
reversals, the behaviour statistics of each phase, and a GIF of a learned game per phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlgan.agents.selfplay import pool_files
from rlgan.agents.team_run import load_snapshot, read_log, read_team_run
from rlgan.agents.team_play import play
from rlgan.agents.team_stats import STATISTICS, phases, smooth
from rlgan.agents.training import Run
from rlgan.io import atomic_path, write_json

#: A reversal must move the smoothed hider return back by this much (a return per episode of
#: +-1 per step after preparation; 60 steps on the default grid).
MIN_SWING = 5.0
#: Updates the reward curve is smoothed over before looking for reversals.
WINDOW = 9
#: The statistics that describe behaviour (all but the return).
BEHAVIOUR = [key for key in STATISTICS if key != "hider_return"]


def phase_summary(rows: list[dict[str, float]], min_swing: float = MIN_SWING,
                  window: int = WINDOW) -> list[dict[str, Any]]:
    """The phases of a run's log (``teams.csv`` rows): for each, its first and last update
    and step, its trend (which team's return rose), the mean of every statistic, and
    ``changes``: the two behaviour statistics that moved most within the phase (relative to
    their spread over the run), as ``(name, at the start, at the end)``, each the mean over
    the phase's first or last ``window`` updates."""
    returns = [row["hider_return"] for row in rows]
    curve = smooth(returns, window)
    spread = {key: np.nanstd([row[key] for row in rows]) or 1.0 for key in BEHAVIOUR}
    summary: list[dict[str, Any]] = []
    for start, end in phases(returns, min_swing, window):
        part = rows[start:end]
        edge = max(1, min(window, len(part) // 2))
        first = {key: float(np.nanmean([row[key] for row in part[:edge]])) for key in BEHAVIOUR}
        last = {key: float(np.nanmean([row[key] for row in part[-edge:]])) for key in BEHAVIOUR}
        moved = sorted((key for key in BEHAVIOUR if np.isfinite(last[key] - first[key])),
                       key=lambda key: -abs(last[key] - first[key]) / spread[key])
        summary.append({
            "first_update": int(part[0]["update"]), "last_update": int(part[-1]["update"]),
            "first_step": int(part[0]["step"]), "last_step": int(part[-1]["step"]),
            "trend": "hiders gain" if curve[end - 1] > curve[start] else "seekers gain",
            **{key: float(np.nanmean([row[key] for row in part])) for key in STATISTICS},
            "changes": [(key, first[key], last[key]) for key in moved[:2]]})
    return summary


def plot_teams(run_dir: str | Path, out: str | Path, gifs: bool = True) -> dict[str, Any]:
    """Draw ``out`` (PNG): both teams' return per episode over training with the phases
    shaded, and the behaviour statistics below; write ``<out stem>_phases.json`` (the
    :func:`phase_summary`) and, with ``gifs``, ``<out stem>_phaseK.gif``: a game between
    the snapshots nearest each phase's end.

    Raises:
        ValueError: not a self-play run, or one with no logged update yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Run(run_dir)
    saved = read_team_run(run)
    rows = read_log(run.directory)
    if not rows:
        raise ValueError(f"run {run.directory} has no logged update yet (teams.csv is empty)")
    summary = phase_summary(rows)
    steps = np.array([row["step"] for row in rows]) / 1e6
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True)
    hider = np.array([row["hider_return"] for row in rows])
    top.plot(steps, hider, color="tab:blue", alpha=0.3)
    top.plot(steps, -hider, color="tab:red", alpha=0.3)
    top.plot(steps, smooth(hider, WINDOW), color="tab:blue", label="hiders")
    top.plot(steps, -smooth(hider, WINDOW), color="tab:red", label="seekers")
    top.set_ylabel("return per episode")
    top.set_title(f"self-play PPO, {'+'.join(saved['teams'])}; phases: {len(summary)}")
    top.legend(loc="upper left")
    for key, color in (("hidden_behind_wall", "tab:gray"), ("hidden_behind_box", "tab:brown"),
                       ("found_rate", "tab:red"), ("hider_locked", "tab:purple")):
        middle.plot(steps, smooth([row[key] for row in rows], WINDOW), color=color, label=key)
    middle.set_ylabel(f"fraction (mean of {WINDOW})")
    middle.legend(loc="upper left", fontsize=7)
    for key, color in (("hider_box_pushes", "tab:blue"), ("seeker_box_pushes", "tab:red"),
                       ("steps_to_find", "tab:orange")):
        bottom.plot(steps, smooth([row[key] for row in rows], WINDOW), color=color, label=key)
    bottom.set_ylabel(f"per episode (mean of {WINDOW})")
    bottom.set_xlabel("environment steps [millions]")
    bottom.legend(loc="upper left", fontsize=7)
    for index, phase in enumerate(summary):
        for axis in (top, middle, bottom):
            if index % 2:
                axis.axvspan(phase["first_step"] / 1e6, phase["last_step"] / 1e6,
                             color="0.9", zorder=0)
    figure.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)
    written = {"plot": str(out)}
    write_json(out.with_name(f"{out.stem}_phases.json"), summary)
    written["phases"] = str(out.with_name(f"{out.stem}_phases.json"))
    if gifs and saved["teams"] == ["hider", "seeker"]:
        for index, phase in enumerate(summary):
            path = out.with_name(f"{out.stem}_phase{index + 1}.gif")
            _phase_game(run, saved, phase["last_update"], path)
            written[f"phase{index + 1}"] = str(path)
    return written


def _phase_game(run: Run, saved: dict[str, Any], update: int, path: Path) -> None:
    """A GIF of one game between the hider and seeker snapshots nearest ``update``."""
    from rlgan.envs.hide_and_seek.rendering import GridRenderer
    from rlgan.video import write_video

    players = {}
    for team in ("hider", "seeker"):
        updates = [u for name, u, _ in pool_files(run.directory / "pool") if name == team]
        nearest = min(updates, key=lambda u: abs(u - update)) if updates else None
        players[team] = load_snapshot(run.directory, team, nearest)
    renderer = GridRenderer(fps=6)
    frames: list[np.ndarray] = []
    play(saved["env_kwargs"], players["hider"], players["seeker"], 1, seed=saved["seed"],
         observer=lambda env: frames.append(renderer.frame(env.grid, 0)))
    renderer.close()
    write_video(path, frames, fps=6)
