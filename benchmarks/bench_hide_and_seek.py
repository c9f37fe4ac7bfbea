"""Steps per second of rlgan/HideAndSeek-v0 against MiniGrid and MPE2's simple_tag.

    python benchmarks/bench_hide_and_seek.py [--seconds 10] [--quick]

Needs the peers: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse

import common  # noqa: F401  (sets the dummy SDL driver)
import gymnasium
import numpy as np

import rlgan  # noqa: F401
from common import machine, single_env_stepper, steps_per_second, table, vector_env_stepper


def parallel_stepper(env, seed: int = 0):
    """Joint steps of a PettingZoo parallel env with random actions."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)

    def step() -> int:
        actions = {agent: int(rng.integers(env.action_space(agent).n)) for agent in env.agents}
        env.step(actions)
        if not env.agents:
            env.reset()
        return 1

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="1 second per measurement")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds

    import minigrid
    from mpe2 import simple_tag_v3

    from rlgan.envs.hide_and_seek import parallel_env

    gymnasium.register_envs(minigrid)
    single = steps_per_second(single_env_stepper(gymnasium.make("rlgan/HideAndSeek-v0")), seconds)
    minigrid_rate = steps_per_second(single_env_stepper(gymnasium.make("MiniGrid-MultiRoom-N6-v0")), seconds)
    joint = steps_per_second(parallel_stepper(parallel_env()), seconds)
    mpe = steps_per_second(parallel_stepper(simple_tag_v3.parallel_env()), seconds)
    batched = steps_per_second(vector_env_stepper(gymnasium.make_vec(
        "rlgan/HideAndSeek-v0", num_envs=1024, vectorization_mode="vector_entry_point")), seconds, warmup=3)
    rows = [
        ("rlgan/HideAndSeek-v0, single env (scripted seeker)", f"{single:,.0f}", "MiniGrid-MultiRoom-N6-v0", f"{minigrid_rate:,.0f}", f"{single / minigrid_rate:.2f}x", ">= 2x"),
        ("rlgan hide-and-seek PettingZoo parallel, joint steps", f"{joint:,.0f}", "MPE2 simple_tag_v3 parallel", f"{mpe:,.0f}", f"{joint / mpe:.2f}x", ">= 2x"),
        ("rlgan/HideAndSeek-v0, 1024 grids via make_vec", f"{batched:,.0f}", "-", "-", "-", ">= 500,000 steps/s"),
    ]
    print(f"\nHide-and-seek benchmark ({machine()}, {seconds:g} s per measurement)\n")
    print(table(rows, ("rlgan", "steps/s", "anchor", "steps/s", "ratio", "target")))


if __name__ == "__main__":
    main()
