"""The one place where every ``rlgan/...`` environment id is registered.

Entry points are strings, so importing :mod:`rlgan` stays cheap: an environment's module
is imported only when it is made. Registration is idempotent.

=============================  ===============================================
id                             what it is
=============================  ===============================================
``rlgan/Driving-v0``           RoadRash-like pixel driving (:mod:`rlgan.envs.driving`)
``rlgan/HideAndSeek-v0``       hide-and-seek gridworld, one learner (:mod:`rlgan.envs.hide_and_seek`)
``rlgan/Atari-v0``             ALE games with Nature-DQN preprocessing (:mod:`rlgan.envs.atari`)
=============================  ===============================================

``rlgan/HideAndSeek-v0`` is also registered in PettingZoo's parallel registry, so
``pettingzoo.make("parallel", "rlgan/HideAndSeek-v0")`` gives the multi-agent game.
"""

from __future__ import annotations

import gymnasium

DRIVING_ID = "rlgan/Driving-v0"
HIDE_AND_SEEK_ID = "rlgan/HideAndSeek-v0"
ATARI_ID = "rlgan/Atari-v0"

GYMNASIUM_IDS: dict[str, dict[str, str]] = {
    DRIVING_ID: {
        "entry_point": "rlgan.envs.driving.env:DrivingEnv",
        "vector_entry_point": "rlgan.envs.driving.vector_env:DrivingVectorEnv",
    },
    HIDE_AND_SEEK_ID: {
        "entry_point": "rlgan.envs.hide_and_seek.env:HideAndSeekEnv",
        "vector_entry_point": "rlgan.envs.hide_and_seek.vector_env:HideAndSeekVectorEnv",
    },
    ATARI_ID: {
        "entry_point": "rlgan.envs.atari.env:AtariEnv",
        "vector_entry_point": "rlgan.envs.atari.vector_env:AtariVectorEnv",
    },
}

PETTINGZOO_PARALLEL_IDS: dict[str, str] = {
    HIDE_AND_SEEK_ID: "rlgan.envs.hide_and_seek.parallel_env:parallel_env",
}


def register_envs() -> None:
    """Register every rlgan id with Gymnasium and PettingZoo; calling it again does nothing."""
    for env_id, entry_points in GYMNASIUM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, **entry_points)
    _register_pettingzoo()


def _register_pettingzoo() -> None:
    import pettingzoo

    for env_id, entry_point in PETTINGZOO_PARALLEL_IDS.items():
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point=entry_point)
