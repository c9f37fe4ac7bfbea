"""``rlgan demo --from-scratch``: the whole SAD-GAN pipeline as a chain of ``rlgan`` commands.

Every stage is a command a user can run alone (the demo prints each before running it):

1. ``rlgan record``: driving data on the training map, the scripted driver pressing a random
   key some of the time (so crashes and the road edge are in the data), then random keys;
2. ``rlgan train --algo dqn``: the agent the shield will protect;
3. ``rlgan record --policy AGENT``: the agent's own driving (a few random keys) added to the
   data, so the world model and the classifier learn the states the shield will judge
   (without it, most of the shield's interventions on a good driver are false alarms; see
   benchmarks/RESULTS.md);
4. ``rlgan worldmodel train``: the action-conditioned GAN on all of that data;
5. ``rlgan safety train``: the safety classifier on real and generated (frame, next frame)
   pairs, the generated ones for every key from each chosen state, labelled by replay.

The runs land in ``OUT/runs/{data,worldmodel,safety,agent}``, the layout of the bundled
weights (:mod:`rlgan.demo.weights`). A finished stage leaves a marker ``.done-<stage>`` and is
skipped next time, so an interrupted pipeline resumes after its last finished stage (the
unfinished stage's output is removed and the stage runs again).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rlgan.demo.weights import DemoWeights

DRIVING = "rlgan/Driving-v0"
TRAIN_MAP = "day"
#: Episode length of the recorded data: shorter episodes give more of them to hold out.
RECORD_MAX_STEPS = 300
#: A short budget learns faster at 1e-3 than at DCGAN's 2e-4; a weak adversarial term keeps
#: the GAN's PSNR within about 1 dB of the regression baseline (see benchmarks/RESULTS.md).
WORLDMODEL_LR = 1e-3
WORLDMODEL_LAMBDA_ADV = 0.001


@dataclass(frozen=True)
class Budget:
    """Sizes of the pipeline's stages.

    Attributes:
        record_steps: transitions recorded with the epsilon-scripted driver.
        random_steps: transitions recorded with random keys (more crashes).
        epsilon: probability that the scripted driver presses a random key instead.
        worldmodel_steps: generator updates of the world model.
        safety_steps: optimiser steps of the safety classifier.
        generated_pairs: most (frame, predicted frame) pairs the classifier also trains on.
        agent_steps: environment steps of DQN.
        eval_freq: DQN's evaluation period in steps (its best checkpoint is kept).
        agent_record_steps: transitions recorded with the trained agent.
        agent_epsilon: probability that the agent presses a random key instead.
    """

    record_steps: int
    random_steps: int
    epsilon: float
    worldmodel_steps: int
    safety_steps: int
    generated_pairs: int
    agent_steps: int
    eval_freq: int
    agent_record_steps: int
    agent_epsilon: float


#: ``default`` fits in 30 minutes on 2 CPU cores and made the bundled weights; ``tiny`` checks
#: the pipeline end to end in about a minute (CI).
BUDGETS = {
    "default": Budget(record_steps=20_000, random_steps=20_000, epsilon=0.3,
                      worldmodel_steps=3_000, safety_steps=1_500, generated_pairs=4_096,
                      agent_steps=30_000, eval_freq=5_000, agent_record_steps=20_000,
                      agent_epsilon=0.1),
    "tiny": Budget(record_steps=600, random_steps=200, epsilon=0.3, worldmodel_steps=10,
                   safety_steps=10, generated_pairs=64, agent_steps=300, eval_freq=300,
                   agent_record_steps=200, agent_epsilon=0.1),
}


def stage_commands(runs: Path, budget: Budget, seed: int = 0) -> list[tuple[str, Path, list[str]]]:
    """``(stage, output, argv)`` of every stage, in order; ``argv`` excludes the leading
    ``rlgan``. All recordings write ``OUT/runs/data``."""
    weights = DemoWeights(runs)
    data = str(runs / "data")
    record = ["record", "--env", DRIVING, "--map", TRAIN_MAP, "--out", data,
              "--env-kwargs", f"max_steps={RECORD_MAX_STEPS}"]
    return [
        ("record", runs / "data",
         [*record, "--policy", "scripted", "--epsilon", str(budget.epsilon), "--steps",
          str(budget.record_steps), "--seed", str(seed)]),
        ("record-random", runs / "data",
         [*record, "--policy", "random", "--steps", str(budget.random_steps), "--resume",
          "--seed", str(seed + 100_000)]),
        ("agent", weights.agent,
         ["train", "--algo", "dqn", "--env", DRIVING, "--map", TRAIN_MAP, "--steps",
          str(budget.agent_steps), "--eval-freq", str(budget.eval_freq), "--seed", str(seed),
          "--run", str(weights.agent)]),
        ("record-agent", runs / "data",
         [*record, "--policy", str(weights.agent), "--epsilon", str(budget.agent_epsilon),
          "--steps", str(budget.agent_record_steps), "--resume", "--seed", str(seed + 200_000)]),
        ("worldmodel", weights.worldmodel,
         ["worldmodel", "train", "--data", data, "--run", str(weights.worldmodel), "--steps",
          str(budget.worldmodel_steps), "--lr", str(WORLDMODEL_LR), "--lambda-adv",
          str(WORLDMODEL_LAMBDA_ADV), "--seed", str(seed)]),
        ("safety", weights.safety,
         ["safety", "train", "--data", data, "--run", str(weights.safety), "--worldmodel",
          str(weights.worldmodel), "--steps", str(budget.safety_steps), "--seed", str(seed),
          "--set", f"max_generated={budget.generated_pairs}", "counterfactual=true"]),
    ]


def run_pipeline(runs: str | Path, budget: Budget, seed: int = 0) -> DemoWeights:
    """Run every stage whose output is missing; return the trained weights.

    Raises:
        RuntimeError: a stage's command failed (its message was printed; finished stages are
            kept, so running again resumes after them).
    """
    from rlgan.cli import main

    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    for stage, output, argv in stage_commands(runs, budget, seed):
        marker = runs / f".done-{stage}"
        if marker.exists():
            print(f"[demo] {stage}: already done ({output})")
            continue
        if output.exists() and not stage.startswith("record-"):
            shutil.rmtree(output)  # left by an interrupted run of this stage
        print(f"[demo] $ rlgan {' '.join(argv)}", flush=True)
        if main(argv) != 0:
            raise RuntimeError(f"demo stage {stage} failed: rlgan {' '.join(argv)}; run the "
                               "demo again to resume after the finished stages")
        marker.touch()
    return DemoWeights(runs)
