"""rlgan: reinforcement learning with learned world models.

Importing the package registers every ``rlgan/...`` environment id with Gymnasium
(and the multi-agent ones with PettingZoo), so other RL code can do::

    import gymnasium
    import rlgan  # noqa: F401
    env = gymnasium.make("rlgan/Driving-v0", map="night")
"""

from rlgan.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
