"""``rlgan eval``: evaluate a trained run or a baseline policy."""

from __future__ import annotations

import argparse
import json

from rlgan.cli.common import add_env_arguments, env_kwargs_from


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a run (or --agent random|scripted): return, length, unsafe/1000",
        description="Evaluate the best checkpoint of --run DIR, or a baseline with --agent, "
                    "on its env (or --env). Episode e resets with seed + e.")
    parser.add_argument("--run", help="run directory from rlgan train")
    parser.add_argument("--agent", choices=["random", "scripted"], help="a baseline instead of a run")
    parser.add_argument("--env", help="env id (default: the run's)")
    add_env_arguments(parser)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", choices=["human"], help="watch in a pygame window")
    parser.add_argument("--video", help="write the episodes to this .mp4 or .gif")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.agents.evaluation import evaluate_agent, random_policy, scripted_policy
    from rlgan.agents.training import Run, load_trained
    from rlgan.make import make_env
    from rlgan.video import check_video_path, write_video

    if bool(args.run) == bool(args.agent):
        raise ValueError("give exactly one of --run DIR or --agent random|scripted")
    if args.video:
        check_video_path(args.video)
    if args.run:
        config = Run(args.run).config()
        env_id = args.env or config["env_id"]
        env_kwargs = {**config["env_kwargs"], **env_kwargs_from(args)}
    else:
        if not args.env:
            raise ValueError("--agent needs --env")
        env_id, env_kwargs = args.env, env_kwargs_from(args)
    render_mode = "human" if args.render else ("rgb_array" if args.video else None)
    env = make_env(env_id, render_mode=render_mode, **env_kwargs)
    if args.run:
        act, _ = load_trained(args.run, env=env)
        name = args.run
    else:
        act = random_policy(args.seed) if args.agent == "random" else scripted_policy()
        name = args.agent
    result = evaluate_agent(act, env, args.episodes, seed=args.seed, keep_frames=bool(args.video))
    frames = result.pop("frames", None)
    if args.video:
        write_video(args.video, frames, fps=env.metadata.get("render_fps", 15))
    env.close()
    result.pop("returns")
    if args.json:
        print(json.dumps({"agent": name, "env_id": env_id, **result}))
        return 0
    print(f"{name} on {env_id} ({args.episodes} episodes)")
    print(f"  return          {result['mean_return']:.2f} +- {result['std_return']:.2f}")
    print(f"  episode length  {result['mean_length']:.1f}")
    print(f"  unsafe / 1000   {result['unsafe_per_1000']:.2f}")
    if "mean_distance_before_unsafe" in result:
        print(f"  distance before first unsafe event  {result['mean_distance_before_unsafe']:.0f} m")
    if args.video:
        print(f"  video           {args.video}")
    return 0
