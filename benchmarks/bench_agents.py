"""Agent benchmarks, each one command printing a Markdown table.

    python benchmarks/bench_agents.py qlearning [--steps 200000]     # hide-and-seek 5x5 hider
    python benchmarks/bench_agents.py driving [--steps 200000]       # DQN on rlgan/Driving-v0
    python benchmarks/bench_agents.py throughput [--steps 3000]      # rlgan DQN vs plain SB3 DQN
    python benchmarks/bench_agents.py atari [--steps 500000] [--run DIR]  # the Atari recipe, Pong
    python benchmarks/bench_agents.py selfplay [--seconds 60]        # both hide-and-seek teams: rlgan vs SB3 PPO + SuperSuit

Runs go to --out (default benchmarks/runs/, not committed); learning curves are PNGs there.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from common import machine, table  # importing common sets the dummy SDL driver
from rlgan.agents.evaluation import evaluate_agent, random_policy, scripted_policy
from rlgan.agents.hyperparams import hyperparameters
from rlgan.agents.plotting import plot_learning_curve
from rlgan.agents.training import (AgentConfig, Run, build_agent, load_trained, train,
                                   training_env_kwargs)
from rlgan.make import make_env


def _fresh(path: Path) -> Path:
    import shutil

    if path.exists():
        shutil.rmtree(path)
    return path


def qlearning(args: argparse.Namespace) -> None:
    """Q-learning hider on a 5x5 grid against the scripted seeker."""
    env_kwargs = {"size": 5, "n_boxes": 1, "walls": 0}
    run = _fresh(args.out / "qlearning_hide_and_seek")
    start = time.perf_counter()
    train(run, AgentConfig(algo="qlearning", env_id="rlgan/HideAndSeek-v0", steps=args.steps,
                           env_kwargs=env_kwargs, eval_freq=max(args.steps // 20, 1), eval_episodes=20),
          progress=False)
    seconds = time.perf_counter() - start
    env = make_env("rlgan/HideAndSeek-v0", **env_kwargs)
    act, _ = load_trained(run, env=env)
    episodes = 200
    learned = evaluate_agent(act, env, episodes, seed=50_000)
    rand = evaluate_agent(random_policy(0), env, episodes, seed=50_000)
    scripted = evaluate_agent(scripted_policy(), env, episodes, seed=50_000)
    best = env.unwrapped.config.max_steps - env.unwrapped.config.prep_steps
    curve = plot_learning_curve(run, run / "learning_curve.png")
    rows = [("Q-learning hider", f"{learned['mean_return']:.1f}", f"{learned['unsafe_per_1000']:.0f}"),
            ("random hider", f"{rand['mean_return']:.1f}", f"{rand['unsafe_per_1000']:.0f}"),
            ("scripted hider", f"{scripted['mean_return']:.1f}", f"{scripted['unsafe_per_1000']:.0f}"),
            ("best reachable (never seen)", f"{best:.1f}", "0")]
    print(f"\nQ-learning, hide-and-seek 5x5 (1 box, no walls) vs scripted seeker, {args.steps:,} "
          f"steps in {seconds:.0f} s ({machine()}); {episodes} evaluation episodes\n")
    print(table(rows, ("hider", "mean return", "seen steps / 1000")))
    print(f"\nlearning curve: {curve}")


def driving(args: argparse.Namespace) -> None:
    """DQN on rlgan/Driving-v0: distance before the first unsafe event."""
    run = args.out / "dqn_driving"
    if not args.resume:
        _fresh(run)
    start = time.perf_counter()
    train(run, None if args.resume else AgentConfig(
        algo="dqn", env_id="rlgan/Driving-v0", steps=args.steps, eval_freq=max(args.steps // 20, 1),
        eval_episodes=5, device=args.device), resume=args.resume, steps=args.steps, progress=False)
    seconds = time.perf_counter() - start
    env = make_env("rlgan/Driving-v0")
    act, _ = load_trained(run, env=env)
    rows, results = [], {}
    for name, policy in (("DQN", act), ("random", random_policy(0)), ("scripted", scripted_policy())):
        results[name] = evaluate_agent(policy, env, args.episodes, seed=70_000)
        r = results[name]
        rows.append((name, f"{r['mean_distance_before_unsafe']:.0f}", f"{r['mean_return']:.1f}",
                     f"{r['unsafe_per_1000']:.1f}"))
    dqn = results["DQN"]["mean_distance_before_unsafe"]
    print(f"\nDQN on rlgan/Driving-v0 (day), {args.steps:,} steps, {seconds / 60:.0f} min "
          f"({machine()}); {args.episodes} evaluation episodes\n")
    print(table(rows, ("policy", "metres before first unsafe event", "return", "unsafe / 1000")))
    print(f"\nDQN / random: {dqn / results['random']['mean_distance_before_unsafe']:.1f}x (target >= 2x); "
          f"DQN / scripted: {dqn / results['scripted']['mean_distance_before_unsafe']:.2f}x (target >= 0.5x)")
    print(f"learning curve: {plot_learning_curve(run, run / 'learning_curve.png')}")


THROUGHPUT_ENVS = {"rlgan/Driving-v0": {}, "rlgan/HideAndSeek-v0": {}, "rlgan/Atari-v0": {"game": "Pong"}}
#: Where a DQN run's time goes: (part, object path, method) timed by :class:`TimeSplit`.
PARTS = (("env steps", "env", "step_wait"), ("acting", "policy", "predict"),
         ("replay writes", "replay_buffer", "add"), ("replay sampling", "replay_buffer", "sample"),
         ("updates", "", "train"))


class TimeSplit:
    """Seconds spent in each of :data:`PARTS` while a model learns (instance methods wrapped)."""

    def __init__(self, model: Any) -> None:
        self.seconds = {part: 0.0 for part, _, _ in PARTS}
        for part, owner, method in PARTS:
            target = getattr(model, owner) if owner else model
            setattr(target, method, self._timed(part, getattr(target, method)))

    def _timed(self, part: str, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
        return timed

    def shares(self, total: float) -> str:
        """Each part's share of ``total`` seconds; updates exclude their replay sampling."""
        seconds = dict(self.seconds)
        seconds["updates"] -= seconds["replay sampling"]
        seconds["other Python"] = total - sum(seconds.values())
        return ", ".join(f"{part} {100 * value / total:.0f}%" for part, value in seconds.items())


