"""How good each learned team of a self-play run is: against the scripted and random
opponents (beside the baselines' own scores), and against every snapshot of the other team
(the cross-play matrix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlgan.agents.selfplay import pool_files
from rlgan.agents.team_run import load_snapshot, read_team_run
from rlgan.agents.team_play import BASELINES, Player, play, play_games
from rlgan.agents.training import Run


def team_return(team: str, hider_return: np.ndarray) -> np.ndarray:
    """A team's returns from the hiders' (seekers get the negative)."""
    return hider_return if team == "hider" else -hider_return


class _Matches:
    """Plays ``games`` games (seeded ``seed``) between two players; a game of two baselines is
    the same whichever team asks, so each such pair is played once."""

    def __init__(self, env_kwargs: dict[str, Any], games: int, seed: int) -> None:
        self.env_kwargs, self.games, self.seed = env_kwargs, games, seed
        self.baseline_games: dict[tuple[str, str], np.ndarray] = {}

    def returns(self, team: str, player: Player, opponent: Player) -> np.ndarray:
        """``team``'s return in each game, ``(games,)``, ``player`` playing it."""
        hider, seeker = (player, opponent) if team == "hider" else (opponent, player)
        if isinstance(hider, str) and isinstance(seeker, str):
            if (hider, seeker) not in self.baseline_games:
                self.baseline_games[hider, seeker] = self._hider_returns(hider, seeker)
            return team_return(team, self.baseline_games[hider, seeker])
        return team_return(team, self._hider_returns(hider, seeker))

    def _hider_returns(self, hider: Player, seeker: Player) -> np.ndarray:
        return play_games(self.env_kwargs, hider, seeker, self.games, self.seed)[1]


def _mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    """The mean and its standard error (NaN for one value)."""
    stderr = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.nan
    return float(values.mean()), float(stderr)


def snapshot_updates(run_dir: str | Path, team: str, count: int) -> list[int]:
    """Up to ``count`` updates of ``team``'s pool snapshots, evenly spaced, the last included."""
    updates = [update for name, update, _ in pool_files(Path(run_dir) / "pool") if name == team]
    if len(updates) <= count:
        return updates
    return [updates[int(i)] for i in np.linspace(0, len(updates) - 1, count).round()]


def cross_play(run_dir: str | Path, games: int, seed: int = 0,
               snapshots: int = 5) -> dict[str, Any]:
    """The hiders' mean return with every hider snapshot (rows) against every seeker snapshot
    (columns), up to ``snapshots`` of each, ``games`` games per cell.

    Raises:
        ValueError: a run in which some team did not learn (it has no snapshots).
    """
    saved = read_team_run(Run(run_dir))
    if saved["teams"] != ["hider", "seeker"]:
        raise ValueError(f"cross-play needs both teams learning; {run_dir} trained "
                         f"{', '.join(saved['teams'])} only")
    rows = snapshot_updates(run_dir, "hider", snapshots)
    columns = snapshot_updates(run_dir, "seeker", snapshots)
    hiders = [load_snapshot(run_dir, "hider", update) for update in rows]
    seekers = [load_snapshot(run_dir, "seeker", update) for update in columns]
    matrix = [[play(saved["env_kwargs"], hider, seeker, games, seed)["hider_return"]
               for seeker in seekers] for hider in hiders]
    return {"hider_updates": rows, "seeker_updates": columns, "hider_return": matrix}


def evaluate_teams(run_dir: str | Path, games: int = 100, seed: int = 0,
                   snapshots: int = 5) -> dict[str, Any]:
    """Each learned team (the latest checkpoint) against scripted and random opponents, each
    baseline on the same games, and the cross-play matrix (when both teams learned).

    Returns:
        ``{"teams": {team: {"learned": {opponent: return}, "scripted": {...}, "random":
        {...}}}, "stderr": {the same layout: standard errors}, "learned_minus_scripted":
        {team: {opponent: [difference, its standard error]}}, "cross_play": ...}``: a team's
        own mean return per episode, ``games`` games each (game ``i`` seeded ``seed + i``);
        the difference is paired, game by game, between the learned and the scripted player
        of the team on the same games.
    """
    if games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    saved = read_team_run(Run(run_dir))
    matches = _Matches(saved["env_kwargs"], games, seed)
    result: dict[str, Any] = {"run": str(run_dir), "games": games, "seed": seed, "teams": {},
                              "stderr": {}, "learned_minus_scripted": {}}
    for team in saved["teams"]:
        players: dict[str, Player] = {"learned": load_snapshot(run_dir, team), **{b: b for b in BASELINES}}
        returns = {name: {opponent: matches.returns(team, player, opponent) for opponent in BASELINES}
                   for name, player in players.items()}
        scores = {name: {opponent: _mean_and_stderr(values) for opponent, values in row.items()}
                  for name, row in returns.items()}
        for key, index in (("teams", 0), ("stderr", 1)):
            result[key][team] = {name: {opponent: score[index] for opponent, score in row.items()}
                                 for name, row in scores.items()}
        result["learned_minus_scripted"][team] = {
            opponent: list(_mean_and_stderr(returns["learned"][opponent] - returns["scripted"][opponent]))
            for opponent in BASELINES}
    if saved["teams"] == ["hider", "seeker"]:
        result["cross_play"] = cross_play(run_dir, games, seed, snapshots)
    return result
