"""``rlgan shield train|eval``: the learned shield's whole recipe, and an agent alone and under
the GAN and oracle shields."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rlgan.cli.common import (
    BASELINE_AGENTS,
    ConfigDefault,
    add_agent_argument,
    add_config_options,
    add_env_arguments,
    add_renamed_argument,
    config_options,
    env_kwargs_from,
    resolve_shield,
)

SEARCH_CONFIG = "rlgan.safety.search:SearchConfig"
#: ``eval``'s search options: (flag, SearchConfig field, type or choices, help); the depth and
#: the threshold default to a shield directory's.
SEARCH_OPTIONS = [
    ("samples", "samples", int, "noise samples per node"),
    ("node-budget", "node_budget", int, "most nodes per search"),
    ("strategy", "strategy", ("depth-first", "breadth-first"),
     "order of both searches, learned and oracle (the same safe depths; depth-first takes far fewer steps)"),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "shield", help="evaluate an agent with the SAD-GAN safety shield",
        description="The shield keeps the agent's action when a game-tree search finds it safe "
                    "for --depth steps, else takes the safest action.")
    commands = parser.add_subparsers(dest="shield_command", metavar="{train,eval}", required=True)
    _add_train_parser(commands)
    _add_eval_parser(commands)


def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval", help="table: agent alone, gan_shield, oracle_shield",
        description="Rows: the agent alone; with the learned shield of --shield (a shield "
                    "directory from rlgan shield train, or a safety run from rlgan safety train, "
                    "which names its world model; row gan_shield); and with the oracle shield "
                    "searching the true simulator (row oracle_shield) when the env can save its "
                    "state. Columns: return, unsafe steps per 1000, mean true safe depth of the "
                    "actions taken, interventions per 1000 steps, decision latency.")
    evaluate.add_argument("--env", help="Gymnasium id (default: the safety run's env)")
    add_env_arguments(evaluate)
    add_agent_argument(evaluate)
    add_renamed_argument(evaluate, "--shield", "--model", required=True,
                         help="shield directory (rlgan shield train), safety run directory "
                              "(rlgan safety train) or oracle")
    evaluate.add_argument("--worldmodel", metavar="RUN", help="world-model run (default: the safety run's)")
    evaluate.add_argument("--episodes", type=int, default=5)
    depth = evaluate.add_argument("--depth", type=int, help="search depth, 1..8 (default: a shield "
                                  "directory's chosen depth, else %(config_default)s)")
    depth.config_default = ConfigDefault(SEARCH_CONFIG, "depth")
    evaluate.add_argument("--required-depth", type=int,
                          help="safe depth at which the agent's action is kept (default: --depth)")
    evaluate.add_argument("--threshold", type=float, help="P(unsafe) threshold (default: the shield's)")
    evaluate.set_defaults(func=run_eval,
                          config_fields=add_config_options(evaluate, SEARCH_CONFIG, SEARCH_OPTIONS))
    evaluate.add_argument("--no-oracle", action="store_true", help="leave out the oracle_shield row "
                          "and measure safe depth with the shields' own searches")
    evaluate.add_argument("--seed", type=int, default=0, help="episode e resets with seed + e")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--compile", action="store_true",
                          help="run the generator through torch.compile: a depth-3 search 1.2-1.4x "
                               "faster on 2 CPU cores, after compiling (a minute or two "
                               "the first time on a machine; needs a C++ compiler)")
    evaluate.add_argument("--json", action="store_true",
                          help="print {\"rows\": [...]}: each row with its steps, episodes and "
                               "unsafe events (in all and per episode, to pair rows of runs "
                               "on the same seeds) and, shielded, the fraction removed and of "
                               "the return kept with standard errors")


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="the whole learned-shield recipe for an env and an agent, into --out DIR",
        description="Collect outcome records of the agent's near-unsafe states (every action's true "
                    "outcome), train the world model and the safety classifier, choose the search "
                    "depth and threshold on held-out records, and evaluate the agent alone, under "
                    "the learned shield at each depth and under the oracle shield. DIR holds each "
                    "stage's output, settings.json (every setting) and report.md; --resume goes on "
                    "after the last finished stage. The env must save and restore its state "
                    "(get_state/set_state) and observe pixel frames.")
    train.add_argument("--env", help="Gymnasium id (default with --resume: the run's)")
    add_env_arguments(train)
    add_agent_argument(train)
    train.add_argument("--out", required=True, help="shield directory to write")
    train.add_argument("--budget", default="demo", choices=("tiny", "demo", "full"),
                       help="stage sizes: tiny checks the pipeline (under 2 min), demo about 20 min "
                            "on 2 CPU cores, full the best figures (hours) (default: %(default)s)")
    train.add_argument("--set", nargs="*", action="extend", default=[], metavar="SECTION.KEY=V",
                       help="override any setting of settings.json, e.g. classifier.steps=3000 "
                            "collect.outcomes.epsilon=0.1 evaluate.episodes=50")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    train.add_argument("--resume", action="store_true", help="go on after the last finished stage")
    train.add_argument("--overwrite", action="store_true", help="replace a shield in --out")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from rlgan.config import parse_kv
    from rlgan.pipeline import apply_overrides, default_settings, resume_settings, train_shield

    if args.env is None and not args.resume:
        raise ValueError("--env is required (it may be left out only with --resume)")
    if args.env is None:
        settings = resume_settings(args.out)
    else:
        settings = default_settings(args.env, env_kwargs_from(args), args.agent, args.budget,
                                    args.seed, args.device)
        settings = apply_overrides(settings, parse_kv(args.set))
    shield = train_shield(args.out, settings, resume=args.resume, overwrite=args.overwrite,
                          progress=not args.no_progress)
    print(shield.report.read_text())
    print(f"shield: {shield.root} (report: {shield.report})")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from rlgan.safety.evaluation import ROW_KEYS, evaluate_shields, format_table
    from rlgan.safety.policies import load_policy

    config, env_id, env, shields, probe = _load_shields(args)
    policy = load_policy(args.agent, env, args.seed)

    def make_policy():  # a baseline afresh for each row, so random ones replay
        return load_policy(args.agent, env, args.seed) if args.agent in BASELINE_AGENTS else policy

    def progress(name: str) -> None:
        if not args.json:
            print(f"running {name} ({args.episodes} episodes)...", file=sys.stderr)

    rows = evaluate_shields(env, make_policy, shields, args.episodes, args.seed, probe, progress)
    env.close()
    if probe is not None:
        probe.close()
    if args.json:
        counts = ("steps", "episodes", "unsafe_events", "removed", "removed_stderr", "return_kept",
                  "return_kept_stderr", "episode_unsafe")
        print(json.dumps({"rows": [{key: row[key] for key in (*ROW_KEYS, *counts) if key in row}
                                   for row in rows]}))
        return 0
    options = " ".join(f"{key}={value}" for key, value in env_kwargs_from(args).items())
    print(f"agent {args.agent} on {env_id} {options}".rstrip()
          + f", {args.episodes} episodes, depth {config.depth}, shield {args.shield}")
    print(format_table(rows))
    return 0


def _load_shields(args: argparse.Namespace) -> tuple[Any, str, Any, dict[str, Any], Any]:
    """The search settings, env id, env, shields by row name and oracle probe (None without
    one) of ``rlgan shield eval``."""
    from rlgan.device import resolve_device
    from rlgan.make import make_env
    from rlgan.safety.models import ORACLE, check_env_fits, load_learned_search
    from rlgan.safety.oracle import OracleSearch
    from rlgan.safety.search import SearchConfig
    from rlgan.safety.shield import Shield

    search, depth, threshold = resolve_shield(args.shield, args.depth, args.threshold)
    chosen = {name: value for name, value in (("depth", depth), ("threshold", threshold)) if value is not None}
    config = SearchConfig(**config_options(args, args.config_fields), **chosen)
    learned = info = None
    if search != ORACLE:
        learned, info = load_learned_search(search, config, threshold, resolve_device(args.device),
                                            args.worldmodel, args.compile)
    env_id = args.env or (info.env_id if info is not None else None)
    if env_id is None:
        raise ValueError("--shield oracle needs --env")
    env = make_env(env_id, **env_kwargs_from(args))
    shields, probe = {}, None
    if learned is not None:
        check_env_fits(info, args.shield, env)
        shields["gan_shield"] = Shield(learned, required_depth=args.required_depth)
    if search == ORACLE or not args.no_oracle:
        if not hasattr(env.unwrapped, "get_state"):
            if search == ORACLE:
                raise ValueError(f"{env_id} has no get_state()/set_state(); the oracle cannot search it")
        else:
            probe = OracleSearch.for_env(env, config)
            shields["oracle_shield"] = Shield(probe, required_depth=args.required_depth)
    return config, env_id, env, shields, probe
