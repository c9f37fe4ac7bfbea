"""Training runs: one directory per run, with checkpoints, logs, evaluations and exact resume.

Layout of ``--run DIR``::

    config.json             algorithm, env id and options, seed, steps, hyperparameters, spaces
    checkpoints/last.json   points at the latest complete checkpoint (updated atomically)
    checkpoints/step_N/     one checkpoint (see agents.checkpoint / QLearningAgent.save)
    best/                   a copy of the checkpoint with the best evaluation return
    evaluations.csv         step, mean_return, std_return, mean_length, unsafe_per_1000, ...
    tb/                     TensorBoard logs

Every file is written to a temporary name and renamed, and ``best/`` is swapped in by renames,
so a run killed at any moment resumes (``resume=True``) from its latest checkpoint, or from
the start when it had none; evaluations after that checkpoint are dropped and measured again.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from rlgan.agents.evaluation import Act, evaluate_agent
from rlgan.agents.hyperparams import hyperparameters
from rlgan.device import resolve_device
from rlgan.io import DirectoryLock, atomic_write, read_json, write_json, written_entries
from rlgan.make import make_env, resolve_env_id
from rlgan.weights import load_weights

#: Keys every run's ``config.json`` holds.
RUN_KEYS = ["algo", "env_id", "env_kwargs", "steps", "seed", "hyperparameters", "spaces"]
EVALUATION_FIELDS = ("step", "mean_return", "std_return", "mean_length", "unsafe_per_1000",
                     "episodes", "wall_seconds")


@dataclass
class AgentConfig:
    """What a run trains; saved as ``config.json`` and checked on resume."""

    algo: str
    env_id: str
    steps: int
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hp_overrides: dict[str, Any] = field(default_factory=dict)
    eval_freq: int = 10_000
    eval_episodes: int = 5
    device: str = "auto"
    n_envs: int | None = None

    def __post_init__(self) -> None:
        self.env_id = resolve_env_id(self.env_id)
        if self.steps < 1 or self.eval_freq < 1 or self.eval_episodes < 1 or (
                self.n_envs is not None and self.n_envs < 1):
            raise ValueError("steps, eval_freq, eval_episodes and n_envs must be >= 1")
        if self.algo == "qlearning" and self.n_envs not in (None, 1):
            raise ValueError("Q-learning trains on one env; use n_envs=1")

    def settings(self) -> dict[str, Any]:
        """Hyperparameters (tuned for the env, with the overrides), env options (``env_kwargs``
        for training and evaluation, ``train_env_kwargs`` for training only) and the number of
        training envs (``n_envs``, else the tuned one, else 1)."""
        settings = hyperparameters(self.algo, self.env_id, self.hp_overrides)
        env_kwargs = {**settings.pop("env_kwargs", {}), **self.env_kwargs}
        train_env_kwargs = {key: value for key, value in settings.pop("train_env_kwargs", {}).items()
                            if key not in self.env_kwargs}
        tuned_n_envs = settings.pop("n_envs", 1)
        n_envs = tuned_n_envs if self.n_envs is None else self.n_envs
        return {"hyperparameters": settings, "env_kwargs": env_kwargs,
                "train_env_kwargs": train_env_kwargs, "n_envs": n_envs}


def space_description(env: gymnasium.Env) -> dict[str, str]:
    """Observation and action spaces as text, to check checkpoints against envs."""
    return {"observation_space": str(env.observation_space), "action_space": str(env.action_space)}


class Run:
    """A training run in ``directory`` (create it, or open it to resume or evaluate)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints"

    def config(self) -> dict[str, Any]:
        """The saved ``config.json``.

        Raises:
            FileNotFoundError / ValueError: not a run directory, or a corrupt one.
        """
        config = read_json(self.directory / "config.json", what="run config")
        missing = sorted(set(RUN_KEYS) - set(config)) if isinstance(config, dict) else RUN_KEYS
        if missing:
            raise ValueError(f"{self.directory} is not a run of rlgan train (its config.json "
                             f"lacks {', '.join(missing)})")
        return config

    def check_new(self) -> None:
        """Make sure a new run may start here.

        Raises:
            FileExistsError: the directory already holds a run, or anything else.
        """
        if (self.directory / "config.json").exists():
            raise FileExistsError(f"{self.directory} already holds a run; pass --resume to "
                                  "continue it or choose another --run")
        if written_entries(self.directory):
            raise FileExistsError(f"{self.directory} is not empty and holds no run; choose an "
                                  "empty or new --run")

    def has_checkpoint(self) -> bool:
        """Whether a checkpoint was committed (a run killed before its first has none)."""
        return (self.checkpoints / "last.json").is_file()

    def last_checkpoint(self) -> Path:
        """Directory of the latest complete checkpoint."""
        pointer = read_json(self.checkpoints / "last.json", what="checkpoint pointer")
        path = self.checkpoints / pointer["checkpoint"]
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint {path} named in last.json is missing")
        return path

    def commit_checkpoint(self, step: int, save: Any) -> Path:
        """Write a checkpoint with ``save(directory)``, then point ``last.json`` at it and delete
        the older ones, so a crash at any moment leaves a complete latest checkpoint."""
        path = self.checkpoints / f"step_{step:09d}"
        if path.exists():
            shutil.rmtree(path)
        save(path)
        write_json(self.checkpoints / "last.json", {"checkpoint": path.name, "step": step})
        for old in self.checkpoints.glob("step_*"):
            if old != path:
                shutil.rmtree(old)
        return path

    def evaluations(self) -> list[dict[str, float]]:
        """Rows of ``evaluations.csv``."""
        path = self.directory / "evaluations.csv"
        if not path.exists():
            return []
        with open(path, newline="") as file:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]

    def write_evaluations(self, rows: list[dict[str, float]]) -> None:
        """Replace ``evaluations.csv`` by ``rows`` atomically."""

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=EVALUATION_FIELDS)
                writer.writeheader()
                writer.writerows({k: row[k] for k in EVALUATION_FIELDS} for row in rows)

        atomic_write(self.directory / "evaluations.csv", write)

    def append_evaluation(self, row: dict[str, float]) -> None:
        self.write_evaluations([*self.evaluations(), row])

    def best_return(self) -> float:
        """Mean return of ``best/`` (-inf before the first evaluation)."""
        path = self.directory / "best" / "evaluation.json"
        return float(read_json(path, "best evaluation")["mean_return"]) if path.is_file() else -np.inf

    def resume_evaluations(self, step: int) -> None:
        """Make the evaluations agree with the checkpoint at ``step`` a resumed run starts from:
        drop those made after it, and keep it as ``best/`` when its evaluation is the best and
        an interruption came before ``best/`` was updated."""
        rows = [row for row in self.evaluations() if row["step"] <= step]
        self.write_evaluations(rows)
        if rows and rows[-1]["step"] == step and rows[-1]["mean_return"] > self.best_return():
            self.keep_best(self.last_checkpoint(), rows[-1])

    def keep_best(self, checkpoint: Path, evaluation: dict[str, float]) -> None:
        """Make ``best/`` a copy of ``checkpoint`` with its ``evaluation.json``: copied beside it,
        then swapped in by renames (between the two, ``best/`` is missing and readers take the
        last checkpoint)."""
        best, tmp, old = (self.directory / name for name in ("best", ".best.tmp", ".best.old"))
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
        shutil.copytree(checkpoint, tmp)
        write_json(tmp / "evaluation.json", evaluation)
        if best.exists():
            os.replace(best, old)
        os.replace(tmp, best)
        if old.exists():
            shutil.rmtree(old)


