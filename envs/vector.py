"""Helpers shared by rlgan's batched ``VectorEnv`` implementations."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from rlgan.config import check_choice


def check_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """``NEXT_STEP`` or ``SAME_STEP`` (the enum or its value); anything else raises ValueError."""
    valid = {m.value: m for m in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)}
    value = mode.value if isinstance(mode, AutoresetMode) else mode
    check_choice("autoreset_mode", value, valid)
    return valid[value]


def add_final(infos: dict[str, Any], observations: np.ndarray, done: np.ndarray) -> dict[str, Any]:
    """``final_obs`` / ``final_info`` entries (object arrays with masks) for the rows ``done``,
    taken before those rows are reset (Gymnasium's same-step autoreset convention)."""
    n = len(observations)
    final_obs = np.full(n, None, dtype=object)
    final_info = np.full(n, None, dtype=object)
    for index in done:
        final_obs[index] = observations[index].copy()
        final_info[index] = {key: value[index] for key, value in infos.items() if not key.startswith("_")}
    mask = np.zeros(n, dtype=bool)
    mask[done] = True
    return {"final_obs": final_obs, "_final_obs": mask, "final_info": final_info,
            "_final_info": mask.copy()}
