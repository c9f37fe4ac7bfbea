"""Where world models lose their edges in open-loop rollouts of rlgan/Driving-v0.

    python benchmarks/bench_worldmodel_regions.py RUN [RUN ...] --rollouts 256 --depth 8

Plays fresh episodes (seeds from ``--seed``) of the scripted driver taking a random action 30%
of the time, the recordings' policy, in the env settings the first run was trained on, and
saves the simulator's state at a random step of each. From there:

- the same actions are replayed with another random generator: the share of rollouts whose
  frame k differs at all says how much of the next k steps the simulator leaves to chance;
- each world model rolls out open loop over those actions from the frames up to t;
- the error of sharpness (Mathieu et al. 2016), ``|G(T) - G(P)|`` per pixel with ``G`` the
  gradient magnitude, is split among regions of the true frame (within 1 px): cars (the frame
  with and without the cars differs), road markings (rumble strips and lane marks), roadside
  objects and the rest (grass, road and sky bands, scenery). Per region: its share of the
  error and the sharpness with that region predicted perfectly.

Anchors in the same table: copying the last frame, and the simulator itself run from a slightly
wrong state (1 m further along the road, or 0.25 m to one side), which draws every edge
crisply a little out of place. Regions are found by the map's exact colours, so maps with fog
are refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from common import table  # first: it sets the dummy SDL driver
import gymnasium
import numpy as np
import torch
import torch.nn.functional as F

from rlgan.envs.driving.config import MapSpec
from rlgan.envs.driving.env import DrivingEnv
from rlgan.worldmodel import WorldModel
from rlgan.worldmodel.frames import observations_to_tensor, to_uint8, to_unit
from rlgan.worldmodel.metrics import PSNR_CAP_DB, gradient_magnitude
from rlgan.worldmodel.rollouts import predict_rollout

EPSILON = 0.3  # the recordings' share of random actions
#: Sharp anchors: the simulator itself from a slightly wrong state, every edge drawn crisply at
#: a slightly wrong place.
WRONG_STATES = {
    "simulator, 1 m ahead": lambda state: dataclasses.replace(state, position=state.position + 1.0),
    "simulator, 0.25 m aside": lambda state: dataclasses.replace(state, lateral=state.lateral + 0.25),
}
REGIONS = ("cars", "marks", "roadside", "rest")
REPORTED_STEPS = (1, 4, 8)
BATCH = 32


@dataclasses.dataclass
class Rollouts:
    """Fresh rollouts from saved states: uint8 frames ``(N, ...)`` in tensor layout.

    Attributes:
        history: ``(N, history, C, H, W)`` frames up to t.
        actions: int64 ``(N, D)`` actions taken at t..t+D-1.
        truth: ``(N, D, C, H, W)`` frames t+1..t+D.
        without_cars: the same frames drawn without the cars.
        other_generator: the same frames from the same state with another random generator.
        wrong_states: per name of :data:`WRONG_STATES`, the frames from that wrong state.
    """

    history: torch.Tensor
    actions: torch.Tensor
    truth: torch.Tensor
    without_cars: torch.Tensor
    other_generator: torch.Tensor
    wrong_states: dict[str, torch.Tensor]


def make_env(env_id: str, env_kwargs: dict) -> DrivingEnv:
    """The runs' env, unwrapped; refused unless it is a fog-free Driving map."""
    env = gymnasium.make(env_id, **env_kwargs).unwrapped
    if not isinstance(env, DrivingEnv):
        raise SystemExit(f"error: the runs were trained on {env_id}; the regions are defined for "
                         "rlgan/Driving-v0 only")
    if env.config.map_spec.fog_distance > 0:
        raise SystemExit(f"error: map {env.config.map!r} has fog, which tints every colour by "
                         "distance; the regions need a map without fog (day, desert)")
    return env


