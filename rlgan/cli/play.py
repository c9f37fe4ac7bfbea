"""``rlgan play``: a person plays an rlgan game with the keyboard (and may record it)."""

from __future__ import annotations

import argparse

from rlgan.cli.common import add_env_arguments, env_kwargs_from, resolve_shield
from rlgan.make import GAME_IDS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play", help="play driving, hide-and-seek or atari with the keyboard",
        description="Play in a pygame window: arrow keys steer/move, Escape or closing the "
                    "window quits. With --record DIR the transitions are saved as a dataset.")
    parser.add_argument("name", metavar="GAME", choices=sorted(GAME_IDS),
                        help="which game: %(choices)s")
    add_env_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000, help="stop after this many steps")
    parser.add_argument("--record", metavar="DIR", help="record the transitions to this dataset")
    parser.add_argument("--shield", help="correct unsafe actions with this shield: a shield "
                        "directory (rlgan shield train), a safety run (rlgan safety train) or oracle")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlgan.data.format import TransitionWriter
    from rlgan.data.record import make_policy, record
    from rlgan.make import make_env

    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    env_id = GAME_IDS[args.name]
    env_kwargs = env_kwargs_from(args)
    env = make_env(env_id, render_mode="human", **env_kwargs)
    if args.shield:
        from rlgan.safety.models import shielded_env

        if args.record:
            raise ValueError("--record with --shield would record the actions of the pressed keys, "
                             "not the shielded actions; record without --shield")
        search, depth, threshold = resolve_shield(args.shield)
        env = shielded_env(env, search, threshold=threshold, **({} if depth is None else {"depth": depth}))
    policy = make_policy("human", env, seed=args.seed)
    writer = None
    if args.record:
        metadata = {
            "env_id": env_id, "env_kwargs": env_kwargs, "seed": args.seed, "policy": "human",
            "epsilon": 0.0, "obs_shape": list(env.observation_space.shape),
            "obs_dtype": str(env.observation_space.dtype), "n_actions": int(env.action_space.n),
        }
        writer = TransitionWriter(args.record, metadata)
    try:
        result = record(env, policy, writer, args.steps, seed=args.seed, progress=False)
    finally:
        if writer is not None:
            writer.close()
        env.close()
    returns = ", ".join(f"{value:.1f}" for value in result.episode_returns) or "none finished"
    print(f"played {result.transitions} steps, {result.unsafe_steps} unsafe; episode returns: {returns}")
    if args.record:
        print(f"recorded to {args.record}")
    return 0
