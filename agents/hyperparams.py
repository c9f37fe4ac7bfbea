"""Tuned hyperparameters per environment, in one readable place (like rl-baselines3-zoo).

``HYPERPARAMS[algo][env_id]`` holds keyword arguments of the agent (for ``dqn``: SB3's
``DQN`` plus ``double`` and ``policy_kwargs``; for ``qlearning``: :class:`QLearningConfig`),
the env options they were tuned with (``env_kwargs``; ``train_env_kwargs`` apply to the
training env only, not to evaluation) and, for DQN, the number of envs stepped
together (``n_envs``; ``--n-envs`` overrides it). Anything here can be overridden
from the command line: ``rlgan train ... --hp learning_rate=3e-4 exploration_fraction=0.2``.
Envs not listed use ``DEFAULTS``.
"""

from __future__ import annotations

from typing import Any

from rlgan.config import check_types, did_you_mean, option_types

DEFAULTS: dict[str, dict[str, Any]] = {
    "dqn": {"policy": "MlpPolicy", "learning_rate": 1e-4, "buffer_size": 100_000,
            "learning_starts": 1_000, "batch_size": 32, "gamma": 0.99, "train_freq": 4,
            "target_update_interval": 1_000, "exploration_fraction": 0.1,
            "exploration_final_eps": 0.05, "double": False, "loss": "huber", "policy_kwargs": {}},
    "qlearning": {"gamma": 0.99, "alpha_start": 0.5, "alpha_end": 0.05,
                  "epsilon_start": 1.0, "epsilon_end": 0.05, "epsilon_fraction": 0.5},
    # Self-play PPO of both hide-and-seek teams (rlgan train --teams); fields of
    # rlgan.agents.selfplay.SelfPlayConfig, whose defaults apply where not listed.
    "ppo": {},
}

HYPERPARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "dqn": {
        "CartPole-v1": {"policy": "MlpPolicy", "learning_rate": 2.3e-3, "batch_size": 64,
                        "buffer_size": 100_000, "learning_starts": 1_000, "gamma": 0.99,
                        "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
                        "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
                        "policy_kwargs": {"net_arch": [256, 256]}},
        # Pixels, 3 actions; 64x64 frames through the Nature CNN, 8 roads stepped together.
        # Cars ahead are a few pixels wide and crashes are rare: with the crash as the only
        # signal and the Huber loss capping its large TD error, the Q-network never learned
        # to see them in 200k steps (its Q-values ignored a car 5 m ahead). The MSE loss,
        # the headway penalty (reward shaping; benchmarks judge on the default env) and
        # 3-step returns make it learn.
        "rlgan/Driving-v0": {"policy": "CnnPolicy", "learning_rate": 2.5e-4,
                             "buffer_size": 100_000, "learning_starts": 5_000, "batch_size": 32,
                             "gamma": 0.98, "n_steps": 3, "train_freq": 1, "gradient_steps": 2,
                             "target_update_interval": 1_000, "exploration_fraction": 0.1,
                             "exploration_final_eps": 0.01, "double": True, "loss": "mse",
                             "policy_kwargs": {"dueling": True}, "n_envs": 8,
                             "env_kwargs": {"crash_penalty": 10.0, "headway_penalty": 1.0}},
        # 8 grids stepped together in numpy, one update per 4 transitions.
        "rlgan/HideAndSeek-v0": {"policy": "MlpPolicy", "learning_rate": 5e-4,
                                 "buffer_size": 50_000, "learning_starts": 1_000,
                                 "batch_size": 64, "gamma": 0.95, "train_freq": 1,
                                 "gradient_steps": 2, "n_envs": 8,
                                 "target_update_interval": 1_000, "exploration_fraction": 0.3,
                                 "exploration_final_eps": 0.05, "double": True,
                                 "policy_kwargs": {"net_arch": [128, 128], "dueling": True}},
        # Learns Pong on 2 CPU cores within 2M frames (500k steps; benchmarks/RESULTS.md):
        # the small network of the 2013 DQN (a third of the Nature network's compute, which
        # takes 55-65 ms per update of 32 frames on one core), Double DQN with a dueling head
        # and 3-step returns, an update every 2 steps after 10k steps, epsilon 1 -> 0.01 over
        # the first 20% of the run, a 50k-transition replay
        # (about 3 GB: SB3's n-step buffer keeps next frames whole). No sticky actions, as in
        # Mnih et al. 2015; life loss ends an episode and rewards are clipped in training only.
        # Nature DQN's own settings: --hp buffer_size=250000 learning_starts=100000 n_steps=1
        # train_freq=4 double=false exploration_fraction=0.1 optimize_memory_usage=true
        # policy_kwargs={}.
        "rlgan/Atari-v0": {"policy": "CnnPolicy", "learning_rate": 1e-4, "buffer_size": 50_000,
                           "replay_buffer_kwargs": {"handle_timeout_termination": False},
                           "learning_starts": 10_000, "batch_size": 32, "gamma": 0.99,
                           "n_steps": 3, "train_freq": 2, "gradient_steps": 1,
                           "target_update_interval": 1_000, "exploration_fraction": 0.2,
                           "exploration_final_eps": 0.01, "double": True,
                           "policy_kwargs": {"dueling": True, "cnn": "small"},
                           "env_kwargs": {"repeat_action_probability": 0.0},
                           "train_env_kwargs": {"terminal_on_life_loss": True,
                                                "clip_rewards": True}},
    },
    "qlearning": {
        "FrozenLake-v1": {"gamma": 0.95, "alpha_start": 0.8, "alpha_end": 0.1,
                          "epsilon_fraction": 0.6},
        "CliffWalking-v1": {"gamma": 1.0, "alpha_start": 0.5, "alpha_end": 0.1,
                            "epsilon_start": 0.3, "epsilon_end": 0.0, "epsilon_fraction": 0.8},
        "rlgan/HideAndSeek-v0": {"gamma": 0.95, "alpha_start": 0.5, "alpha_end": 0.05,
                                 "epsilon_fraction": 0.7,
                                 "env_kwargs": {"size": 5, "n_boxes": 1, "walls": 0}},
    },
    # Both teams see the whole grid (observation="full"): cover and doors are mostly beyond
    # the default 5x5 window on the 9x9 grid.
    "ppo": {
        "rlgan/HideAndSeek-v0": {"env_kwargs": {"observation": "full"}},
    },
}

