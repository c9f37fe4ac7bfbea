"""``rlgan demo --from-scratch``: the demo's shield trained by ``rlgan shield train``.

The demo's agent is the DQN driver bundled with rlgan (trained by ``rlgan train --algo dqn
--env rlgan/Driving-v0 --steps 200000``); the shield around it is trained from nothing with
the ``demo`` budget of :mod:`rlgan.pipeline`, the command that made the bundled shield, so
its figures land near the bundled ones. An interrupted run resumes after its last finished
stage; a finished one is reused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rlgan.demo.weights import BUNDLED, DemoWeights
from rlgan.pipeline import default_settings, train_shield
from rlgan.pipeline.settings import SETTINGS_FILE, STAGES
from rlgan.envs.registration import DRIVING_ID as DRIVING

TRAIN_MAP = "day"


def train_demo_shield(root: str | Path, budget: str = "demo", seed: int = 0,
                      device: str = "auto", progress: bool = True) -> DemoWeights:
    """Train (or resume, or reuse) the demo's shield into ``root/shield`` for the bundled
    agent, copied to ``root/agent``; return the weights root."""
    weights = DemoWeights(Path(root))
    if not weights.agent.is_dir():
        shutil.copytree(BUNDLED / "agent", weights.agent)
    shield = weights.shield
    started = (shield.root / SETTINGS_FILE).is_file()
    if started and set(STAGES) <= set(shield.progress()):
        print(f"[demo] the shield in {shield.root} is trained already")
        return weights
    settings = default_settings(DRIVING, {"map": TRAIN_MAP}, str(weights.agent), budget, seed, device)
    print(f"[demo] $ rlgan shield train --env {DRIVING} --map {TRAIN_MAP} --agent {weights.agent} "
          f"--budget {budget} --seed {seed} --out {shield.root}{' --resume' if started else ''}",
          flush=True)
    train_shield(shield.root, settings, resume=started, progress=progress)
    return weights