def plain_sb3_dqn(saved: dict[str, Any]) -> Any:
    """Plain SB3 DQN with the settings of rlgan's recipe that SB3 has (no Double-DQN target,
    no dueling head; the same network otherwise) on SB3's ``make_vec_env`` copies."""
    from stable_baselines3 import DQN as PlainDQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.torch_layers import NatureCNN

    from rlgan.agents.dqn import CNNS

    hp = {k: v for k, v in saved["hyperparameters"].items() if k not in ("double", "loss")}
    policy_kwargs = {k: v for k, v in hp.pop("policy_kwargs").items() if k not in ("dueling", "cnn")}
    if hp["policy"] == "CnnPolicy":
        cnn = saved["hyperparameters"]["policy_kwargs"].get("cnn", "nature")
        network = NatureCNN if cnn == "nature" else CNNS[cnn]  # SB3's own, where it has one
        policy_kwargs = {"features_extractor_class": network, "net_arch": [], **policy_kwargs,
                         "normalize_images": not getattr(network, "raw_pixels", False)}
    env = make_vec_env(saved["env_id"], n_envs=saved["n_envs"], seed=0,
                       env_kwargs=training_env_kwargs(saved))
    return PlainDQN(env=env, policy_kwargs=policy_kwargs, device="cpu", seed=0, **hp)