def training_env_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """Env options of a run's training env: its ``env_kwargs`` and ``train_env_kwargs``."""
    return {**config["env_kwargs"], **config.get("train_env_kwargs", {})}


def build_agent(config: dict[str, Any], env: gymnasium.Env, device: str) -> Any:
    """A fresh agent for a saved run config: Q-learning on ``env``, or DQN on ``env`` in SB3's
    ``DummyVecEnv`` (``n_envs`` 1) or on ``n_envs`` copies, batched where the env has a
    vector form (:mod:`rlgan.agents.vec_adapter`)."""
    hp = dict(config["hyperparameters"])
    if config["algo"] == "qlearning":
        from rlgan.agents.qlearning import QLearningAgent

        return QLearningAgent(env, seed=config["seed"], **hp)
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlgan.agents.dqn import DQN

    policy = hp.pop("policy")
    if config.get("n_envs", 1) > 1:
        from rlgan.agents.vec_adapter import make_sb3_vec_env

        vec_env = make_sb3_vec_env(config["env_id"], config["n_envs"], seed=config["seed"],
                                   **training_env_kwargs(config))
    else:
        vec_env = DummyVecEnv([lambda: Monitor(env)])
        vec_env.seed(config["seed"])
    return DQN(policy, vec_env, seed=config["seed"], device=device, verbose=0, **hp)


