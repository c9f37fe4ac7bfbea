"""``rlgan demo``: the first command a newcomer runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="record a driving episode with the scripted driver (GIF + dataset summary)",
        description="Drive rlgan/Driving-v0 with the scripted driver, save the episode as a GIF "
                    "and the transitions as a dataset, and print the dataset's summary.")
    parser.add_argument("--out", default="rlgan-output/demo", help="output directory")
    parser.add_argument("--map", default="day", help="driving map")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.data.format import TransitionWriter
    from rlgan.data.record import dataset_summary, make_policy, record
    from rlgan.make import make_env
    from rlgan.video import write_video

    out = Path(args.out)
    env_kwargs = {"map": args.map}
    env = make_env("rlgan/Driving-v0", render_mode="rgb_array", **env_kwargs)
    metadata = {
        "env_id": "rlgan/Driving-v0", "env_kwargs": env_kwargs, "seed": args.seed,
        "policy": "scripted", "epsilon": 0.0, "obs_shape": list(env.observation_space.shape),
        "obs_dtype": str(env.observation_space.dtype), "n_actions": int(env.action_space.n),
    }
    writer = TransitionWriter(out / "dataset", metadata, resume=(out / "dataset").exists())
    try:
        result = record(env, make_policy("scripted", env, seed=args.seed), writer, args.steps,
                        seed=args.seed, first_episode=writer.next_episode, keep_frames=True)
    finally:
        writer.close()
        env.close()
    video = write_video(out / "driving.gif", result.frames, fps=env.metadata.get("render_fps", 30))
    print(json.dumps(dataset_summary(out / "dataset"), indent=2))
    print(f"episode video: {video}\ndataset: {out / 'dataset'}")
    return 0
