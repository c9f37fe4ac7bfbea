"""Hide-and-seek games between players of each team, batched: a learned team network, the
built-in scripted policy or uniformly random actions. Used by self-play training (its
opponents) and by evaluation (against baselines, and the cross-play matrix of snapshots)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import numpy as np
import torch

from rlgan.agents.ppo import TeamNetwork, sample_actions
from rlgan.agents.team_stats import episode_statistics
from rlgan.config import check_choice
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.observations import CHANNELS, EXTRAS, plane_side
from rlgan.envs.hide_and_seek.scripted import scripted_actions
from rlgan.envs.hide_and_seek.team_env import TeamVectorEnv

#: Who plays a team: ``"scripted"``, ``"random"`` or a team network.
Player = Union[str, TeamNetwork]
BASELINES = ("scripted", "random")


def observation_scale(config: HideAndSeekConfig, observation_size: int) -> torch.Tensor:
    """(D,) factors bringing an observation to about [0, 1]: planes as they are, then the
    step counter / max_steps, the preparation flag, row and column / size."""
    scale = torch.ones(observation_size)
    scale[-4] = 1.0 / config.max_steps
    scale[-2:] = 1.0 / config.size
    return scale


#: The encoders of a team network: an MLP over the flat observation, or convolutions over its
#: planes (:class:`rlgan.agents.ppo.GridEncoder`).
ENCODERS = ("mlp", "conv")


def team_network(env: TeamVectorEnv, hidden: int, memory: bool, encoder: str) -> TeamNetwork:
    """A fresh network for a team of ``env`` (with a GRU when ``memory``; ``encoder`` one of
    :data:`ENCODERS`).

    Raises:
        ValueError: an unknown encoder.
    """
    check_choice("encoder", encoder, ENCODERS)
    grid = (len(CHANNELS), plane_side(env.config), len(EXTRAS)) if encoder == "conv" else None
    return TeamNetwork(env.observation_size, env.config.n_actions, hidden,
                       observation_scale(env.config, env.observation_size), memory, grid)


def choose_actions(env: TeamVectorEnv, team: str, player: Player, observations: np.ndarray,
                   grids: np.ndarray, out: np.ndarray, generator: torch.Generator,
                   rng: np.random.Generator, scripted: np.ndarray | None,
                   state: torch.Tensor | None = None) -> torch.Tensor | None:
    """Write ``player``'s actions for ``team`` on the grids ``grids`` (K,) into ``out``
    (N, n_agents). ``observations`` (N, n_team, D); ``scripted`` the scripted actions of this
    step (N, n_agents), needed for a scripted player; ``state`` a network's memory of these
    grids' agents (``None`` at the start of the episode).

    Returns:
        The network's memory after this step (pass it back on the next step with the same
        ``grids``), or ``None``.
    """
    agents = env.team_agents[team]
    if not len(grids):
        return None
    cells = np.ix_(grids, agents)
    if isinstance(player, TeamNetwork):
        flat = torch.from_numpy(observations[grids].reshape(-1, observations.shape[-1]))
        actions, _, _, state = sample_actions(player, flat, generator, state)
        out[cells] = actions.numpy().reshape(len(grids), len(agents))
        return state
    if player == "scripted":
        out[cells] = scripted[cells]
    else:
        out[cells] = rng.integers(env.config.n_actions, size=(len(grids), len(agents)))
    return None


def play(env_kwargs: dict[str, Any], hider: Player, seeker: Player, games: int,
         seed: int = 0, observer: Callable[[TeamVectorEnv], None] | None = None) -> dict[str, float]:
    """Play ``games`` whole episodes at once (grid ``i`` seeded ``seed + i``); learned players
    sample from their policies with a generator seeded by ``seed``. ``observer(env)`` sees
    the games after the reset and after every step but the last (whose grids are reset).

    Returns:
        :func:`rlgan.agents.team_stats.episode_statistics` of the games.

    Raises:
        ValueError: a player that is neither a network nor one of :data:`BASELINES`.
    """
    return play_games(env_kwargs, hider, seeker, games, seed, observer)[0]


def play_games(env_kwargs: dict[str, Any], hider: Player, seeker: Player, games: int,
               seed: int = 0, observer: Callable[[TeamVectorEnv], None] | None = None
               ) -> tuple[dict[str, float], np.ndarray]:
    """:func:`play`, and the hiders' return in each game, ``(games,)`` float (game ``i`` is
    the same game for every pair of players with the same ``seed``)."""
    for player in (hider, seeker):
        if not isinstance(player, TeamNetwork):
            check_choice("player", player, BASELINES)
    env = TeamVectorEnv(games, **env_kwargs)
    observations = env.reset(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    everyone = np.arange(games)
    trace: list[dict[str, np.ndarray]] = []
    rewards = []
    states: dict[str, torch.Tensor | None] = {"hider": None, "seeker": None}
    for _ in range(env.config.max_steps):
        if observer is not None:
            observer(env)
        scripted = scripted_actions(env.grid) if "scripted" in (hider, seeker) else None
        actions = np.zeros((games, env.n_agents), dtype=np.int64)
        for team, player in (("hider", hider), ("seeker", seeker)):
            states[team] = choose_actions(env, team, player, observations[team], everyone,
                                          actions, generator, rng, scripted, states[team])
        observations, reward, _, info = env.step(actions)
        trace.append(info)
        rewards.append(reward)
    stacked = {key: np.stack([info[key] for info in trace]) for key in trace[0]}
    all_rewards = np.stack(rewards)  # (T, N, n_agents)
    statistics = episode_statistics(stacked, all_rewards, env.config.n_hiders)
    return statistics, all_rewards[:, :, 0].sum(axis=0).astype(np.float64)
