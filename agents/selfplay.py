"""Both hide-and-seek teams learning at once: PPO with one shared network per team, self-play
against a pool of earlier snapshots, on the batched game (:class:`TeamVectorEnv`).

Each update plays one whole episode on every one of ``num_grids`` grids. On a grid, each
learning team plays its latest network, except that with probability ``scripted_prob`` one
of the two teams (drawn at random) plays the scripted policy, and otherwise with probability
``1 - latest_prob`` one of them plays a snapshot drawn uniformly from its pool, so that
neither team overfits the other's latest policy and both keep meeting scripted play (a
league); a team learns only from the grids where it is its latest self. A team not in
``teams`` plays the scripted policy everywhere. Snapshots join the pool every
``snapshot_every`` updates.

With ``teacher_coef`` each learning team is kickstarted (Schmitt et al. 2018): its loss adds
the cross-entropy of its policy to the action the scripted policy would take in the same
state, with a weight that falls linearly from ``teacher_coef`` to 0 over the first
``teacher_updates`` updates; afterwards the teams learn from the reward alone.

With ``memory`` the team networks are recurrent (a GRU, as in Baker et al. 2019): an
agent's memory starts empty with its episode and the PPO minibatches are whole episodes.

Everything random in update ``u`` (layouts, pool draws, actions, minibatches) is drawn from
generators seeded by ``(seed, u)``, so a run resumed from a checkpoint repeats exactly what
the uninterrupted run did.

The run directory, checkpoints and the training loop are in :mod:`rlgan.agents.team_run`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from rlgan.agents.ppo import advantages, ppo_loss, sample_actions
from rlgan.agents.team_play import ENCODERS, choose_actions, team_network
from rlgan.agents.team_stats import episode_statistics
from rlgan.config import check_choice
from rlgan.envs.hide_and_seek.scripted import scripted_actions
from rlgan.envs.hide_and_seek.team_env import TEAMS, TeamVectorEnv
from rlgan.io import atomic_path, read_json, write_json
from rlgan.weights import load_weights


@dataclass(frozen=True)
class SelfPlayConfig:
    """Hyperparameters of self-play PPO (``--hp`` on the command line).

    Attributes:
        num_grids: games per update (each one whole episode).
        learning_rate: Adam step size.
        gamma, gae_lambda: discount and GAE parameter.
        clip: PPO's ratio clip.
        epochs, minibatches: passes over each update's samples, minibatches per pass.
        entropy_coef, value_coef: weights of the entropy bonus and the value loss.
        max_grad_norm: gradient-norm clip.
        reward_scale: rewards are multiplied by this for learning (returns near 1).
        hidden: width of the networks' encoder output (and of the GRU's state).
        memory: recurrent team networks (a GRU after the encoder).
        bptt: with ``memory``, the length of the sequences PPO learns on (truncated
            backpropagation through time): episodes are cut into pieces of ``bptt`` steps,
            each starting from the memory its agent had there in the rollout, and the
            minibatches draw pieces. 0: whole episodes.
        encoder: ``"conv"`` (convolutions over the observation's planes) or ``"mlp"``.
        latest_prob: probability that a grid without a scripted team pits both latest
            networks against each other.
        scripted_prob: probability that one team (drawn at random) plays the scripted policy
            on a grid, when both teams learn.
        teacher_coef: initial weight of the kickstarting loss (imitating the scripted policy).
        teacher_updates: updates over which that weight falls to 0.
        snapshot_every: updates between snapshots joining the pool.
        checkpoint_every: updates between checkpoints.
    """

    num_grids: int = 256
    learning_rate: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    epochs: int = 4
    minibatches: int = 16
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 0.1
    hidden: int = 128
    memory: bool = True
    bptt: int = 10
    encoder: str = "conv"
    latest_prob: float = 0.5
    scripted_prob: float = 0.3
    teacher_coef: float = 1.0
    teacher_updates: int = 60
    snapshot_every: int = 10
    checkpoint_every: int = 10

    def __post_init__(self) -> None:
        for name in ("num_grids", "epochs", "minibatches", "hidden", "snapshot_every",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_choice("encoder", self.encoder, ENCODERS)
        if self.bptt < 0:
            raise ValueError(f"bptt must be >= 0 (0: whole episodes), got {self.bptt}")
        if self.teacher_coef < 0 or self.teacher_updates < 0:
            raise ValueError(f"teacher_coef and teacher_updates must be >= 0, got "
                             f"{self.teacher_coef} and {self.teacher_updates}")
        if not 0.0 <= self.latest_prob <= 1.0:
            raise ValueError(f"latest_prob must be in [0, 1], got {self.latest_prob}")
        if not 0.0 <= self.scripted_prob < 1.0:
            raise ValueError(f"scripted_prob must be in [0, 1) (some grids pit the learning "
                             f"teams against each other), got {self.scripted_prob}")


#: The settings of runs saved before an option existed: such a run keeps training (and loads)
#: as it was made.
LEGACY_HYPERPARAMETERS = {"memory": False, "bptt": 0, "encoder": "mlp", "scripted_prob": 0.0,
                          "teacher_coef": 0.0, "teacher_updates": 0}

#: What a team plays on a grid: its latest network, a pool snapshot, or the scripted policy.
LATEST, SNAPSHOT, SCRIPTED = 0, 1, 2


def saved_config(saved: dict[str, Any]) -> SelfPlayConfig:
    """The :class:`SelfPlayConfig` of a run's ``config.json`` (older runs: the options they
    predate take :data:`LEGACY_HYPERPARAMETERS`)."""
    return SelfPlayConfig(**{**LEGACY_HYPERPARAMETERS, **saved["hyperparameters"]})


def parse_teams(teams: str | list[str]) -> list[str]:
    """The learning teams from ``"hider,seeker"`` (or a list), in :data:`TEAMS` order.

    Raises:
        ValueError: an unknown or repeated team, or none.
    """
    names = [name.strip() for name in teams.split(",")] if isinstance(teams, str) else list(teams)
    for name in names:
        check_choice("team", name, TEAMS)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"teams must name each of {', '.join(TEAMS)} at most once, got {names}")
    return [team for team in TEAMS if team in names]


class SelfPlay:
    """The state of a self-play run: networks, optimizers, pools and the update counter."""

    def __init__(self, saved: dict[str, Any]) -> None:
        self.saved = saved
        self.hp = saved_config(saved)
        self.env = TeamVectorEnv(self.hp.num_grids, **saved["env_kwargs"])
        self.teams = saved["teams"]
        with torch.random.fork_rng():  # initial weights from the run's seed alone
            torch.manual_seed(saved["seed"])
            self.networks = {team: team_network(self.env, self.hp.hidden, self.hp.memory,
                                                self.hp.encoder)
                             for team in TEAMS}
        self.optimizers = {team: torch.optim.Adam(self.networks[team].parameters(),
                                                  lr=self.hp.learning_rate, eps=1e-5)
                           for team in self.teams}
        self.pool: dict[str, list[tuple[int, dict[str, torch.Tensor]]]] = {t: [] for t in TEAMS}
        self.update = 0

    @property
    def steps_per_update(self) -> int:
        """Grid steps (every agent acting once) per update."""
        return self.hp.num_grids * self.env.config.max_steps

    @property
    def steps(self) -> int:
        return self.update * self.steps_per_update

    @property
    def teacher_weight(self) -> float:
        """The weight of the kickstarting loss in update ``self.update`` (0 once it ends)."""
        if self.update >= self.hp.teacher_updates:
            return 0.0
        return self.hp.teacher_coef * (1.0 - self.update / self.hp.teacher_updates)

    def _seeds(self) -> tuple[np.random.Generator, torch.Generator]:
        rng = np.random.default_rng([self.saved["seed"], self.update])
        return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))

    def _opponents(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Per team, (N,) what it plays on each grid (:data:`LATEST`, :data:`SNAPSHOT` or
        :data:`SCRIPTED`), and the snapshot network of the teams that play one."""
        grids = self.hp.num_grids
        old = rng.random(grids) >= self.hp.latest_prob
        which = rng.integers(2, size=grids)
        league = np.random.default_rng([self.saved["seed"], self.update, 1])
        scripted = league.random(grids) < self.hp.scripted_prob
        scripted_team = league.integers(2, size=grids)
        roles, players = {}, {}
        for index, team in enumerate(TEAMS):
            role = np.full(grids, LATEST if team in self.teams else SCRIPTED)
            if len(self.teams) == 2:
                if self.pool[team]:
                    role[old & ~scripted & (which == index)] = SNAPSHOT
                role[scripted & (scripted_team == index)] = SCRIPTED
            roles[team] = role
            if (role == SNAPSHOT).any():
                pool = self.pool[team]
                snapshot = team_network(self.env, self.hp.hidden, self.hp.memory,
                                        self.hp.encoder)
                snapshot.load_state_dict(pool[int(rng.integers(len(pool)))][1])
                players[team] = snapshot
        return roles, players

    def rollout(self) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
        """Play update ``self.update``'s episodes; return each learning team's samples
        ((T, M) tensors, M agents of the grids where the team plays its latest network:
        observations (T, M, D), actions, log_probs, values, rewards; with memory, states
        (T, M, hidden), the memory before each step; while kickstarting, teacher, the scripted
        policy's actions) and the statistics of the
        games between latest networks (or against scripted teams), with each learning team's
        return against the scripted team (``TEAM_vs_scripted``, NaN without such grids)."""
        rng, generator = self._seeds()
        roles, snapshots = self._opponents(rng)
        env, grids = self.env, np.arange(self.hp.num_grids)
        observations = env.reset(seed=int(rng.integers(2**31)))
        latest = {team: grids[roles[team] == LATEST] for team in TEAMS}
        samples = {team: {key: [] for key in ("observations", "actions", "log_probs", "values",
                                              "rewards")} for team in self.teams}
        memory: dict[str, torch.Tensor | None] = {team: None for team in self.teams}
        snapshot_memory: dict[str, torch.Tensor | None] = {team: None for team in TEAMS}
        teaching = self.teacher_weight > 0
        any_scripted = teaching or any((role == SCRIPTED).any() for role in roles.values())
        trace, rewards_seen = [], []
        for _ in range(env.config.max_steps):
            scripted = scripted_actions(env.grid) if any_scripted else None
            actions = np.zeros((self.hp.num_grids, env.n_agents), dtype=np.int64)
            for team in TEAMS:
                if team in self.teams:
                    agents, mine = env.team_agents[team], latest[team]
                    flat = torch.from_numpy(
                        observations[team][mine].reshape(-1, env.observation_size))
                    if self.hp.memory:
                        samples[team].setdefault("states", []).append(
                            torch.zeros(len(flat), self.hp.hidden) if memory[team] is None
                            else memory[team][0])
                    chosen, log_probs, values, memory[team] = sample_actions(
                        self.networks[team], flat, generator, memory[team])
                    actions[np.ix_(mine, agents)] = chosen.numpy().reshape(len(mine), len(agents))
                    for key, value in (("observations", flat), ("actions", chosen),
                                       ("log_probs", log_probs), ("values", values)):
                        samples[team][key].append(value)
                    if teaching:
                        samples[team].setdefault("teacher", []).append(
                            torch.from_numpy(scripted[np.ix_(mine, agents)].reshape(-1)))
                snapshot_memory[team] = choose_actions(
                    env, team, snapshots.get(team, "scripted"), observations[team],
                    grids[roles[team] == SNAPSHOT], actions, generator, rng, scripted,
                    snapshot_memory[team])
                choose_actions(env, team, "scripted", observations[team],
                               grids[roles[team] == SCRIPTED], actions, generator, rng, scripted)
            observations, rewards, _, info = env.step(actions)
            for team in self.teams:
                team_rewards = rewards[np.ix_(latest[team], env.team_agents[team])].reshape(-1)
                samples[team]["rewards"].append(torch.from_numpy(team_rewards).float())
            trace.append(info)
            rewards_seen.append(rewards)
        stacked = {key: np.stack([info[key] for info in trace]) for key in trace[0]}
        all_rewards = np.stack(rewards_seen)
        main = np.logical_and.reduce([roles[team] == (LATEST if team in self.teams else SCRIPTED)
                                      for team in TEAMS])  # no snapshot, no scripted stand-in
        statistics = episode_statistics(stacked, all_rewards, env.config.n_hiders, main)
        returns = all_rewards.sum(axis=0)  # (N, n_agents)
        for index, team in enumerate(TEAMS):
            against = (roles[team] == LATEST) & (roles[TEAMS[1 - index]] == SCRIPTED)
            first = env.team_agents[team][0]
            statistics[f"{team}_vs_scripted"] = float(returns[against, first].mean()) \
                if team in self.teams and against.any() else math.nan
        tensors = {team: {key: torch.stack(values) for key, values in team_samples.items()}
                   for team, team_samples in samples.items()}
        return tensors, statistics

    def learn(self, samples: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
        """One PPO update of each learning team on its samples; returns the mean entropy and
        value loss per team."""
        _, generator = self._seeds()
        logs = {}
        hp = self.hp
        for team in self.teams:
            data, network = samples[team], self.networks[team]
            with torch.no_grad():
                advantage = advantages(data["rewards"] * hp.reward_scale, data["values"],
                                       hp.gamma, hp.gae_lambda)
            # Minibatches of pieces of episodes (bptt, m) for a recurrent network (whole
            # episodes (T, m) with bptt 0), else of single steps (1, m).
            episodes = {"observations": data["observations"], "actions": data["actions"],
                        "old_log_probs": data["log_probs"], "advantage": advantage,
                        "returns": advantage + data["values"]}
            if "teacher" in data:
                episodes["teacher_actions"] = data["teacher"]
            if network.memory is None:
                episodes = {k: v.reshape(1, -1, *v.shape[2:]) for k, v in episodes.items()}
            elif hp.bptt:
                episodes = sequences(episodes, data["states"], hp.bptt)
            count = episodes["actions"].shape[1]
            size = math.ceil(count / hp.minibatches)
            entropies, value_losses = [], []
            for _ in range(hp.epochs):
                order = torch.randperm(count, generator=generator)
                for start in range(0, count, size):
                    batch = order[start: start + size]
                    loss, terms = ppo_loss(network, **{k: v[:, batch] for k, v in episodes.items()},
                                           clip=hp.clip, value_coef=hp.value_coef,
                                           entropy_coef=hp.entropy_coef,
                                           teacher_coef=self.teacher_weight)
                    self.optimizers[team].zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(network.parameters(), hp.max_grad_norm)
                    self.optimizers[team].step()
                    entropies.append(terms.entropy)
                    value_losses.append(terms.value)
            logs[f"{team}_entropy"] = float(np.mean(entropies))
            logs[f"{team}_value_loss"] = float(np.mean(value_losses))
        return logs

    def snapshot(self) -> None:
        """Add the latest networks of the learning teams to their pools."""
        for team in self.teams:
            state = {k: v.clone() for k, v in self.networks[team].state_dict().items()}
            self.pool[team].append((self.update, state))

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the networks, optimizers and counters into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        for team in self.teams:
            with atomic_path(directory / f"{team}.safetensors") as tmp:
                save_file(self.networks[team].state_dict(), str(tmp))
            with atomic_path(directory / f"{team}_optimizer.pt") as tmp:
                torch.save(self.optimizers[team].state_dict(), tmp)
        write_json(directory / "progress.json", {"update": self.update, "steps": self.steps})

    def load(self, directory: Path, pool_directory: Path) -> None:
        """Restore what :meth:`save` wrote and the pool snapshots up to that update.

        Raises:
            FileNotFoundError: a missing network file (named).
            ValueError: a missing or corrupt checkpoint file, a corrupt network file, or one
                made for another network (named).
        """
        try:
            self.update = int(read_json(directory / "progress.json", "checkpoint progress")["update"])
            for team in self.teams:
                self.optimizers[team].load_state_dict(
                    torch.load(directory / f"{team}_optimizer.pt", weights_only=True))
        except (OSError, KeyError, RuntimeError) as error:
            raise ValueError(f"checkpoint {directory} is missing or corrupt: "
                             f"{str(error).splitlines()[0]}") from error
        for team in self.teams:
            load_weights(self.networks[team], directory / f"{team}.safetensors")
        for team, update, path in pool_files(pool_directory):
            if update <= self.update and team in self.teams:
                snapshot = team_network(self.env, self.hp.hidden, self.hp.memory, self.hp.encoder)
                load_weights(snapshot, path)
                self.pool[team].append((update, snapshot.state_dict()))


def sequences(episodes: dict[str, torch.Tensor], states: torch.Tensor,
              length: int) -> dict[str, torch.Tensor]:
    """Cut whole episodes into pieces for truncated backpropagation through time.

    Args:
        episodes: (T, M, ...) tensors of M agents' episodes of T steps.
        states: (T, M, hidden) each agent's memory before each step, as in the rollout.
        length: steps per piece; when it does not divide T, the last piece of each episode
            is padded at its end.

    Returns:
        The same keys as (length, M * P, ...) tensors, P = ceil(T / length) pieces per
        episode (piece ``p`` of agent ``m`` in column ``p * M + m``); ``"state"``:
        (1, M * P, hidden) the memory at each piece's first step; and, when padded,
        ``"valid"``: (length, M * P) bool, False on the padding.
    """
    steps, agents = states.shape[:2]
    count = -(-steps // length)
    padding = count * length - steps

    def cut(value: torch.Tensor) -> torch.Tensor:
        if padding:
            value = torch.cat([value, value.new_zeros(padding, *value.shape[1:])])
        pieces = value.reshape(count, length, agents, *value.shape[2:]).transpose(0, 1)
        return pieces.reshape(length, count * agents, *value.shape[2:])

    result = {key: cut(value) for key, value in episodes.items()}
    result["state"] = states[::length].reshape(1, count * agents, -1)
    if padding:
        result["valid"] = cut(torch.ones(steps, agents, dtype=torch.bool))
    return result


def pool_files(directory: Path) -> list[tuple[str, int, Path]]:
    """``(team, update, path)`` of the snapshots in a run's ``pool/``, oldest first."""
    found = []
    for path in Path(directory).glob("*.safetensors"):
        team, _, update = path.stem.rpartition("_")
        if team in TEAMS and update.isdigit():
            found.append((team, int(update), path))
    return sorted(found, key=lambda item: (item[1], item[0]))


