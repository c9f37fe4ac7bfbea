"""Multi-agent hide-and-seek on a grid (Baker et al. 2019, in a gridworld).

Gymnasium ``rlgan/HideAndSeek-v0`` (one learner, :class:`HideAndSeekEnv`), its batched form
(:class:`HideAndSeekVectorEnv`), the PettingZoo game (:func:`parallel_env`) and its batched
form for two learning teams (:class:`TeamVectorEnv`);
:data:`SHIELD_TASK`, the options of the safety shield's task.
"""

from rlgan.envs.hide_and_seek.config import SHIELD_TASK, HideAndSeekConfig
from rlgan.envs.hide_and_seek.core import HideAndSeekState
from rlgan.envs.hide_and_seek.env import HideAndSeekEnv
from rlgan.envs.hide_and_seek.parallel_env import HideAndSeekParallelEnv, parallel_env
from rlgan.envs.hide_and_seek.team_env import TeamVectorEnv
from rlgan.envs.hide_and_seek.vector_env import HideAndSeekVectorEnv

__all__ = ["SHIELD_TASK", "HideAndSeekConfig", "HideAndSeekEnv", "HideAndSeekParallelEnv",
           "HideAndSeekState", "HideAndSeekVectorEnv", "TeamVectorEnv", "parallel_env"]
