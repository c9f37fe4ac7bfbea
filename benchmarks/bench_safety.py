"""The learned shield of ``rlgan shield train``: unsafe events removed, transfer, latency, time.

    python benchmarks/bench_safety.py --shield DIR [--test-maps night] [--second-shield DIR2]
        [--episodes 120] [--second-episodes 200] [--timing-states 40] [--threads 2]
        [--compile] [--time-demo] [--quick]

``DIR`` is a shield directory of ``rlgan shield train`` on ``rlgan/Driving-v0`` (its agent,
env options and chosen search depth come from its ``settings.json`` and ``shield.json``). On
the map the shield was trained on and on maps it never saw, the agent alone, under the learned
shield and under the oracle shield (the true simulator searched as far ahead as the learned
shield sees) drive the same episodes (ordinary ones, no hazard starts); each shielded row gives
the fraction of the agent's unsafe events removed and of its return kept, with standard errors.
``--second-shield`` does the same for a shield of another env family. Latency is timed at the
shield's default depth on ``--timing-states`` decision states of its agent (every 20th step),
the learned search and the oracle taking turns at every state. The time rows read each
shield's stage times from its ``progress.json``; ``--time-demo`` also times ``rlgan demo``.
Targets (the issue of the learned shield as a product): day >= 80% removed keeping >= 100% of
the return, night >= 70% and >= 100%, each on >= 50 unsafe events of the agent; the second
family >= 60% where the oracle removes >= 90%; latency <= 30 ms on 2 CPU cores; demo <= 2 min.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import common  # noqa: F401  (sets the dummy SDL driver)
import numpy as np
import torch

import rlgan  # noqa: F401
from common import machine, table
from rlgan.make import make_env
from rlgan.pipeline import ShieldDir, load_settings
from rlgan.pipeline.comparison import compare_shields
from rlgan.safety.evaluation import percent_with_error
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.policies import load_policy
from rlgan.safety.search import SearchConfig
from rlgan.envs.registration import DRIVING_ID as DRIVING

DRIVING_TARGETS = {"train": ">= 80% removed, >= 100% of the return", "test": ">= 70% removed, >= 100% of the return"}


def comparison_lines(label: str, rows: list[dict], target: str) -> list[tuple[str, str, str, str]]:
    """Table lines of :func:`compare_shields` rows ``agent``, ``gan_shield``, ``oracle_shield``."""
    agent, gan, oracle = rows
    return [
        (f"{label}: unsafe events (per 1000 steps) agent / GAN / oracle",
         f"{agent['unsafe_events']} ({agent['unsafe_per_1000']:.2f}) / {gan['unsafe_events']} "
         f"({gan['unsafe_per_1000']:.2f}) / {oracle['unsafe_events']} ({oracle['unsafe_per_1000']:.2f})",
         f"{agent['episodes']} episodes, {agent['steps']} agent steps", "-"),
        (f"{label}: unsafe events removed by the GAN shield", percent_with_error(gan["removed"], gan["removed_stderr"]),
         f"oracle {percent_with_error(oracle['removed'], oracle['removed_stderr'])}", target),
        (f"{label}: return kept by the GAN shield", percent_with_error(gan["return_kept"], gan["return_kept_stderr"]),
         f"agent {agent['return']:.1f}, GAN {gan['return']:.1f}, oracle {oracle['return']:.1f}", "-"),
        (f"{label}: interventions/1000 GAN / oracle",
         f"{gan['interventions_per_1000']:.1f} / {oracle['interventions_per_1000']:.1f}", "-", "-"),
    ]


def timing_states(env_id: str, env_kwargs: dict, agent: str, history: int, count: int, seed: int,
                  stride: int = 20) -> list[tuple[np.ndarray, object]]:
    """``count`` decision states of ``agent``: every ``stride``-th step of episodes reset with
    ``seed``, ``seed + 1``, ... as ``(frames, simulator state)``, frames uint8
    ``(history, H, W, C)`` oldest first (the first frame repeated at the start)."""
    env = make_env(env_id, **env_kwargs)
    policy = load_policy(agent, env, seed)
    states: list[tuple[np.ndarray, object]] = []
    for episode in itertools.count():
        observation, _ = env.reset(seed=seed + episode)
        frames = deque([observation] * history, maxlen=history)
        for step in itertools.count():
            if step % stride == 0:
                states.append((np.stack(frames), env.unwrapped.get_state()))
                if len(states) == count:
                    return states
            observation, _, terminated, truncated, _ = env.step(policy.act(observation, env))
            frames.append(observation)
            if terminated or truncated:
                break
    return states


def latency_ms(searches: dict[str, Callable], states: list, repeats: int) -> dict[str, dict[str, float]]:
    """Wall-clock ms of each named search over the ``states`` of :func:`timing_states`: the
    median and the 90th percentile over states of each state's median over ``repeats``, and
    the mean number of predicted frames (``nodes``), after a warm-up. The searches take turns
    at every state, so a shared machine's changing speed affects them alike."""
    for search in searches.values():
        for frames, state in states[:3]:
            search(frames, state)
    per_state: dict[str, list[float]] = {name: [] for name in searches}
    nodes: dict[str, list[int]] = {name: [] for name in searches}
    for frames, state in states:
        for name, search in searches.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                result = search(frames, state)
                times.append(1000.0 * (time.perf_counter() - start))
            per_state[name].append(statistics.median(times))
            nodes[name].append(result.nodes)
    return {name: {"median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
                   "nodes": float(np.mean(nodes[name]))}
            for name, values in per_state.items()}


