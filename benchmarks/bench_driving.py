"""Steps per second of rlgan/Driving-v0 against highway-env and the ALE Nature-DQN pipeline.

    python benchmarks/bench_driving.py [--seconds 10] [--quick] [--save-frames DIR]

Needs the peers: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import common  # noqa: F401  (sets the dummy SDL driver)
import gymnasium
import numpy as np

import rlgan  # noqa: F401
from common import machine, single_env_stepper, steps_per_second, table, vector_env_stepper


def highway_fast() -> gymnasium.Env:
    import highway_env

    gymnasium.register_envs(highway_env)
    return gymnasium.make("highway-fast-v0", config={"observation": {
        "type": "GrayscaleObservation", "observation_shape": (84, 84), "stack_size": 1,
        "weights": [0.2989, 0.5870, 0.1140]}})


def ale_breakout_nature() -> gymnasium.Env:
    import ale_py

    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Breakout-v5", frameskip=1)
    env = gymnasium.wrappers.AtariPreprocessing(env, frame_skip=4, screen_size=84, grayscale_obs=True)
    return gymnasium.wrappers.FrameStackObservation(env, 4)


def save_frames(directory: Path) -> None:
    """One 64x64 observation (upscaled) and one 256x256 HUD frame per map, side by side."""
    from PIL import Image

    from rlgan.envs.driving import DrivingEnv

    rows = []
    for name in DrivingEnv.MAPS:
        env = DrivingEnv(map=name, render_mode="rgb_array")
        env.reset(seed=3)
        for _ in range(60):
            observation, *_ = env.step(env.scripted_action())
        rows.append(np.concatenate([env.render(), np.kron(observation, np.ones((4, 4, 1), np.uint8))], 1))
    directory.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(directory / "driving_maps.png")
    print(f"saved {directory / 'driving_maps.png'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="1 second per measurement")
    parser.add_argument("--save-frames", type=Path, help="write a PNG of every map here")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    if args.save_frames:
        save_frames(args.save_frames)

    single = steps_per_second(single_env_stepper(gymnasium.make("rlgan/Driving-v0")), seconds)
    batched = steps_per_second(vector_env_stepper(gymnasium.make_vec(
        "rlgan/Driving-v0", num_envs=64, vectorization_mode="vector_entry_point")), seconds)
    highway = steps_per_second(single_env_stepper(highway_fast()), max(seconds, 3.0), warmup=2)
    ale = steps_per_second(single_env_stepper(ale_breakout_nature()), seconds)
    rows = [
        ("rlgan/Driving-v0, single env, 64x64 RGB", f"{single:,.0f}", "1.00"),
        ("rlgan/Driving-v0, 64 roads via make_vec", f"{batched:,.0f}", f"{batched / single:.2f}"),
        ("highway-fast-v0, 84x84 grayscale", f"{highway:,.0f}", f"{single / highway:.1f}x slower than rlgan single"),
        ("ALE Breakout, Nature-DQN preprocessing", f"{ale:,.0f}", f"{single / ale:.2f}x slower than rlgan single"),
    ]
    print(f"\nDriving benchmark ({machine()}, {seconds:g} s per row)\n")
    print(table(rows, ("environment", "steps/s", "ratio")))
    print(f"\nrlgan single / highway-fast: {single / highway:.1f}x (target >= 50x)")
    print(f"rlgan single / ALE Breakout: {single / ale:.2f}x (target >= 1x)")
    print(f"rlgan batched 64: {batched:,.0f} steps/s (target >= 20,000)")


if __name__ == "__main__":
    main()
