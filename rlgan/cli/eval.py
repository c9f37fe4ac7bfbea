"""``rlgan eval``: evaluate an agent: a trained run or a baseline."""

from __future__ import annotations

import argparse
import json

from rlgan.cli.common import BASELINE_AGENTS, add_agent_argument, add_env_arguments, env_kwargs_from


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate an agent (a run of rlgan train, random or scripted): return, "
                     "length, unsafe/1000",
        description="Evaluate --agent: the best checkpoint of a run of rlgan train on its env "
                    "(or --env), or the baseline random or scripted on --env. Episode e resets "
                    "with seed + e.")
    add_agent_argument(parser, "--run", default=None)
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

    baseline = args.agent in BASELINE_AGENTS
    if args.video:
        check_video_path(args.video)
    if baseline:
        if not args.env:
            raise ValueError(f"--agent needs --env for the baseline {args.agent}")
        env_id, env_kwargs = args.env, env_kwargs_from(args)
    else:
        config = Run(args.agent).config()
        env_id = args.env or config["env_id"]
        env_kwargs = {**config["env_kwargs"], **env_kwargs_from(args)}
    render_mode = "human" if args.render else ("rgb_array" if args.video else None)
    env = make_env(env_id, render_mode=render_mode, **env_kwargs)
    if baseline:
        act = random_policy(args.seed) if args.agent == "random" else scripted_policy()
    else:
        act, _ = load_trained(args.agent, env=env)
    result = evaluate_agent(act, env, args.episodes, seed=args.seed, keep_frames=bool(args.video))
    frames = result.pop("frames", None)
    if args.video:
        write_video(args.video, frames, fps=env.metadata.get("render_fps", 15))
    env.close()
    result.pop("returns")
    if args.json:
        print(json.dumps({"agent": args.agent, "env_id": env_id, **result}))
        return 0
    print(f"{args.agent} on {env_id} ({args.episodes} episodes)")
    print(f"  return          {result['mean_return']:.2f} +- {result['std_return']:.2f}")
    print(f"  episode length  {result['mean_length']:.1f}")
    print(f"  unsafe / 1000   {result['unsafe_per_1000']:.2f}")
    if "mean_distance_before_unsafe" in result:
        print(f"  distance before first unsafe event  {result['mean_distance_before_unsafe']:.0f} m")
    if args.video:
        print(f"  video           {args.video}")
    return 0