def latency_lines(shield: ShieldDir, states_wanted: int, compiled: bool, seed: int) -> list[tuple]:
    """The decision latency of the shield's default search and of the oracle at its lookahead."""
    settings = load_settings(shield.root)
    search, _ = shield.load_search(device="cpu", compiled=compiled)
    states = timing_states(settings.env_id, settings.env_kwargs, shield.agent_path(settings.agent), search.history,
                           states_wanted, seed)
    oracle = OracleSearch.for_env(make_env(settings.env_id, **settings.env_kwargs),
                                  SearchConfig(depth=shield.lookahead()))
    timed = latency_ms({"gan": lambda frames, state: search.search(frames),
                        "oracle": lambda frames, state: oracle.search_state(state)}, states, 5)
    oracle.close()
    gan = timed["gan"]
    return [(f"decision latency, learned search at its default depth {search.config.depth} "
             f"({settings.env_id}, {torch.get_num_threads()} threads{', compiled' if compiled else ''}; "
             f"median and p90 over {len(states)} states of its agent)",
             f"{gan['median']:.1f} ms (p90 {gan['p90']:.1f}), {gan['nodes']:.1f} frames",
             f"oracle at depth {shield.lookahead()}: {timed['oracle']['median']:.1f} ms", "<= 30 ms")]


def time_lines(shields: list[ShieldDir], time_demo: bool) -> list[tuple]:
    """Wall time of each shield's training (from its progress.json) and of ``rlgan demo``; the
    demo budget's 30-minute target is that of ``rlgan demo --from-scratch``, on driving."""
    lines = []
    for shield in shields:
        settings = load_settings(shield.root)
        stages = shield.progress()
        minutes = sum(stage["seconds"] for stage in stages.values()) / 60
        targets = {"tiny": "<= 2 min", "demo": "<= 30 min" if settings.env_id == DRIVING else "reported"}
        target = targets.get(settings.budget, "reported")
        lines.append((f"rlgan shield train --budget {settings.budget} ({settings.env_id})",
                      f"{minutes:.1f} min" if stages else "n/a (no progress.json)", "-", target))
    if time_demo:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rlgan", "demo", "--out", out], check=True,
                           stdout=subprocess.DEVNULL)
            lines.append(("rlgan demo (bundled weights)", f"{time.perf_counter() - start:.0f} s", "-", "<= 120 s"))
    return lines


def driving_lines(shield: ShieldDir, test_maps: list[str], episodes: int, max_steps: int, seed: int) -> list[tuple]:
    """The rows on the shield's own map and on each test map."""
    settings = load_settings(shield.root)
    train_map = settings.env_kwargs.get("map", "day")
    unseen = [name for name in test_maps if name == train_map]
    if unseen:
        raise SystemExit(f"--test-maps {unseen[0]} is the map the shield was trained on")
    lines = []
    for label, map_name in [("train", train_map)] + [("test", name) for name in test_maps]:
        env_kwargs = {**settings.env_kwargs, "map": map_name, "max_steps": max_steps}
        rows = compare_shields(shield, DRIVING, env_kwargs, shield.agent_path(settings.agent), episodes, seed,
                               progress=lambda name: print(f"  {map_name}: {name}", flush=True))
        lines += comparison_lines(f"driving, {map_name} ({'trained' if label == 'train' else 'unseen'})",
                                  rows, DRIVING_TARGETS[label])
    return lines


def second_family_lines(shield: ShieldDir, episodes: int, seed: int) -> list[tuple]:
    """The rows on the env of a shield of another env family."""
    settings = load_settings(shield.root)
    rows = compare_shields(shield, settings.env_id, settings.env_kwargs, shield.agent_path(settings.agent),
                           episodes, seed,
                           progress=lambda name: print(f"  {settings.env_id}: {name}", flush=True))
    return comparison_lines(f"{settings.env_id} {settings.env_kwargs}", rows,
                            ">= 60% removed where the oracle removes >= 90%")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shield", required=True, help="shield directory (rlgan shield train) on rlgan/Driving-v0")
    parser.add_argument("--test-maps", nargs="*", default=["night"], help="maps the shield never saw")
    parser.add_argument("--second-shield", help="shield directory of another env family")
    parser.add_argument("--episodes", type=int, default=120, help="driving episodes per row")
    parser.add_argument("--max-steps", type=int, default=1000, help="driving episode length")
    parser.add_argument("--second-episodes", type=int, default=200, help="episodes per row on the second env")
    parser.add_argument("--timing-states", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="time the generator through torch.compile")
    parser.add_argument("--time-demo", action="store_true", help="also time rlgan demo")
    parser.add_argument("--seed", type=int, default=5_000_000, help="evaluation episodes reset with seed + e")
    parser.add_argument("--quick", action="store_true", help="2 episodes of at most 100 steps, 8 timing states")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    episodes, second_episodes = (2, 2) if args.quick else (args.episodes, args.second_episodes)
    max_steps = 100 if args.quick else args.max_steps
    shield = ShieldDir(args.shield)
    shields = [shield] + ([ShieldDir(args.second_shield)] if args.second_shield else [])
    for each in shields:
        try:
            load_settings(each.root)
        except (OSError, ValueError, TypeError) as error:
            raise SystemExit(f"bench_safety.py: {error}") from None
    lines = driving_lines(shield, args.test_maps, episodes, max_steps, args.seed)
    if args.second_shield:
        lines += second_family_lines(shields[1], second_episodes, args.seed)
    lines += latency_lines(shield, 8 if args.quick else args.timing_states, args.compile, args.seed)
    lines += time_lines(shields, args.time_demo)
    print(f"\nLearned shield benchmark ({machine()})\n")
    print(table(lines, ("measure", "rlgan", "anchor (same run)", "target")))


if __name__ == "__main__":
    main()
