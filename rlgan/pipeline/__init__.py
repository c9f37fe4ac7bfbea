"""The learned shield as one command: ``rlgan shield train``.

:func:`train_shield` runs the recipe (collect outcome records of the agent's near-unsafe
states, train the world model and the safety classifier, choose the search depth and threshold
on held-out records, evaluate against the agent alone and the oracle shield) into a shield
directory (:class:`ShieldDir`) whose shield any code can load::

    from rlgan.pipeline import ShieldDir, default_settings, train_shield

    settings = default_settings("rlgan/Driving-v0", {"map": "day"}, agent="runs/driver", budget="demo")
    shield_dir = train_shield("runs/shield", settings)
    shield = shield_dir.load_shield(policy=my_policy)  # a rlgan.safety.Shield
"""

from rlgan.pipeline.settings import BUDGETS, ShieldSettings, apply_overrides, default_settings, load_settings
from rlgan.pipeline.shield_dir import ShieldDir
from rlgan.pipeline.train import check_target, resume_settings, train_shield

__all__ = ["BUDGETS", "ShieldDir", "ShieldSettings", "apply_overrides", "check_target",
           "default_settings", "load_settings", "resume_settings", "train_shield"]
