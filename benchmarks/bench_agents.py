"""Agent benchmarks, each one command printing a Markdown table.

    python benchmarks/bench_agents.py qlearning [--steps 200000]     # hide-and-seek 5x5 hider
    python benchmarks/bench_agents.py driving [--steps 200000]       # DQN on rlgan/Driving-v0
    python benchmarks/bench_agents.py throughput [--steps 5000]      # rlgan DQN vs plain SB3 DQN
    python benchmarks/bench_agents.py atari [--steps 250000]         # Nature DQN on Pong
    python benchmarks/bench_agents.py selfplay [--seconds 60]        # both hide-and-seek teams: rlgan vs SB3 PPO + SuperSuit

Runs go to --out (default benchmarks/runs/, not committed); learning curves are PNGs there.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import gymnasium

from common import machine, table  # importing common sets the dummy SDL driver
from rlgan.agents.evaluation import evaluate_agent, random_policy, scripted_policy
from rlgan.agents.plotting import plot_learning_curve
from rlgan.agents.training import Run, AgentConfig, build_agent, load_trained, train
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


def throughput(args: argparse.Namespace) -> None:
    """Env steps per second including updates: rlgan's tuned DQN setup (its ``n_envs`` envs
    batched) vs plain SB3 DQN defaults on one env."""
    from stable_baselines3 import DQN as PlainDQN

    rows = []
    for env_id in ("rlgan/Driving-v0", "rlgan/HideAndSeek-v0"):
        config = AgentConfig(algo="dqn", env_id=env_id, steps=args.steps,
                             hp_overrides={"learning_starts": 500, "buffer_size": 20_000})
        saved = {**asdict(config), **config.settings()}
        policy = saved["hyperparameters"]["policy"]
        rates = {}
        for name, build in (
                ("rlgan", lambda: build_agent(saved, make_env(env_id, **saved["env_kwargs"]), "cpu")),
                ("SB3", lambda: PlainDQN(policy, gymnasium.make(env_id), learning_starts=500,
                                         buffer_size=20_000, device="cpu", seed=0))):
            model = build()
            start = time.perf_counter()
            model.learn(args.steps)
            rates[name] = args.steps / (time.perf_counter() - start)
        rows.append((env_id, policy, f"{rates['rlgan']:,.0f}", f"{rates['SB3']:,.0f}",
                     f"{rates['rlgan'] / rates['SB3']:.2f}"))
    print(f"\nDQN training throughput, {args.steps:,} steps each ({machine()})\n")
    print(table(rows, ("env", "policy", "rlgan DQN steps/s", "plain SB3 DQN steps/s", "ratio")))


def atari(args: argparse.Namespace) -> None:
    """The Nature-DQN configuration on Pong for a CPU-sized budget (GPU: same command).

    The replay buffer holds at most the whole budget, and learning starts after a tenth of
    the budget or Nature DQN's 100k steps, whichever is sooner (100k would be all of a short
    run)."""
    run = args.out / "dqn_pong"
    if not args.resume:
        _fresh(run)
    previous = Run(run).evaluations() if args.resume else []
    done_before = int(previous[-1]["step"]) if previous else 0
    start = time.perf_counter()
    train(run, None if args.resume else AgentConfig(
        algo="dqn", env_id="rlgan/Atari-v0", steps=args.steps, env_kwargs={"game": "Pong"},
        hp_overrides={"buffer_size": min(250_000, args.steps),
                      "learning_starts": min(100_000, args.steps // 10)},
        eval_freq=max(args.steps // 10, 1),
        eval_episodes=2, device=args.device), resume=args.resume, steps=args.steps, progress=False)
    seconds = time.perf_counter() - start
    evaluations = Run(run).evaluations()
    rate = (int(evaluations[-1]["step"]) - done_before) / seconds
    rows = [(f"{int(r['step']):,}", f"{4 * int(r['step']):,}", f"{r['mean_return']:.1f}",
             f"{r['wall_seconds']:.0f}") for r in evaluations]
    print(f"\nNature DQN on Pong, {args.steps:,} steps ({4 * args.steps:,} frames); this "
          f"invocation ran {seconds / 60:.0f} min at {rate:.0f} steps/s ({machine()})\n")
    print(table(rows, ("step", "frames", "evaluation return", "wall s since (re)start")))
    print(f"\nA 10M-frame run (2.5M steps) at this rate takes {2.5e6 / rate / 3600:.1f} h.")
    print(f"learning curve: {plot_learning_curve(run, run / 'learning_curve.png')}")


def selfplay(args: argparse.Namespace) -> None:
    """Training throughput of both hide-and-seek teams on the default 9x9 grid, learning
    included, for ``--seconds`` each: rlgan's self-play PPO on the batched core
    (:mod:`rlgan.agents.selfplay`, default settings) against SB3 PPO on the PettingZoo env
    through SuperSuit's vector envs (8 games, every agent one env of SB3, parameters shared
    by all agents; n_steps 128, 4 epochs, minibatches of 512, hidden layers 128x128, as close
    to rlgan's settings as SB3 allows). A game step is one step of one grid with every agent
    acting (SB3 counts each agent's step)."""
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
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", action="store_true", help="continue the benchmark's run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs")
    args = parser.parse_args(argv)
    defaults = {"qlearning": 200_000, "driving": 200_000, "throughput": 5_000, "atari": 250_000,
                "selfplay": 0}
    args.steps = args.steps or defaults[args.which]
    {"qlearning": qlearning, "driving": driving, "throughput": throughput, "atari": atari,
     "selfplay": selfplay}[args.which](args)


if __name__ == "__main__":
    main()
