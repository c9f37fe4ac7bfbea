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
                    "with seed + e. A self-play run (rlgan train --teams): each team against "
                    "scripted and random opponents, beside the baselines, and the cross-play "
                    "matrix of snapshots, --episodes games each.")
    add_agent_argument(parser, "--run", default=None)
    parser.add_argument("--env", help="env id (default: the run's)")
    add_env_arguments(parser)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", choices=["human"], help="watch in a pygame window")
    parser.add_argument("--video", help="write the episodes to this .mp4 or .gif")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--snapshots", type=int, default=5,
                        help="self-play runs: snapshots of each team in the cross-play matrix")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.agents.evaluation import evaluate_agent, random_policy, scripted_policy
    from rlgan.agents.training import Run, load_trained
    from rlgan.make import make_env
    from rlgan.video import check_video_path, write_video

    baseline = args.agent in BASELINE_AGENTS
    if not baseline and Run(args.agent).config()["algo"] == "ppo":
        return _evaluate_teams(args)
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


def _evaluate_teams(args: argparse.Namespace) -> int:
    from rlgan.agents.team_evaluation import evaluate_teams

    if args.env or args.env_kwargs or args.render or args.video:
        raise ValueError("a self-play run is evaluated on its own env; leave out --env, "
                         "--env-kwargs, --render and --video (rlgan plot draws its games)")
    result = evaluate_teams(args.agent, args.episodes, args.seed, args.snapshots)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.agent}: a team's mean return per episode +- its standard error "
          f"({args.episodes} games; paired: learned minus scripted, game by game)")
    for team, players in result["teams"].items():
        print(f"  {team:<8} {'vs scripted':>16} {'vs random':>16}")
        for name, scores in players.items():
            errors = result["stderr"][team][name]
            print(f"    {name:<8} " + " ".join(f"{scores[o]:>8.2f} +- {errors[o]:<5.2f}"
                                              for o in ("scripted", "random")))
        paired = result["learned_minus_scripted"][team]
        print(f"    {'paired':<8} " + " ".join(
            f"{paired[o][0]:>+8.2f} +- {paired[o][1]:<5.2f}" for o in ("scripted", "random")))
    if "cross_play" in result:
        cross = result["cross_play"]
        print("  cross-play: hider return, hider snapshot (rows) x seeker snapshot (columns)")
        print("    " + " " * 8 + "".join(f"{u:>8}" for u in cross["seeker_updates"]))
        for update, row in zip(cross["hider_updates"], cross["hider_return"]):
            print(f"    {update:>8}" + "".join(f"{value:>8.1f}" for value in row))
    return 0
