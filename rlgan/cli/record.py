"""``rlgan record``: write transitions of an env to an ``rlgan-transitions`` dataset."""

from __future__ import annotations

import argparse
import json

from rlgan.cli.common import add_agent_argument, add_env_arguments, env_kwargs_from


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record", help="record transitions (frame, action, reward, next frame, unsafe) to a dataset",
        description="Record transitions to DIR in shards written atomically (see rlgan.data). "
                    "An interrupted recording keeps every finished shard; --resume adds to it.")
    parser.add_argument("--env", default="rlgan/Driving-v0", help="Gymnasium id (default: %(default)s)")
    add_env_arguments(parser)
    add_agent_argument(parser, "--policy", human=True)
    parser.add_argument("--epsilon", type=float, default=0.0,
                        help="probability of a random action instead of the agent's")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", required=True, help="dataset directory")
    parser.add_argument("--seed", type=int, default=0, help="episode e resets with seed + e")
    parser.add_argument("--shard-size", type=int, default=1000, help="transitions per shard")
    parser.add_argument("--resume", action="store_true", help="add to an existing dataset")
    parser.add_argument("--video", help="also write the rendered episode(s) to this .gif/.mp4")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.data.format import TransitionWriter
    from rlgan.data.record import dataset_summary, make_policy, record
    from rlgan.make import make_env, resolve_env_id
    from rlgan.video import check_video_path, write_video

    env_id = resolve_env_id(args.env)
    env_kwargs = env_kwargs_from(args)
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.video:
        check_video_path(args.video)
    render_mode = "human" if args.agent == "human" else ("rgb_array" if args.video else None)
    env = make_env(env_id, render_mode=render_mode, **env_kwargs)
    policy = make_policy(args.agent, env, seed=args.seed, epsilon=args.epsilon)
    metadata = {
        "env_id": env_id, "env_kwargs": env_kwargs, "seed": args.seed, "policy": args.agent,
        "epsilon": args.epsilon, "obs_shape": list(env.observation_space.shape),
        "obs_dtype": str(env.observation_space.dtype), "n_actions": int(env.action_space.n),
    }
    writer = TransitionWriter(args.out, metadata, shard_size=args.shard_size, resume=args.resume)
    try:
        result = record(env, policy, writer, args.steps, seed=args.seed,
                        first_episode=writer.next_episode, keep_frames=bool(args.video))
    finally:
        writer.close()
        env.close()
    if args.video and result.frames:
        fps = env.metadata.get("render_fps", 15)
        print(f"video: {write_video(args.video, result.frames, fps=fps)}")
    print(json.dumps(dataset_summary(args.out), indent=2))
    return 0