def save_agent(agent: Any, algo: str, directory: Path) -> None:
    if algo == "qlearning":
        agent.save(directory)
    else:
        from rlgan.agents.checkpoint import save_dqn

        save_dqn(agent, directory)


def load_agent_into(agent: Any, algo: str, directory: Path) -> None:
    if algo == "qlearning":
        agent.load(directory)
    else:
        from rlgan.agents.checkpoint import load_dqn

        load_dqn(agent, directory)


def acting(agent: Any, algo: str) -> Act:
    """``act(observation, env)`` of a trained agent, greedy."""
    if algo == "qlearning":
        return lambda observation, env: agent.predict(observation, env=env)[0]
    return lambda observation, env: int(agent.predict(observation, deterministic=True)[0])


class WholeRun(BaseCallback):
    """Keep SB3's schedules on the whole run while learning in chunks; tick the progress bar."""

    def __init__(self, total: int, bar: tqdm) -> None:
        super().__init__()
        self.total, self.bar = total, bar

    def _on_training_start(self) -> None:
        self.model._total_timesteps = self.total

    def _on_step(self) -> bool:
        self.bar.update(self.model.n_envs)
        return True


def train(run_dir: str | Path, config: AgentConfig | None = None, resume: bool = False,
          steps: int | None = None, progress: bool = True,
          stop_at: int | None = None) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) the run in ``run_dir``; return the last evaluation.

    ``steps`` raises a resumed run's total step budget; ``stop_at`` stops after the first
    checkpoint at or past that step, as an interruption would (the schedules still plan for
    the whole budget).

    Raises:
        FileExistsError: starting a new run in a directory that already holds one.
        ValueError: resuming with a checkpoint that does not fit (nothing is overwritten).
        rlgan.io.DirectoryBusyError: another process is writing ``run_dir``.
    """
    with DirectoryLock(run_dir):
        return _train(Run(run_dir), config, resume, steps, progress, stop_at)


def _train(run: Run, config: AgentConfig | None, resume: bool, steps: int | None, progress: bool,
           stop_at: int | None) -> dict[str, Any]:
    saved = _run_settings(run, config, resume, steps)
    env = make_env(saved["env_id"], **training_env_kwargs(saved))
    eval_env = make_env(saved["env_id"], **saved["env_kwargs"])
    device = resolve_device(saved["device"]) if saved["algo"] == "dqn" else "cpu"
    spaces = space_description(env)
    if resume and saved.get("spaces") != spaces:
        raise ValueError(f"run {run.directory} was trained on {saved.get('spaces')}, the env now "
                         f"gives {spaces}")
    saved["spaces"] = spaces
    agent = build_agent(saved, env, str(device))
    if resume and run.has_checkpoint():
        load_agent_into(agent, saved["algo"], run.last_checkpoint())
    if resume:
        run.resume_evaluations(agent.num_timesteps)
    write_json(run.directory / "config.json", saved)
    print(f"training {saved['algo']} on {saved['env_id']} on device {device}"
          + (f", resuming at step {agent.num_timesteps}" if resume else ""))
    return _learn(run, saved, agent, eval_env, progress, stop_at)


def _run_settings(run: Run, config: AgentConfig | None, resume: bool, steps: int | None) -> dict[str, Any]:
    """The run's settings: the saved ones on resume (``steps`` may raise the budget), else
    ``config``'s, refusing a directory that already holds a run or anything else."""
    if resume:
        saved = run.config()
        saved["steps"] = max(saved["steps"], steps or 0)
        return saved
    if config is None:
        raise ValueError("a new run needs a AgentConfig")
    run.check_new()
    return {**asdict(config), **config.settings()}


