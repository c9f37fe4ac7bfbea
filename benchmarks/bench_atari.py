"""Steps per second of rlgan/Atari-v0 against the same pipeline by hand and SB3's make_atari_env.

    python benchmarks/bench_atari.py [--seconds 10] [--quick] [--game Breakout]
"""

from __future__ import annotations

import argparse

import common  # noqa: F401  (sets the dummy SDL driver)
import gymnasium
import numpy as np

import rlgan  # noqa: F401
from common import machine, single_env_stepper, steps_per_second, table, vector_env_stepper


def by_hand(game: str) -> gymnasium.Env:
    """The Nature-DQN pipeline assembled directly from ale-py and Gymnasium's wrappers."""
    import ale_py

    gymnasium.register_envs(ale_py)
    env = gymnasium.make(f"ALE/{game}-v5", frameskip=1)
    env = gymnasium.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
    return gymnasium.wrappers.FrameStackObservation(env, 4)


def sb3_stepper(game: str, n_envs: int, seed: int = 0):
    """SB3's ``make_atari_env`` (AtariWrapper in a DummyVecEnv) with its 4-frame stack."""
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    env = VecFrameStack(make_atari_env(f"ALE/{game}-v5", n_envs=n_envs, seed=seed), 4)
    env.reset()
    rng = np.random.default_rng(seed)

    def step() -> int:
        env.step(rng.integers(env.action_space.n, size=n_envs))
        return n_envs

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="1 second per measurement")
    parser.add_argument("--game", default="Breakout")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds

    ours = steps_per_second(single_env_stepper(gymnasium.make("rlgan/Atari-v0", game=args.game)), seconds)
    hand = steps_per_second(single_env_stepper(by_hand(args.game)), seconds)
    rows = [("rlgan/Atari-v0, single env", f"{ours:,.0f}", "same pipeline by hand",
             f"{hand:,.0f}", f"{ours / hand:.3f}", f"overhead {100 * (1 - ours / hand):+.1f}% (target <= 5%)")]
    for n_envs in (8, 16):
        vector = gymnasium.make_vec("rlgan/Atari-v0", num_envs=n_envs,
                                    vectorization_mode="vector_entry_point", game=args.game)
        rate = steps_per_second(vector_env_stepper(vector), seconds)
        vector.close()
        anchor = steps_per_second(sb3_stepper(args.game, n_envs), seconds, warmup=3)
        rows.append((f"rlgan/Atari-v0, {n_envs} envs (ale-py native vector)", f"{rate:,.0f}",
                     f"SB3 make_atari_env, {n_envs} envs", f"{anchor:,.0f}", f"{rate / anchor:.2f}", ""))
    print(f"\nAtari benchmark, {args.game} ({machine()}, {seconds:g} s per measurement)\n")
    print(table(rows, ("rlgan", "steps/s", "anchor", "steps/s", "ratio", "note")))


if __name__ == "__main__":
    main()
