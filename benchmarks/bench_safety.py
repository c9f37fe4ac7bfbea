"""The SAD-GAN shield: unsafe events removed from a DQN driver, transfer, latency, other games.

    python benchmarks/bench_safety.py --dqn RUN --safety RUN [--worldmodel RUN] [--threshold P]
        [--depth D] [--required-depth D] [--latency-depth D] [--compile] [--latency-only]
        [--baseline-safety RUN] [--quick]
    python benchmarks/bench_safety.py --from-scratch --quick      # trains tiny runs first

On ``rlgan/Driving-v0``: the DQN agent alone, with the GAN shield (world model + safety
classifier, ``--safety`` names the classifier run, which records its world model) and with the
oracle shield (the same search in the true simulator), on the training map and on a map the
models never saw. Targets (issue 7): the GAN shield removes >= 70% of the agent's unsafe events
on the training map keeping >= 90% of its return, >= 50% on the unseen map; a depth-3 search
at 64x64 decides in <= 30 ms on 2 CPU cores. Also hide-and-seek (the hider shielded from
being seen) and one Atari game (life loss), with the oracle shield. ALE lowers the life
counter only a few agent steps after a life is lost for good (Breakout: 4 steps), so a
shallow search sees every Atari life loss when no action can avoid it any more.

Latency is timed on ``--timing-states`` decision states of the DQN agent on the training map
(every 20th step of its episodes), the default depth-first search beside the breadth-first one
(the same safe depths from the whole tree) and the oracle, taking turns at every state.

``--from-scratch`` runs the demo's pipeline (``rlgan demo --from-scratch``: record, train the
world model, the safety classifier and a DQN agent) into ``--workdir`` first, so the benchmark
runs end to end without prepared runs. ``--compile`` runs the GAN shield's generator through
``torch.compile`` and times the search both ways; ``--latency-only`` prints only the latency rows;
``--baseline-safety RUN`` times another safety run's search in the same rounds (the searches
take turns, so a shared machine's changing speed affects them alike).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import common  # noqa: F401  (sets the dummy SDL driver)
import numpy as np
import torch

import rlgan  # noqa: F401
from common import machine, table
from rlgan.data import DatasetError
from rlgan.data.outcomes import load_data_metadata
from rlgan.demo.pipeline import BUDGETS, run_pipeline
from rlgan.envs.driving import DrivingConfig
from rlgan.io import read_json
from rlgan.make import make_env
from rlgan.safety.evaluation import compare
from rlgan.safety.models import check_env_fits, load_learned_search
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.policies import load_policy
from rlgan.safety.search import MAX_DEPTH, LearnedSearch, SearchConfig
from rlgan.safety.shield import Shield

DRIVING = "rlgan/Driving-v0"


def from_scratch(workdir: Path, quick: bool) -> tuple[Path, Path, Path]:
    """The demo's pipeline (``rlgan demo --from-scratch``, tiny budget with ``quick``) in
    ``workdir``; returns ``(dqn_run, safety_run, worldmodel_run)``."""
    weights = run_pipeline(workdir, BUDGETS["tiny" if quick else "default"])
    return weights.agent, weights.safety, weights.worldmodel


def maps_trained_on(safety_data: str, worldmodel_run: str | None) -> set[str] | None:
    """Driving maps in the classifier's dataset and in every dataset of the world model's
    chain of runs (``--init-from``); None when one of them is no longer on disk."""
    maps: set[str] = set()
    dataset, run = safety_data, worldmodel_run
    try:
        while dataset:
            metadata, _ = load_data_metadata(dataset)
            for variant in metadata.get("variants") or [{}]:
                maps.add(variant.get("map", metadata["env_kwargs"].get("map", DrivingConfig.map)))
            info = read_json(Path(run) / "run.json") if run else {}
            dataset, run = info.get("data", {}).get("dataset"), info.get("init_from")
    except (DatasetError, FileNotFoundError):
        return None
    return maps


def reduction(alone: float, shielded: float) -> float:
    """Fraction of unsafe events removed (1.0 when there were none to remove)."""
    return 1.0 - shielded / alone if alone > 0 else 1.0


def shield_rows(env_id: str, env_kwargs: dict, agent: str, shields: dict, episodes: int,
                seed: int, depth: int, required_depth: int | None = None) -> dict[str, dict]:
    """Rows ``agent`` and one per shield (name -> search, or ``"oracle"`` for a depth-``depth``
    oracle search), keyed by name. The learned shields keep the agent's action at
    ``required_depth`` (default: ``depth``); the oracle's always requires the full depth."""
    env = make_env(env_id, **env_kwargs)
    policy = load_policy(agent, env, seed)

    def make_policy():
        return load_policy(agent, env, seed) if agent in ("random", "scripted") else policy

    oracle = OracleSearch.for_env(env, SearchConfig(depth=depth))  # also measures every row
    built = {name: Shield(oracle) if search == "oracle" else Shield(search, required_depth=required_depth)
             for name, search in shields.items()}
    rows = compare(env, make_policy, built, episodes, seed, probe=oracle,
                   progress=lambda name: print(f"  {env_id} {env_kwargs}: {name}", flush=True))
    return {row["name"]: row for row in rows}