def throughput(args: argparse.Namespace) -> None:
    """Env steps per second with learning, on each env in :data:`THROUGHPUT_ENVS`: rlgan's DQN
    (``rlgan train``'s agent, its envs batched) with its recipe, and with the recipe's Double-DQN
    target and dueling head off (the algorithm SB3 has), against plain SB3 DQN with the same
    settings; in rounds of the three (``--repeats``), medians compared. rlgan's time is split
    into its parts, and an evaluation (``--eval-episodes``) and a checkpoint are timed."""
    rows, splits = [], []
    for env_id, env_kwargs in THROUGHPUT_ENVS.items():
        recipe, plain = (_settings(env_id, env_kwargs, args.steps, extras) for extras in (True, False))
        rates: dict[str, list[float]] = {"recipe": [], "plain": [], "SB3": []}
        for _ in range(args.repeats):
            agent = build_agent(recipe, make_env(env_id, **training_env_kwargs(recipe)), "cpu")
            split = TimeSplit(agent)
            seconds = _learning_seconds(agent, args.steps)
            rates["recipe"].append(args.steps / seconds)
            same = build_agent(plain, make_env(env_id, **training_env_kwargs(plain)), "cpu")
            rates["plain"].append(args.steps / _learning_seconds(same, args.steps))
            rates["SB3"].append(args.steps / _learning_seconds(plain_sb3_dqn(recipe), args.steps))
        splits.append((env_id, split.shares(seconds), _eval_and_checkpoint_seconds(agent, recipe, args)))
        ours, same_algorithm, theirs = (float(np.median(rates[name])) for name in rates)
        rows.append((env_id, f"{ours:,.0f} ({ours / theirs:.2f}x)",
                     f"{same_algorithm:,.0f} ({same_algorithm / theirs:.2f}x)", f"{theirs:,.0f}"))
    print(f"\nDQN training throughput, {args.steps:,} steps per run, median of {args.repeats} "
          f"rounds ({machine()})\n")
    print(table(rows, ("env", "rlgan recipe, steps/s", "rlgan, no Double/dueling", "plain SB3 DQN")))
    print("\nWhere the recipe's time goes (last round):\n")
    print(table(splits, ("env", "share of training time", "one evaluation + one checkpoint")))


def _settings(env_id: str, env_kwargs: dict[str, Any], steps: int, extras: bool) -> dict[str, Any]:
    """A run config of rlgan's recipe (learning from step 500, a 20k replay), with or without
    its Double-DQN target and dueling head."""
    overrides: dict[str, Any] = {"learning_starts": 500, "buffer_size": 20_000}
    if not extras:
        policy_kwargs = hyperparameters("dqn", env_id)["policy_kwargs"]
        overrides.update(double=False, policy_kwargs={**policy_kwargs, "dueling": False})
    config = AgentConfig(algo="dqn", env_id=env_id, steps=steps, env_kwargs=env_kwargs,
                         hp_overrides=overrides)
    return {**asdict(config), **config.settings()}


def _learning_seconds(model: Any, steps: int) -> float:
    start = time.perf_counter()
    model.learn(steps)
    return time.perf_counter() - start


def _eval_and_checkpoint_seconds(model: Any, saved: dict[str, Any], args: argparse.Namespace) -> str:
    """Seconds of one evaluation of ``--eval-episodes`` episodes and one checkpoint."""
    import tempfile

    from rlgan.agents.checkpoint import save_dqn
    from rlgan.agents.training import acting

    start = time.perf_counter()
    evaluate_agent(acting(model, "dqn"), make_env(saved["env_id"], **saved["env_kwargs"]),
                   args.eval_episodes, seed=10_000)
    evaluation = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        save_dqn(model, Path(directory) / "checkpoint")
        checkpoint = time.perf_counter() - start
    return f"{evaluation:.1f} s + {checkpoint:.1f} s"


ATARI_HUMAN = {"pong": 9.3, "breakout": 31.8}  # human scores (Mnih et al. 2015)


def atari(args: argparse.Namespace) -> None:
    """rlgan's Atari recipe (``agents/hyperparams.py``) on ``--game``, trained into ``--run``
    (resumed when it holds a run) up to ``--steps``, with the random agent's score measured
    on the same env and the human score of Mnih et al. (2015). GPU: the same command."""
    run = args.run or args.out / f"dqn_{args.game.lower()}"
    resume = (Path(run) / "config.json").exists()
    train(run, None if resume else AgentConfig(
        algo="dqn", env_id="rlgan/Atari-v0", steps=args.steps, env_kwargs={"game": args.game},
        eval_freq=25_000, eval_episodes=10, device=args.device), resume=resume, steps=args.steps,
        progress=False)
    evaluations = Run(run).evaluations()
    config = Run(run).config()
    rows = [(f"{int(r['step']):,}", f"{4 * int(r['step']):,}", f"{r['mean_return']:.1f} ± "
             f"{r['std_return'] / np.sqrt(r['episodes']):.1f}", f"{r['wall_seconds'] / 60:.0f}")
            for r in evaluations]
    rand = evaluate_agent(random_policy(0), make_env("rlgan/Atari-v0", **config["env_kwargs"]),
                          10, seed=10_000)
    human = ATARI_HUMAN.get(args.game.lower())
    print(f"\nrlgan's Atari DQN recipe on {args.game} ({machine()}); evaluation: 10 episodes, "
          f"greedy\n")
    print(table(rows, ("step", "frames", "evaluation return ± s.e.", "minutes of training")))
    print(f"\nrandom agent, same env, 10 episodes: {rand['mean_return']:.1f}; human (Mnih et al. "
          f"2015): {human}")
    print(f"learning curve: {plot_learning_curve(run, Path(run) / 'learning_curve.png')}")


