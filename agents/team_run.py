"""Self-play runs of hide-and-seek teams (``rlgan train --teams``): the run directory,
checks on resume, the training loop with its logs, checkpoints and snapshots, and loading a
team's network back (the algorithm is :mod:`rlgan.agents.selfplay`).

Layout of ``--run DIR`` (a run of ``rlgan train --teams``)::

    config.json            algo "ppo", env id and options, teams, steps, seed, hyperparameters
    checkpoints/last.json  points at the latest complete checkpoint
    checkpoints/step_N/    TEAM.safetensors (network), TEAM_optimizer.pt, progress.json
    pool/TEAM_UUUUUU.safetensors   the snapshot of TEAM after update U
    teams.csv              one row per update: step, the :data:`STATISTICS`, each team's return
                           against the scripted team, losses
    tb/                    TensorBoard logs
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from tqdm import tqdm

from rlgan.agents.ppo import TeamNetwork
from rlgan.agents.selfplay import (SelfPlay, SelfPlayConfig, parse_teams, pool_files,
                                   saved_config)
from rlgan.agents.team_play import team_network
from rlgan.agents.team_stats import STATISTICS
from rlgan.agents.training import Run
from rlgan.config import build_config, check_choice
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.team_env import TeamVectorEnv
from rlgan.io import DirectoryLock, atomic_path, atomic_write, write_json
from rlgan.make import resolve_env_id
from rlgan.weights import load_weights

ALGO = "ppo"
ENV_ID = "rlgan/HideAndSeek-v0"
LOG_FIELDS = ("update", "step", "wall_seconds", *STATISTICS, "hider_vs_scripted", "seeker_vs_scripted",
              "hider_entropy", "seeker_entropy", "hider_value_loss", "seeker_value_loss")


@dataclass
class TeamRunConfig:
    """What a self-play run trains; saved as ``config.json`` and checked on resume."""

    teams: list[str]
    steps: int
    env_id: str = ENV_ID
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hp_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.teams = parse_teams(self.teams)
        self.env_id = resolve_env_id(self.env_id)
        if self.env_id != ENV_ID:
            raise ValueError(f"teams train on {ENV_ID} only, got {self.env_id}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def saved(self) -> dict[str, Any]:
        """The ``config.json`` of a new run (options checked by building the env)."""
        from rlgan.agents.hyperparams import hyperparameters

        settings = hyperparameters(ALGO, self.env_id, self.hp_overrides)
        env_kwargs = {**settings.pop("env_kwargs", {}), **self.env_kwargs}
        hp = asdict(build_config(SelfPlayConfig, settings))
        env = TeamVectorEnv(1, **env_kwargs)
        return {"algo": ALGO, "env_id": self.env_id, "env_kwargs": env_kwargs,
                "teams": self.teams, "steps": self.steps, "seed": self.seed,
                "hyperparameters": hp, "spaces": spaces_of(env)}


def spaces_of(env: TeamVectorEnv) -> dict[str, Any]:
    """Grid size, team sizes and spaces of ``env``, to check a resumed run against."""
    config = env.config
    return {"size": config.size, "n_hiders": config.n_hiders, "n_seekers": config.n_seekers,
            "observation_space": str(env.single_observation_space),
            "action_space": str(env.single_action_space)}


def load_snapshot(run_dir: str | Path, team: str, update: int | None = None) -> TeamNetwork:
    """``team``'s network of a self-play run: the pool snapshot after ``update``, or the
    latest checkpoint's (``None``).

    Raises:
        ValueError / FileNotFoundError: not a self-play run, an unknown team, no such snapshot,
            or a snapshot file that is corrupt or made for another network.
    """
    run = Run(run_dir)
    saved = read_team_run(run)
    check_choice("team", team, saved["teams"])
    hp = saved_config(saved)
    network = team_network(TeamVectorEnv(1, **saved["env_kwargs"]), hp.hidden, hp.memory,
                           hp.encoder)
    path = run.last_checkpoint() / f"{team}.safetensors" if update is None else \
        run.directory / "pool" / f"{team}_{update:06d}.safetensors"
    load_weights(network, path)
    return network.eval()


def read_team_run(run: Run) -> dict[str, Any]:
    """The ``config.json`` of a self-play run.

    Raises:
        ValueError: the directory holds a run of another kind.
    """
    saved = run.config()
    if saved["algo"] != ALGO or "teams" not in saved:
        raise ValueError(f"{run.directory} is a {saved['algo']} run, not a self-play run of "
                         "rlgan train --teams")
    return saved


# -- the run ---------------------------------------------------------------------------------
def train_teams(run_dir: str | Path, config: TeamRunConfig | None = None, resume: bool = False,
                steps: int | None = None, progress: bool = True, stop_at: int | None = None,
                teams: str | list[str] | None = None,
                env_kwargs: dict[str, Any] | None = None) -> dict[str, float]:
    """Train (or, with ``resume``, continue) the self-play run in ``run_dir``; returns the
    last update's statistics.

    ``steps`` raises a resumed run's budget; ``teams`` and ``env_kwargs``, the options a
    resuming user gave, must agree with the saved run's; ``stop_at`` stops after the first checkpoint at or past
    that step, as an interruption would.

    Raises:
        FileExistsError: a new run in a directory that already holds one.
        ValueError: resuming with other teams, grid size or team sizes (nothing is written).
        rlgan.io.DirectoryBusyError: another process is writing ``run_dir``.
    """
    with DirectoryLock(run_dir):
        run = Run(run_dir)
        saved = _settings(run, config, resume, steps)
        if resume:
            check_resume(saved, teams, env_kwargs or {})
        trainer = SelfPlay(saved)
        if resume and run.has_checkpoint():
            trainer.load(run.last_checkpoint(), run.directory / "pool")
        _trim_to(run, trainer.update)
        write_json(run.directory / "config.json", saved)
        return _loop(run, trainer, progress, stop_at)


def check_resume(saved: dict[str, Any], teams: str | list[str] | None,
                 env_kwargs: dict[str, Any]) -> None:
    """Refuse to resume a run with teams or env options other than its own.

    Raises:
        ValueError: names the option, the run's value and the one given.
    """
    if teams is not None and parse_teams(teams) != saved["teams"]:
        raise ValueError(f"run was trained with teams {','.join(saved['teams'])}, not "
                         f"{','.join(parse_teams(teams))}; resume it with its own teams or "
                         "choose another --run")
    trained = build_config(HideAndSeekConfig, saved["env_kwargs"])
    build_config(HideAndSeekConfig, env_kwargs)  # unknown or bad options are named first
    for key, value in env_kwargs.items():
        if getattr(trained, key) != value:
            raise ValueError(f"run was trained with {key}={getattr(trained, key)!r}, not "
                             f"{value!r}; resume it with its own options or choose another --run")


def _settings(run: Run, config: TeamRunConfig | None, resume: bool,
              steps: int | None) -> dict[str, Any]:
    if resume:
        saved = read_team_run(run)
        saved["steps"] = max(saved["steps"], steps or 0)
        return saved
    if config is None:
        raise ValueError("a new self-play run needs a TeamRunConfig")
    run.check_new()
    return config.saved()


def read_log(run_dir: str | Path) -> list[dict[str, float]]:
    """Rows of a self-play run's ``teams.csv`` (NaN for the losses of a team that does not
    learn)."""
    path = Path(run_dir) / "teams.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return [{k: float(v) if v else math.nan for k, v in row.items()}
                for row in csv.DictReader(file)]


def _write_log(run: Run, rows: list[dict[str, float]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=LOG_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(run.directory / "teams.csv", write)


def _trim_to(run: Run, update: int) -> None:
    """Drop the log rows and pool snapshots made after ``update`` (a resumed run makes them
    again)."""
    rows = read_log(run.directory)
    if any(row["update"] > update for row in rows):
        _write_log(run, [row for row in rows if row["update"] <= update])
    for _, snapshot_update, path in pool_files(run.directory / "pool"):
        if snapshot_update > update:
            path.unlink()


def _loop(run: Run, trainer: SelfPlay, progress: bool, stop_at: int | None) -> dict[str, float]:
    from torch.utils.tensorboard import SummaryWriter

    hp, saved = trainer.hp, trainer.saved
    total_updates = math.ceil(saved["steps"] / trainer.steps_per_update)
    writer = SummaryWriter(str(run.directory / "tb"), purge_step=trainer.steps)
    rows = read_log(run.directory)
    started = time.perf_counter() - (rows[-1]["wall_seconds"] if rows else 0.0)
    bar = tqdm(total=total_updates * trainer.steps_per_update, initial=trainer.steps,
               desc=f"ppo {'+'.join(trainer.teams)}", unit="step", disable=not progress)
    row: dict[str, float] = {}
    while trainer.update < total_updates:
        samples, statistics = trainer.rollout()
        logs = trainer.learn(samples)
        trainer.update += 1
        row = {"update": trainer.update, "step": trainer.steps,
               "wall_seconds": time.perf_counter() - started, **statistics, **logs}
        rows.append(row)
        for key, value in row.items():
            if key not in ("update", "step"):
                writer.add_scalar(f"teams/{key}", value, trainer.steps)
        bar.update(trainer.steps_per_update)
        bar.set_postfix(hider_return=f"{statistics['hider_return']:.1f}")
        if trainer.update % hp.snapshot_every == 0:
            _save_snapshots(run, trainer)
        last = trainer.update == total_updates
        if trainer.update % hp.checkpoint_every == 0 or last:
            _write_log(run, rows)
            run.commit_checkpoint(trainer.steps, trainer.save)
            if stop_at is not None and trainer.steps >= stop_at:
                break
    bar.close()
    writer.close()
    return row


def _save_snapshots(run: Run, trainer: SelfPlay) -> None:
    trainer.snapshot()
    for team in trainer.teams:
        path = run.directory / "pool" / f"{team}_{trainer.update:06d}.safetensors"
        with atomic_path(path) as tmp:
            save_file(trainer.networks[team].state_dict(), str(tmp))
