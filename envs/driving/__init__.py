"""The RoadRash-like driving game ``rlgan/Driving-v0`` (see :class:`DrivingEnv`)."""

from rlgan.envs.driving.config import MAPS, DrivingConfig
from rlgan.envs.driving.env import DrivingEnv
from rlgan.envs.driving.simulation import Action, DrivingState
from rlgan.envs.driving.vector_env import DrivingVectorEnv

__all__ = ["MAPS", "Action", "DrivingConfig", "DrivingEnv", "DrivingState", "DrivingVectorEnv"]