def selfplay(args: argparse.Namespace) -> None:
    """Training throughput of both hide-and-seek teams on the default 9x9 grid, learning
    included, for ``--seconds`` each: rlgan's self-play PPO on the batched core
    (:mod:`rlgan.agents.selfplay`, default settings) against SB3 PPO on the PettingZoo env
    through SuperSuit's vector envs (8 games, every agent one env of SB3, parameters shared
    by all agents; n_steps 128, 4 epochs, minibatches of 512, hidden layers 128x128, as close
    to rlgan's settings as SB3 allows; SB3's MlpPolicy has no memory, rlgan's networks by
    default a GRU, and rlgan's first updates also compute the scripted teacher's actions).
    A game step is one step of one grid with every agent acting (SB3 counts each agent's
    step)."""
    import supersuit
    from stable_baselines3 import PPO

    from rlgan.agents.selfplay import SelfPlay
    from rlgan.agents.team_run import TeamRunConfig
    from rlgan.envs.hide_and_seek import parallel_env

    trainer = SelfPlay(TeamRunConfig(teams="hider,seeker", steps=1).saved())
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        trainer.learn(trainer.rollout()[0])
        trainer.update += 1
    rlgan_rate = trainer.steps / (time.perf_counter() - start)

    env = parallel_env(**trainer.saved["env_kwargs"])  # the same options (full observations)
    n_agents = len(env.possible_agents)
    venv = supersuit.concat_vec_envs_v1(supersuit.pettingzoo_env_to_vec_env_v1(env), 8,
                                        num_cpus=0, base_class="stable_baselines3")
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=512, n_epochs=4, learning_rate=1e-3,
                policy_kwargs={"net_arch": [128, 128]}, device="cpu", verbose=0)
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        model.learn(128 * venv.num_envs, reset_num_timesteps=False)
    sb3_rate = model.num_timesteps / n_agents / (time.perf_counter() - start)
    rows = [("rlgan self-play PPO (TeamVectorEnv, 256 grids)", f"{rlgan_rate:,.0f}",
             f"{rlgan_rate * n_agents:,.0f}"),
            ("SB3 PPO + SuperSuit (8 games)", f"{sb3_rate:,.0f}", f"{sb3_rate * n_agents:,.0f}")]
    print(f"\nBoth hide-and-seek teams training, default 9x9 grid, {args.seconds:.0f} s each "
          f"({machine()})\n")
    print(table(rows, ("trainer", "game steps/s", "agent steps/s")))
    print(f"\nratio rlgan / SB3: {rlgan_rate / sb3_rate:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["qlearning", "driving", "throughput", "atari", "selfplay"])
    parser.add_argument("--seconds", type=float, default=60.0, help="selfplay: seconds per trainer")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--repeats", type=int, default=3, help="throughput: rounds of runs")
    parser.add_argument("--eval-episodes", type=int, default=5, help="throughput: evaluation size")
    parser.add_argument("--game", default="Pong", help="atari: the game")
    parser.add_argument("--run", type=Path, help="atari: the run directory (resumed if it holds one)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", action="store_true", help="continue the benchmark's run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs")
    args = parser.parse_args(argv)
    defaults = {"qlearning": 200_000, "driving": 200_000, "throughput": 3_000, "atari": 500_000,
                "selfplay": 0}
    args.steps = args.steps or defaults[args.which]
    {"qlearning": qlearning, "driving": driving, "throughput": throughput, "atari": atari,
     "selfplay": selfplay}[args.which](args)


if __name__ == "__main__":
    main()