def timing_states(dqn: str, map_name: str, history: int, count: int, seed: int,
                  stride: int = 20) -> list[tuple[np.ndarray, object]]:
    """``count`` decision states of the DQN agent driving ``map_name``: every ``stride``-th
    step of episodes reset with ``seed``, ``seed + 1``, ... as ``(frames, simulator state)``,
    frames uint8 ``(history, H, W, C)`` oldest first (the first frame repeated at the start)."""
    env = make_env(DRIVING, map=map_name, max_steps=1000)
    policy = load_policy(dqn, env, seed)
    states: list[tuple[np.ndarray, object]] = []
    episode = 0
    while len(states) < count:
        observation, _ = env.reset(seed=seed + episode)
        frames = deque([observation] * history, maxlen=history)
        for step in itertools.count():
            if step % stride == 0:
                states.append((np.stack(frames), env.unwrapped.get_state()))
                if len(states) == count:
                    break
            observation, _, terminated, truncated, _ = env.step(policy.act(observation, env))
            frames.append(observation)
            if terminated or truncated:
                break
        episode += 1
    return states


def latency_ms(searches: dict[str, Callable], states: list, repeats: int) -> dict[str, dict[str, float]]:
    """Wall-clock ms of each named search over the ``states`` of :func:`timing_states`: the
    median and the 90th percentile over states of each state's median over ``repeats``, and
    the mean number of predicted frames (``nodes``), after a warm-up.

    The searches take turns at every state, so every one is timed through the same spells of
    a shared machine's speed and their ratios stay fair.
    """
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dqn", help="DQN run on rlgan/Driving-v0 (rlgan train)")
    parser.add_argument("--safety", help="safety run (rlgan safety train --worldmodel ...)")
    parser.add_argument("--worldmodel", help="world-model run (default: the safety run's)")
    parser.add_argument("--from-scratch", action="store_true", help="train tiny runs in --workdir first")
    parser.add_argument("--workdir", default="benchmarks/runs/safety_from_scratch")
    parser.add_argument("--train-map", default="day")
    parser.add_argument("--test-map", default="night", help="a map the models never saw")
    parser.add_argument("--depth", type=int, default=3, help="search depth of the shields' rows")
    parser.add_argument("--threshold", type=float, help="P(unsafe) threshold (default: the safety run's)")
    parser.add_argument("--required-depth", type=int,
                        help="safe depth at which the GAN shield keeps the agent's action (default: --depth)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=1000, help="driving episode length")
    parser.add_argument("--atari-game", default="breakout")
    parser.add_argument("--atari-depth", type=int, help="search depth on Atari (default: --depth)")
    parser.add_argument("--hs-agent", default="random", help="hide-and-seek hider: run, random or scripted")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true",
                        help="run the generator through torch.compile (needs a C++ compiler)")
    parser.add_argument("--latency-only", action="store_true", help="only the decision-latency rows")
    parser.add_argument("--baseline-safety", metavar="RUN",
                        help="another safety run whose search is timed in the same rounds "
                             "(e.g. wider networks), printed beside the GAN search's latency")
    parser.add_argument("--latency-depth", type=int, default=3,
                        help="depth of the timed searches (the shields' rows search --depth)")
    parser.add_argument("--timing-states", type=int, default=40,
                        help="decision states of the DQN agent the latency is timed on")
    parser.add_argument("--seed", type=int, default=1000, help="evaluation episodes reset with seed + e")
    parser.add_argument("--quick", action="store_true", help="2 episodes of at most 300 steps")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    episodes = 2 if args.quick else args.episodes
    max_steps = 300 if args.quick else args.max_steps
    if args.from_scratch:
        dqn, safety, worldmodel = from_scratch(Path(args.workdir), args.quick)
        args.dqn, args.safety, args.worldmodel = str(dqn), str(safety), str(worldmodel)
    if not (args.dqn and args.safety):
        parser.error("give --dqn and --safety runs, or --from-scratch")
    if not 1 <= args.latency_depth <= MAX_DEPTH:
        parser.error(f"--latency-depth must be in 1..{MAX_DEPTH}, got {args.latency_depth}")
    if args.required_depth is not None and not 1 <= args.required_depth <= args.depth:
        parser.error(f"--required-depth must be in 1..{args.depth} (--depth), got {args.required_depth}")

    config = SearchConfig(depth=args.depth)
    gan, info = load_learned_search(args.safety, config, threshold=args.threshold, device="cpu",
                                    worldmodel_run=args.worldmodel, compiled=args.compile)
    trained_maps = maps_trained_on(info.data, args.worldmodel or info.worldmodel_run)
    print(f"safety run {args.safety} (env {info.env_id} {info.env_kwargs}), world model "
          f"{args.worldmodel or info.worldmodel_run}, DQN {args.dqn}; maps trained on: "
          f"{', '.join(sorted(trained_maps)) if trained_maps else 'unknown (datasets gone)'}", flush=True)
    if trained_maps and args.test_map in trained_maps:
        parser.error(f"--test-map {args.test_map} is among the maps the models were trained on")

    lines, shield_latency = [], []
    maps = () if args.latency_only else (("training map", args.train_map), ("unseen map", args.test_map))
    for label, map_name in maps:
        env_kwargs = {"map": map_name, "max_steps": max_steps}
        check_env_fits(info, args.safety, make_env(DRIVING, **env_kwargs))
        rows = shield_rows(DRIVING, env_kwargs, args.dqn, {"gan_shield": gan, "oracle_shield": "oracle"},
                           episodes, args.seed, args.depth, args.required_depth)
        alone, gan_row, oracle_row = rows["agent"], rows["gan_shield"], rows["oracle_shield"]
        shield_latency.append(gan_row["latency_ms"] - alone["latency_ms"])
        gan_cut = reduction(alone["unsafe_per_1000"], gan_row["unsafe_per_1000"])
        oracle_cut = reduction(alone["unsafe_per_1000"], oracle_row["unsafe_per_1000"])
        kept = gan_row["return"] / alone["return"] if alone["return"] > 0 else float("nan")
        target = ">= 70% and >= 90% of return" if label == "training map" else ">= 50%"
        lines.append((f"driving, {label} ({map_name}): unsafe/1000 agent / GAN / oracle",
                      f"{alone['unsafe_per_1000']:.2f} / {gan_row['unsafe_per_1000']:.2f} / {oracle_row['unsafe_per_1000']:.2f}",
                      "-", "-"))
        lines.append((f"driving, {label}: unsafe events removed by the GAN shield",
                      f"{100 * gan_cut:.0f}%", f"oracle {100 * oracle_cut:.0f}% (gap {100 * (oracle_cut - gan_cut):.0f} pp)",
                      target))
        lines.append((f"driving, {label}: return agent / GAN / oracle (kept by GAN)",
                      f"{alone['return']:.1f} / {gan_row['return']:.1f} / {oracle_row['return']:.1f}",
                      f"{100 * kept:.0f}% kept", ">= 90%" if label == "training map" else "-"))
        lines.append((f"driving, {label}: interventions/1000 GAN / oracle",
                      f"{gan_row['interventions_per_1000']:.1f} / {oracle_row['interventions_per_1000']:.1f}", "-", "-"))
        lines.append((f"driving, {label}: GAN false alarms/1000 (oracle would keep the action)",
                      f"{gan_row['false_alarms_per_1000']:.1f}", "-", "-"))
        lines.append((f"driving, {label}: misses/1000 agent / GAN / oracle (a truly safer action "
                      "existed)", f"{alone['misses_per_1000']:.1f} / {gan_row['misses_per_1000']:.1f} / "
                      f"{oracle_row['misses_per_1000']:.1f}", "-", "-"))

    states = timing_states(args.dqn, args.train_map, gan.history, 8 if args.quick else args.timing_states,
                           args.seed)
    timing = dataclasses.replace(gan.config, depth=args.latency_depth)
    oracle = OracleSearch.for_env(make_env(DRIVING, map=args.train_map), timing)
    deep = LearnedSearch(gan.predictor, gan.classifier, timing, gan.device)
    breadth = LearnedSearch(gan.predictor, gan.classifier,
                            dataclasses.replace(timing, strategy="breadth-first"), gan.device)
    searches = {"gan": lambda frames, state: deep.search(frames),
                "breadth": lambda frames, state: breadth.search(frames),
                "oracle": lambda frames, state: oracle.search_state(state)}
    if args.compile:
        eager, _ = load_learned_search(args.safety, timing, timing.threshold, device="cpu",
                                       worldmodel_run=args.worldmodel)
        searches["eager"] = lambda frames, state: eager.search(frames)
    if args.baseline_safety:
        baseline, _ = load_learned_search(args.baseline_safety, timing, timing.threshold,
                                          device="cpu", compiled=args.compile)
        searches["baseline"] = lambda frames, state: baseline.search(frames)
    latency = latency_ms(searches, states, 2 if args.quick else 5)
    gan_latency = latency["gan"]["median"]

    def timed(name: str) -> str:
        return f"{latency[name]['median']:.1f} ms ({latency[name]['median'] / gan_latency:.2f}x)"

    comparison = f"breadth-first {timed('breadth')}, {latency['breadth']['nodes']:.1f} frames"
    if args.compile:
        comparison += f"; eager {timed('eager')}"
    if args.baseline_safety:
        comparison += f"; {args.baseline_safety} {timed('baseline')}"
    comparison += f"; oracle {timed('oracle')}"
    lines.append((f"decision latency, depth-{args.latency_depth} GAN search (depth-first) at 64x64 on CPU, "
                  f"median over {len(states)} states of the DQN driving {args.train_map}; "
                  f"{latency['gan']['nodes']:.1f} predicted frames on average "
                  f"({torch.get_num_threads()} threads{', compiled' if args.compile else ''})",
                  f"{gan_latency:.1f} ms (p90 {latency['gan']['p90']:.1f})", comparison,
                  {3: "<= 30 ms", 5: "<= 10 ms on a GPU"}.get(args.latency_depth, "-")))
    if args.latency_only:
        print(f"\nSafety shield latency ({machine()})\n")
        print(table(lines, ("measure", "rlgan", "comparison", "target")))
        return
    lines.append(("mean GAN shield decision time in the driving rows (lazy: the agent's action "
                  "first)", f"{np.mean(shield_latency):.1f} ms", "-", "-"))

    hs = shield_rows("rlgan/HideAndSeek-v0", {}, args.hs_agent, {"oracle_shield": "oracle"},
                     episodes * 5, args.seed, args.depth)
    hs_cut = reduction(hs["agent"]["unsafe_per_1000"], hs["oracle_shield"]["unsafe_per_1000"])
    lines.append((f"hide-and-seek ({args.hs_agent} hider): seen/1000 agent / oracle shield",
                  f"{hs['agent']['unsafe_per_1000']:.0f} / {hs['oracle_shield']['unsafe_per_1000']:.0f}",
                  f"{100 * hs_cut:.0f}% removed", "oracle at least"))
    atari = shield_rows("rlgan/Atari-v0", {"game": args.atari_game, "max_steps": max_steps}, "random",
                        {"oracle_shield": "oracle"}, episodes, args.seed, args.atari_depth or args.depth)
    atari_cut = reduction(atari["agent"]["unsafe_per_1000"], atari["oracle_shield"]["unsafe_per_1000"])
    lines.append((f"atari {args.atari_game} (random agent): lives lost/1000 agent / oracle shield",
                  f"{atari['agent']['unsafe_per_1000']:.2f} / {atari['oracle_shield']['unsafe_per_1000']:.2f}",
                  f"{100 * atari_cut:.0f}% removed", "oracle at least"))

    print(f"\nSafety shield benchmark ({machine()}; {episodes} episodes per row, depth {args.depth}, "
          f"GAN shield threshold {gan.config.threshold}, required depth "
          f"{args.required_depth or args.depth})\n")
    print(table(lines, ("measure", "rlgan", "comparison", "target")))


if __name__ == "__main__":
    main()
