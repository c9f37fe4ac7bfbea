"""``rlgan train``: train a DQN or Q-learning agent, or both hide-and-seek teams by self-play
(``--teams``), into a run directory."""

from __future__ import annotations

import argparse
import json

from rlgan.cli.common import add_env_arguments, env_kwargs_from


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a DQN or Q-learning agent, or hide-and-seek teams by self-play "
                      "(checkpoints, TensorBoard, --resume)",
        description="Train into --run DIR: progress bar, TensorBoard logs in DIR/tb, an "
                    "evaluation on a separate env every --eval-freq steps, the last and best "
                    "checkpoints. --resume continues an interrupted run exactly. With --teams, "
                    "hide-and-seek teams learn together by self-play PPO (rlgan.agents.selfplay): "
                    "per-update statistics in DIR/teams.csv, snapshots in DIR/pool.")
    parser.add_argument("--algo", choices=["dqn", "qlearning", "ppo"],
                        help="required for a new run, except with --teams (ppo)")
    parser.add_argument("--teams", help="hide-and-seek teams that learn by self-play, e.g. "
                                        "hider,seeker (a team left out plays scripted)")
    parser.add_argument("--env", help="Gymnasium id, e.g. rlgan/Driving-v0 (required for a new run)")
    add_env_arguments(parser)
    parser.add_argument("--hp", nargs="*", action="extend", default=[], metavar="K=V",
                        help="hyperparameter overrides (see rlgan/agents/hyperparams.py)")
    parser.add_argument("--steps", type=int, help="total environment steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--n-envs", type=int, default=None,
                        help="envs DQN steps together (rlgan envs batch them in numpy); default: "
                             "the tuned value in rlgan/agents/hyperparams.py, else 1")
    parser.add_argument("--eval-freq", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.agents.training import AgentConfig, Run, train
    from rlgan.config import parse_kv

    if args.teams is not None or args.algo == "ppo" or (
            args.resume and Run(args.run).config()["algo"] == "ppo"):
        return _run_teams(args)
    if args.resume:
        result = train(args.run, resume=True, steps=args.steps, progress=not args.no_progress)
    else:
        if args.algo is None or args.env is None or args.steps is None:
            raise ValueError("a new run needs --algo, --env and --steps")
        config = AgentConfig(algo=args.algo, env_id=args.env, steps=args.steps, seed=args.seed,
                             env_kwargs=env_kwargs_from(args), hp_overrides=parse_kv(args.hp),
                             eval_freq=args.eval_freq, eval_episodes=args.eval_episodes,
                             device=args.device, n_envs=args.n_envs)
        result = train(args.run, config, progress=not args.no_progress)
    print(json.dumps({k: v for k, v in result.items() if k != "returns"}))
    return 0


def _run_teams(args: argparse.Namespace) -> int:
    from rlgan.agents.team_run import TeamRunConfig, train_teams
    from rlgan.config import parse_kv

    if args.resume:
        result = train_teams(args.run, resume=True, steps=args.steps, progress=not args.no_progress,
                             teams=args.teams, env_kwargs=env_kwargs_from(args))
    else:
        if args.teams is None:
            raise ValueError("--algo ppo trains hide-and-seek teams; pass --teams hider,seeker")
        if args.algo not in (None, "ppo"):
            raise ValueError(f"--teams trains with ppo, not {args.algo}; leave out --algo")
        if args.env is None or args.steps is None:
            raise ValueError("a new run needs --env and --steps")
        config = TeamRunConfig(teams=args.teams, steps=args.steps, env_id=args.env, seed=args.seed,
                               env_kwargs=env_kwargs_from(args), hp_overrides=parse_kv(args.hp))
        result = train_teams(args.run, config, progress=not args.no_progress)
    print(json.dumps(result))
    return 0