def play_rollouts(env: DrivingEnv, twin: DrivingEnv, count: int, depth: int, history: int,
                  seed: int) -> Rollouts:
    """``count`` rollouts of ``depth`` steps from a random step of fresh episodes of ``env``
    (``twin``, an env of the same settings, draws the frames without cars). Episodes that end
    before the rollout does are skipped."""
    rng = np.random.default_rng(seed)

    def act() -> int:
        return int(rng.integers(env.action_space.n)) if rng.random() < EPSILON else env.scripted_action()

    def replay(state, actions: list[int], without_cars: list | None = None) -> np.ndarray | None:
        """The frames after each action from ``state`` (appending each drawn without cars to
        ``without_cars`` when given); None when the episode ends on the way."""
        env.set_state(state)
        frames = []
        for action in actions:
            frame, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                return None
            frames.append(frame)
            if without_cars is not None:
                road = env.get_state()
                behind = np.full_like(road.car_position, road.position - 1e4)
                without_cars.append(twin.set_state(dataclasses.replace(road, car_position=behind)))
        return np.stack(frames)

    collected: dict[str, list] = {name: [] for name in ("history", "actions", "truth",
                                                        "without_cars", "other_generator")}
    episode_seed = seed
    while len(collected["truth"]) < count:
        frames = [env.reset(seed=episode_seed)[0]]
        episode_seed += 1
        terminated = False
        for _ in range(int(rng.integers(history, env.config.max_steps - depth))):
            frame, _, terminated, _, _ = env.step(act())
            frames.append(frame)
            if terminated:
                break
        if terminated:
            continue
        state = env.get_state()
        actions = [act() for _ in range(depth)]
        without_cars: list[np.ndarray] = []
        truth = replay(state, actions, without_cars)
        generator = np.random.default_rng(episode_seed + 2**40).bit_generator.state
        other = replay(dataclasses.replace(state, rng_state=generator), actions)
        wrong = {name: replay(change(state), actions) for name, change in WRONG_STATES.items()}
        if truth is None or other is None or any(replayed is None for replayed in wrong.values()):
            continue
        collected["history"].append(np.stack(frames[-history:]))
        collected["actions"].append(actions)
        collected["truth"].append(truth)
        collected["without_cars"].append(np.stack(without_cars))
        collected["other_generator"].append(other)
        for name, replayed in wrong.items():
            collected.setdefault(name, []).append(replayed)
    tensors = {name: observations_to_tensor(np.stack(values)) for name, values in collected.items()
               if name != "actions"}
    return Rollouts(actions=torch.as_tensor(np.array(collected["actions"])),
                    wrong_states={name: tensors.pop(name) for name in WRONG_STATES}, **tensors)