ALGOS = tuple(HYPERPARAMS)


def hyperparameters(algo: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tuned settings of ``algo`` on ``env_id`` with ``overrides`` applied.

    Raises:
        ValueError: unknown algorithm.
        TypeError: an override names no known setting, or its value does not fit the setting's
            type (``buffer_size=1e5``: an int is expected).
    """
    if algo not in HYPERPARAMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGOS)}."
                         f"{did_you_mean(algo, ALGOS)}")
    settings = {**DEFAULTS[algo], **HYPERPARAMS[algo].get(env_id, {})}
    known = set(settings) | _ACCEPTED[algo]
    for key in overrides or {}:
        if key not in known:
            raise TypeError(f"{algo} has no hyperparameter {key!r}.{did_you_mean(key, known)} "
                            f"Known: {', '.join(sorted(known))}")
    check_types(overrides or {}, hyperparameter_types(algo), algo)
    return {**settings, **(overrides or {})}


def hyperparameter_types(algo: str) -> dict[str, Any]:
    """The type of each hyperparameter of ``algo`` (a key of :data:`HYPERPARAMS`): from the
    signatures of SB3's ``DQN`` and rlgan's subclass, or from :class:`QLearningConfig`."""
    if algo == "qlearning":
        from rlgan.agents.qlearning import QLearningConfig

        types = option_types(QLearningConfig)
    elif algo == "ppo":
        from rlgan.agents.selfplay import SelfPlayConfig

        types = option_types(SelfPlayConfig)
    else:
        from stable_baselines3 import DQN as SB3DQN

        from rlgan.agents.dqn import DQN

        types = {**option_types(SB3DQN), **option_types(DQN)}
    return {**types, "env_kwargs": dict, "train_env_kwargs": dict, "n_envs": int}


_ACCEPTED = {
    "dqn": {"gradient_steps", "tau", "max_grad_norm", "exploration_initial_eps",
            "optimize_memory_usage", "replay_buffer_kwargs", "n_steps", "env_kwargs",
            "train_env_kwargs", "n_envs"},
    "qlearning": {"alpha_fraction", "initial_q", "env_kwargs", "train_env_kwargs"},
    "ppo": {"num_grids", "learning_rate", "gamma", "gae_lambda", "clip", "epochs", "minibatches",
            "entropy_coef", "value_coef", "max_grad_norm", "reward_scale", "hidden",
            "memory", "bptt", "encoder", "latest_prob", "scripted_prob", "teacher_coef",
            "teacher_updates", "snapshot_every", "checkpoint_every",
            "env_kwargs"},
}
