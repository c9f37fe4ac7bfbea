"""Atari through ALE with the Nature-DQN preprocessing: ``rlgan/Atari-v0``."""

from rlgan.envs.atari.config import AtariConfig, game_ids
from rlgan.envs.atari.env import AtariEnv, AtariState
from rlgan.envs.atari.vector_env import AtariVectorEnv

GAMES = game_ids()

__all__ = ["GAMES", "AtariConfig", "AtariEnv", "AtariState", "AtariVectorEnv", "game_ids"]