def region_masks(rollouts: Rollouts, spec: MapSpec) -> dict[str, torch.Tensor]:
    """Float ``(N, D, 1, H, W)`` masks of :data:`REGIONS`, disjoint, covering every pixel."""
    def within_1px(mask: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(mask.flatten(0, 1), 3, stride=1, padding=1).view_as(mask)

    def coloured(frames: torch.Tensor, colours) -> torch.Tensor:
        hits = [(frames == torch.tensor(c, dtype=frames.dtype).view(1, 1, 3, 1, 1)).all(2, keepdim=True)
                for c in colours]
        return within_1px(torch.stack(hits).any(0).float())

    bare = rollouts.without_cars
    cars = within_1px((rollouts.truth != bare).any(2, keepdim=True).float())
    marks = coloured(bare, [*spec.rumble, spec.lane_mark]) * (1 - cars)
    roadside = coloured(bare, [spec.roadside_trunk, spec.roadside_top]) * (1 - cars) * (1 - marks)
    return {"cars": cars, "marks": marks, "roadside": roadside,
            "rest": 1 - cars - marks - roadside}


def region_scores(predicted: torch.Tensor, truth: torch.Tensor,
                  masks: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Per rollout step, means over rollouts: ``sharpness`` (dB, capped as the metric),
    ``share_R`` (region R's part of the summed error) and ``perfect_R`` (sharpness, dB, with R's
    error removed) for every region. Frames uint8-valued ``(N, D, C, H, W)``."""
    def decibels(error_sum: torch.Tensor) -> torch.Tensor:
        mean = error_sum / truth[0, 0].numel()
        return (10 * torch.log10(255.0**2 / mean)).clamp(max=PSNR_CAP_DB).mean(0)

    def gradients(frames: torch.Tensor) -> torch.Tensor:
        return gradient_magnitude(frames.double().flatten(0, 1)).view(frames.shape)

    error = (gradients(truth) - gradients(predicted)).abs()
    total = error.flatten(2).sum(2)
    scores = {"sharpness": decibels(total).tolist()}
    for name, mask in masks.items():
        part = (error * mask).flatten(2).sum(2)
        scores[f"share_{name}"] = (part.sum(0) / total.sum(0).clamp(min=1e-12)).tolist()
        scores[f"perfect_{name}"] = decibels(total - part).tolist()
    return scores


def model_rollouts(model: WorldModel, rollouts: Rollouts) -> torch.Tensor:
    """The model's open-loop predictions of ``rollouts.truth`` (uint8, same shape)."""
    noise = torch.Generator().manual_seed(0)
    history = to_unit(rollouts.history[:, -model.history:])
    return torch.cat([to_uint8(predict_rollout(model, history[i:i + BATCH],
                                               rollouts.actions[i:i + BATCH], noise))
                      for i in range(0, len(history), BATCH)])


def rows(results: dict[str, dict], steps: tuple[int, ...]) -> list[tuple[str, ...]]:
    """One table row per model and reported step."""
    out = []
    for name, scores in results.items():
        for k in steps:
            out.append((name, str(k), f"{scores['sharpness'][k - 1]:.2f}",
                        *[f"{100 * scores[f'share_{region}'][k - 1]:.0f}%" for region in REGIONS],
                        *[f"{scores[f'perfect_{region}'][k - 1]:.2f}" for region in REGIONS]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="world model runs of one env")
    parser.add_argument("--rollouts", type=int, default=256)
    parser.add_argument("--depth", type=int, default=8, help="rollout steps")
    parser.add_argument("--seed", type=int, default=900_000, help="first episode's seed")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    try:
        models = {str(run): WorldModel.load(run, "cpu") for run in args.runs}
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    first = next(iter(models.values()))
    for name, model in models.items():
        try:
            first.check_compatible(f"run {name}", model.data.env_id, model.frame_shape, model.n_actions)
        except ValueError as error:
            parser.error(f"{error} (the first run: every run plays its rollouts)")
    env, twin = (make_env(first.data.env_id, first.data.env_kwargs) for _ in range(2))
    if not 1 <= args.depth <= env.config.max_steps // 2:
        parser.error(f"--depth must be in 1..{env.config.max_steps // 2} for episodes of "
                     f"{env.config.max_steps} steps")
    history = max(model.history for model in models.values())
    rollouts = play_rollouts(env, twin, args.rollouts, args.depth, history, args.seed)
    masks = region_masks(rollouts, env.config.map_spec)
    copy_last = rollouts.history[:, -1:].expand_as(rollouts.truth)
    results = {"copy-last": region_scores(copy_last, rollouts.truth, masks)}
    results.update({name: region_scores(frames, rollouts.truth, masks)
                    for name, frames in rollouts.wrong_states.items()})
    results.update({name: region_scores(model_rollouts(model, rollouts), rollouts.truth, masks)
                    for name, model in models.items()})
    differs = (rollouts.other_generator != rollouts.truth).flatten(2).any(2).float().mean(0)
    steps = tuple(k for k in REPORTED_STEPS if k < args.depth) + (args.depth,)
    print(f"\n{args.rollouts} rollouts of {args.depth} steps on {first.data.env_id} "
          f"{first.data.env_kwargs} (episode seeds {args.seed}+); another random generator "
          "changes frame " + ", ".join(f"{k} in {100 * differs[k - 1]:.1f}%" for k in steps)
          + " of them\n")
    print(table(rows(results, steps), ("model", "step", "sharpness dB",
                                       *[f"share {r}" for r in REGIONS],
                                       *[f"perfect {r} dB" for r in REGIONS])))
    if args.json:
        args.json.write_text(json.dumps({"differs": differs.tolist(), "models": results}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