def _learn(run: Run, saved: dict[str, Any], agent: Any, eval_env: gymnasium.Env, progress: bool,
           stop_at: int | None) -> dict[str, Any]:
    """Learn in chunks of ``eval_freq`` steps up to the budget (or the first checkpoint at or
    past ``stop_at``); after each, evaluate, log, checkpoint and keep the best. Returns the
    last evaluation (without its frames)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run.directory / "tb"))
    if saved["algo"] == "dqn":
        from stable_baselines3.common.logger import configure

        agent.set_logger(configure(str(run.directory / "tb"), ["tensorboard"]))
    best = run.best_return()
    start, total = agent.num_timesteps, saved["steps"]
    bar = tqdm(total=total, initial=start, desc=f"{saved['algo']} {saved['env_id']}", unit="step",
               disable=not progress)
    started = time.perf_counter()
    result: dict[str, Any] = {}
    while agent.num_timesteps < min(total, stop_at or total):
        chunk = min(saved["eval_freq"] - agent.num_timesteps % saved["eval_freq"],
                    total - agent.num_timesteps)
        if saved["algo"] == "qlearning":
            agent.learn(chunk, total_planned=total, callback=lambda agent, info: bar.update(1))
        else:
            agent.learn(chunk, reset_num_timesteps=False, callback=WholeRun(total, bar))
        bar.update(agent.num_timesteps - bar.n)
        result, best = _evaluate_and_keep(run, saved, agent, eval_env, writer, started, best)
        bar.set_postfix(eval_return=f"{result['mean_return']:.2f}")
    bar.close()
    writer.close()
    return {k: v for k, v in result.items() if k != "frames"}


def _evaluate_and_keep(run: Run, saved: dict[str, Any], agent: Any, eval_env: gymnasium.Env,
                       writer: Any, started: float, best: float) -> tuple[dict[str, Any], float]:
    """Evaluate the agent, log and append the evaluation, commit a checkpoint and make it
    ``best/`` when its mean return beats ``best``; returns the evaluation and the best return."""
    result = evaluate_agent(acting(agent, saved["algo"]), eval_env, saved["eval_episodes"],
                            seed=10_000 + saved["seed"])
    row = {"step": agent.num_timesteps, **{k: result[k] for k in EVALUATION_FIELDS[1:-1]},
           "wall_seconds": time.perf_counter() - started}
    run.append_evaluation(row)
    for key in ("mean_return", "mean_length", "unsafe_per_1000"):
        writer.add_scalar(f"eval/{key}", result[key], agent.num_timesteps)
    last = run.commit_checkpoint(agent.num_timesteps, lambda d: save_agent(agent, saved["algo"], d))
    if result["mean_return"] > best:
        best = result["mean_return"]
        run.keep_best(last, row)
    return result, best


def load_inference_agent(run_dir: str | Path, env: gymnasium.Env | None = None,
                         which: str = "best") -> tuple[Any, dict[str, Any]]:
    """A run's ``best`` (or ``last``) agent for acting only: the Q-table, or the DQN's network
    weights without its replay buffer and optimizer. Returns ``(agent, config)``.

    Raises:
        ValueError / FileNotFoundError: not a run, a corrupt checkpoint, or an env whose spaces
            differ from the run's.
    """
    run = Run(run_dir)
    config = run.config()
    env = env or make_env(config["env_id"], **config["env_kwargs"])
    if space_description(env) != config["spaces"]:
        raise ValueError(f"run {run.directory} was trained on {config['spaces']}, this env has "
                         f"{space_description(env)}")
    directory = run.directory / "best" if which == "best" and (run.directory / "best").is_dir() \
        else run.last_checkpoint()
    if config["algo"] == "qlearning":
        agent = build_agent(config, env, "cpu")
        agent.load(directory)
        return agent, config
    inference = {**config, "n_envs": 1, "hyperparameters": {**config["hyperparameters"], "buffer_size": 1,
                                               "learning_starts": 0}}
    agent = build_agent(inference, env, str(resolve_device(config.get("device", "auto"))))
    load_weights(agent.policy, directory / "policy.safetensors")
    agent.policy.set_training_mode(False)
    return agent, config


def load_trained(run_dir: str | Path, which: str = "best", env: gymnasium.Env | None = None) -> tuple[Act, dict[str, Any]]:
    """A run's ``best`` (or ``last``) agent as a greedy ``act(observation, env)``; returns
    ``(act, config)`` (see :func:`load_inference_agent`)."""
    agent, config = load_inference_agent(run_dir, env, which)
    return acting(agent, config["algo"]), config
