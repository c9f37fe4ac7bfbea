"""Agents: Q-learning optimality, DQN options and learning, run directories, exact resume."""

from __future__ import annotations

import json
from typing import Any

import gymnasium
import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.numpy import load_file
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

from rlgan.agents.dqn import DQN, TD_LOSSES, DuelingHead, RawPixelNatureCNN, SmallCNN, dqn_target
from rlgan.agents.evaluation import evaluate_agent, random_policy, scripted_policy
from rlgan.agents.hyperparams import hyperparameters
from rlgan.agents.plotting import plot_learning_curve
from rlgan.agents.qlearning import QLearningAgent
from rlgan.agents.training import Run, AgentConfig, load_inference_agent, load_trained, train
from rlgan.cli import main

# The hider can push the box into the only door and hide: 21 is the best return (30 steps,
# 9 of preparation); a random hider is seen about half the time.
DOOR = "#######\n#.H...#\n#.B...#\n#.....#\n##.####\n#..S..#\n#######"
DOOR_KWARGS = {"layout": DOOR, "max_steps": 30, "prep_fraction": 0.3}


@pytest.mark.parametrize("env_id, kwargs, steps, optimum", [
    ("FrozenLake-v1", {"is_slippery": False}, 4_000, 1.0),
    ("CliffWalking-v1", {}, 20_000, -13.0),
])
def test_qlearning_reaches_the_known_optimum(env_id, kwargs, steps, optimum):
    settings = hyperparameters("qlearning", env_id)
    settings.pop("env_kwargs", None)
    agent = QLearningAgent(gymnasium.make(env_id, **kwargs), seed=0, **settings)
    agent.learn(steps)
    result = evaluate_agent(lambda obs, env: agent.predict(obs, env=env)[0],
                            gymnasium.make(env_id, **kwargs), episodes=3)
    assert result["mean_return"] == optimum


def test_qlearning_on_hide_and_seek_uses_encode_state(tmp_path):
    env = gymnasium.make("rlgan/HideAndSeek-v0", size=5, n_boxes=1, walls=0)
    agent = QLearningAgent(env, seed=0)
    agent.learn(500)
    assert 10 < len(agent.table) <= env.unwrapped.n_states
    agent.save(tmp_path)
    copy = QLearningAgent(env, seed=1).load(tmp_path)
    assert copy.table.keys() == agent.table.keys() and copy.num_timesteps == 500
    assert all(np.array_equal(copy.table[s], agent.table[s]) for s in agent.table)


def test_qlearning_hider_beats_the_scripted_hider_on_a_small_grid():
    settings = hyperparameters("qlearning", "rlgan/HideAndSeek-v0")
    settings.pop("env_kwargs")
    agent = QLearningAgent(gymnasium.make("rlgan/HideAndSeek-v0", **DOOR_KWARGS), seed=0, **settings)
    agent.learn(10_000)
    env = gymnasium.make("rlgan/HideAndSeek-v0", **DOOR_KWARGS)
    learned = evaluate_agent(lambda obs, env: agent.predict(obs, env=env)[0], env, episodes=200)
    scripted = evaluate_agent(scripted_policy(), env, episodes=200)
    assert learned["mean_return"] > scripted["mean_return"] + 10  # 21 (never seen) against 5


def test_double_dqn_target_uses_the_online_argmax():
    rewards, dones = torch.tensor([[1.0], [0.0]]), torch.tensor([[0.0], [1.0]])
    target_q = torch.tensor([[1.0, 5.0], [2.0, 3.0]])
    online_q = torch.tensor([[9.0, 0.0], [0.0, 9.0]])
    assert torch.equal(dqn_target(rewards, dones, 0.5, target_q), torch.tensor([[3.5], [0.0]]))
    assert torch.equal(dqn_target(rewards, dones, 0.5, target_q, online_q), torch.tensor([[1.5], [0.0]]))


def test_dueling_head_is_value_plus_centred_advantage():
    head = DuelingHead(4, 3, [8], torch.nn.ReLU)
    features = torch.randn(5, 4)
    q = head(features)
    hidden = head.trunk(features)
    assert hidden.shape == (5, 8)  # one shared hidden layer, then the two outputs
    advantage = head.advantage(hidden)
    expected = head.value(hidden) + advantage - advantage.mean(dim=1, keepdim=True)
    assert torch.allclose(q, expected)
    assert sum(p.numel() for p in head.parameters()) == (4 * 8 + 8) + (8 + 1) + (8 * 3 + 3)
    model = DQN("MlpPolicy", gymnasium.make("CartPole-v1"), policy_kwargs={"dueling": True}, device="cpu")
    assert isinstance(model.q_net.q_net, DuelingHead) and isinstance(model.q_net_target.q_net, DuelingHead)
    assert model.q_values(np.zeros(4, np.float32)).shape == (2,)



def test_td_loss_option_chooses_the_loss_of_every_update(monkeypatch):
    used = []
    for name, loss in list(TD_LOSSES.items()):
        monkeypatch.setitem(TD_LOSSES, name,
                            lambda q, target, name=name, loss=loss: used.append(name) or loss(q, target))
    for name in ("huber", "mse"):
        used.clear()
        DQN("MlpPolicy", gymnasium.make("CartPole-v1"), loss=name, learning_starts=0, train_freq=1,
            seed=0, device="cpu").learn(16)
        assert len(used) >= 15 and set(used) == {name}
    q = torch.zeros(1, 1, requires_grad=True)
    target = torch.full((1, 1), 50.0)  # a TD error far beyond Huber's linear zone
    huber, mse = (float(torch.autograd.grad(TD_LOSSES[name](q, target), q)[0].abs())
                  for name in ("huber", "mse"))
    assert huber == pytest.approx(1.0) and mse > 50.0
    with pytest.raises(ValueError, match="unknown loss 'l2'.*huber, mse"):
        DQN("MlpPolicy", gymnasium.make("CartPole-v1"), loss="l2", device="cpu")


@pytest.mark.slow
class LossRecorder(Logger):
    """SB3's logger, keeping every TD loss the DQN records (one per ``train`` call)."""

    def __init__(self) -> None:
        super().__init__(folder=None, output_formats=[])
        self.losses: list[float] = []

    def record(self, key: str, value: Any, exclude: Any = None) -> None:
        if key == "train/loss":
            self.losses.append(value)
        super().record(key, value, exclude)


def test_dqn_beats_random_on_an_easy_hide_and_seek():
    env = gymnasium.make("rlgan/HideAndSeek-v0", **DOOR_KWARGS)
    model = DQN("MlpPolicy", env, double=True, policy_kwargs={"dueling": True, "net_arch": [64, 64]},
                learning_starts=500, learning_rate=1e-3, exploration_fraction=0.5,
                target_update_interval=250, train_freq=1, batch_size=64, gamma=0.9, seed=0, device="cpu")
    recorder = LossRecorder()
    model.set_logger(recorder)
    model.learn(4_000)
    assert len(recorder.losses) == 3_500  # one update per step after the first 500
    assert np.mean(recorder.losses[-500:]) < 0.75 * np.mean(recorder.losses[:50])
    evaluation_env = gymnasium.make("rlgan/HideAndSeek-v0", **DOOR_KWARGS)
    learned = evaluate_agent(lambda obs, env: int(model.predict(obs, deterministic=True)[0]),
                             evaluation_env, 5)
    random = evaluate_agent(random_policy(0), evaluation_env, 5)
    assert learned["mean_return"] > random["mean_return"] + 4


def small_run(steps: int = 1_200, seed: int = 3) -> AgentConfig:
    return AgentConfig(algo="dqn", env_id="rlgan/HideAndSeek-v0", steps=steps, seed=seed,
                       env_kwargs=DOOR_KWARGS,
                       hp_overrides={"learning_starts": 200, "policy_kwargs": {"net_arch": [32]}},
                       eval_freq=600, eval_episodes=1)


def atari_run(steps: int = 400, seed: int = 3) -> AgentConfig:
    """The Atari recipe on Pong, shrunk to a few hundred steps (short evaluation episodes)."""
    return AgentConfig(algo="dqn", env_id="rlgan/Atari-v0", steps=steps, seed=seed,
                       env_kwargs={"game": "Pong", "max_steps": 50},
                       hp_overrides={"learning_starts": 100, "buffer_size": 1_000},
                       eval_freq=200, eval_episodes=1)


@pytest.mark.parametrize("run, total, half", [(small_run, 1_200, 600), (atari_run, 400, 200)],
                         ids=["hide-and-seek, 8 batched grids", "atari, one env"])
def test_resume_continues_the_same_curve_exactly(tmp_path, run, total, half):
    train(tmp_path / "straight", run(), progress=False)
    train(tmp_path / "interrupted", run(), progress=False, stop_at=half)
    assert Run(tmp_path / "interrupted").last_checkpoint().name == f"step_{half:09d}"
    train(tmp_path / "interrupted", resume=True, progress=False)
    straight = Run(tmp_path / "straight").last_checkpoint()
    resumed = Run(tmp_path / "interrupted").last_checkpoint()
    assert straight.name == resumed.name == f"step_{total:09d}"
    a = load_file(str(straight / "policy.safetensors"))
    b = load_file(str(resumed / "policy.safetensors"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    state = json.loads((resumed / "state.json").read_text())
    assert state["counters"]["num_timesteps"] == total
    assert [r["step"] for r in Run(tmp_path / "interrupted").evaluations()] == [half, total]
    straight_rows = Run(tmp_path / "straight").evaluations()
    assert [r["mean_return"] for r in straight_rows] == [
        r["mean_return"] for r in Run(tmp_path / "interrupted").evaluations()]


def test_atari_recipe_round_trips_through_the_run_config(tmp_path):
    train(tmp_path / "run", atari_run(steps=200), progress=False)
    config = Run(tmp_path / "run").config()
    recipe = hyperparameters("dqn", "rlgan/Atari-v0")
    assert config["train_env_kwargs"] == recipe["train_env_kwargs"] == {
        "terminal_on_life_loss": True, "clip_rewards": True}
    assert config["env_kwargs"] == {**recipe["env_kwargs"], "game": "Pong", "max_steps": 50}
    expected = {k: v for k, v in recipe.items() if k not in ("env_kwargs", "train_env_kwargs")}
    assert config["hyperparameters"] == {**expected, "learning_starts": 100, "buffer_size": 1_000}
    agent, _ = load_inference_agent(tmp_path / "run")
    assert isinstance(agent.policy.q_net.features_extractor, SmallCNN)
    assert isinstance(agent.policy.q_net.q_net, DuelingHead) and agent.double
    assert agent.policy.optimizer.defaults["fused"]


def test_training_only_env_options_stay_out_of_evaluation():
    settings = AgentConfig(algo="dqn", env_id="rlgan/Atari-v0", steps=10).settings()
    assert "clip_rewards" not in settings["env_kwargs"]
    assert settings["train_env_kwargs"]["clip_rewards"] is True
    mine = AgentConfig(algo="dqn", env_id="rlgan/Atari-v0", steps=10,
                       env_kwargs={"clip_rewards": False}).settings()
    assert mine["env_kwargs"]["clip_rewards"] is False and "clip_rewards" not in mine["train_env_kwargs"]


@pytest.mark.parametrize("network_class, features", [(SmallCNN, 256), (RawPixelNatureCNN, 512)])
def test_image_networks_divide_their_filters_not_the_frames(network_class, features):
    space = gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    network = network_class(space)
    frames = torch.randint(0, 256, (3, 4, 84, 84)).float()
    expected = network.linear(network.cnn(frames / 255))
    assert network(frames).shape == (3, features)
    torch.testing.assert_close(network(frames), expected)


def test_nature_cnn_weights_load_into_the_raw_pixel_network():
    space = gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    sb3_network, network = NatureCNN(space), RawPixelNatureCNN(space)
    network.load_state_dict(sb3_network.state_dict())
    frames = torch.randint(0, 256, (3, 4, 84, 84)).float()
    torch.testing.assert_close(network(frames), sb3_network(frames / 255))
    with pytest.raises(ValueError, match="unknown cnn 'tiny'; choose from nature, small"):
        DQN("CnnPolicy", gymnasium.make("rlgan/Atari-v0", game="Pong"), buffer_size=10,
            policy_kwargs={"cnn": "tiny"}, device="cpu")


def test_failed_resume_leaves_the_run_untouched(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, small_run(steps=600), progress=False)
    checkpoint = Run(run_dir).last_checkpoint()
    (checkpoint / "policy.safetensors").write_bytes(b"not a safetensors file")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and "tb" not in p.parts}
    with pytest.raises(ValueError, match="missing or corrupt"):
        train(run_dir, resume=True, steps=1_200, progress=False)
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and "tb" not in p.parts}
    assert before == after
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(run_dir, small_run(), progress=False)


def test_the_learning_curve_shows_unsafe_steps_below_the_return(tmp_path):
    train(tmp_path / "run", AgentConfig(algo="qlearning", env_id="rlgan/HideAndSeek-v0", steps=1_000,
                                        eval_freq=500, eval_episodes=2), progress=False)
    assert Run(tmp_path / "run").evaluations()[0]["unsafe_per_1000"] > 0  # the hider was seen
    with PIL.Image.open(plot_learning_curve(tmp_path / "run", tmp_path / "curve.png")) as image:
        assert image.size == (700, 600)


def test_loading_for_inference_skips_the_replay_buffer_and_refuses_another_env(tmp_path):
    train(tmp_path / "run", small_run(steps=600), progress=False)
    env = gymnasium.make("rlgan/HideAndSeek-v0", **DOOR_KWARGS)
    agent, config = load_inference_agent(tmp_path / "run", env)
    assert config["algo"] == "dqn" and agent.replay_buffer.buffer_size == 1
    saved = load_file(str(tmp_path / "run" / "best" / "policy.safetensors"))
    assert all(np.array_equal(agent.policy.state_dict()[k].numpy(), v) for k, v in saved.items())
    act, _ = load_trained(tmp_path / "run", env=env)
    observation, _ = env.reset(seed=0)
    assert act(observation, env) == int(np.argmax(agent.q_values(observation)))
    other = gymnasium.make("rlgan/HideAndSeek-v0", view_size=7)
    with pytest.raises(ValueError, match="was trained on"):
        load_trained(tmp_path / "run", env=other)


def test_cli_train_eval_plot_round_trip(tmp_path, capsys):
    run_dir = str(tmp_path / "frozen")
    assert main(["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "--env-kwargs",
                 "is_slippery=false", "--steps", "4000", "--eval-freq", "2000", "--run", run_dir,
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "--agent", run_dir, "--episodes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mean_return"] == 1.0 and result["episodes"] == 3
    assert {"mean_return", "std_return", "mean_length", "unsafe_per_1000"} <= set(result)
    assert main(["plot", "--run", run_dir]) == 0
    with PIL.Image.open(tmp_path / "frozen" / "learning_curve.png") as image:
        assert image.size == (700, 300)  # FrozenLake reports nothing unsafe: the return alone
    capsys.readouterr()
    assert main(["record", "--env", "FrozenLake-v1", "--env-kwargs", "is_slippery=false",
                 "--agent", run_dir, "--steps", "12", "--out", str(tmp_path / "data")]) == 0
    summary = json.loads(capsys.readouterr().out)  # the greedy agent walks the 6-step path twice
    assert summary["policy"] == run_dir and summary["episodes"] == 2
    assert summary["mean_reward"] == pytest.approx(2 / 12)
    capsys.readouterr()
    assert main(["eval", "--agent", "scripted", "--env", "rlgan/Driving-v0", "--episodes", "1",
                 "--video", str(tmp_path / "drive.gif"), "--json"]) == 0
    scripted = json.loads(capsys.readouterr().out)
    assert scripted["mean_distance_before_unsafe"] > 0 and (tmp_path / "drive.gif").exists()


def test_cli_options_typed_as_users_type_them_reach_the_run_config(tmp_path, capsys):
    run_dir = tmp_path / "lake"
    assert main(["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "--env-kwargs",
                 "is_slippery=False", "--hp", "gamma=1", "--steps", "50", "--eval-freq", "50",
                 "--eval-episodes", "1", "--run", str(run_dir), "--no-progress"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_kwargs"] == {"is_slippery": False}
    assert '"is_slippery": false' in (run_dir / "config.json").read_text()
    assert config["hyperparameters"]["gamma"] == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "--algo", "qlearning", "--env", "CartPole-v1", "--steps", "10", "--run", "r"],
     "Discrete observation space or an env with encode_state"),
    (["train", "--algo", "dqn", "--env", "Cartpole-v1", "--steps", "10", "--run", "r"],
     "unknown environment id 'Cartpole-v1'"),
    (["train", "--algo", "dqn", "--env", "CartPole-v1", "--steps", "10", "--run", "r", "--hp",
      "learnig_rate=1"], "no hyperparameter 'learnig_rate'. Did you mean 'learning_rate'"),
    (["train", "--run", "missing", "--resume"], "run config not found"),
    (["eval", "--agent", "scripted", "--env", "CartPole-v1"], "has no scripted policy"),
])
def test_cli_bad_input(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_batched_envs_train_dqn_through_the_sb3_adapter(tmp_path):
    from stable_baselines3.common.vec_env import VecMonitor

    from rlgan.agents.vec_adapter import GymnasiumVecEnv, make_sb3_vec_env

    venv = make_sb3_vec_env("rlgan/HideAndSeek-v0", 3, seed=4, max_steps=5)
    assert isinstance(venv, VecMonitor) and isinstance(venv.venv, GymnasiumVecEnv)
    singles = [gymnasium.make("rlgan/HideAndSeek-v0", max_steps=5) for _ in range(3)]
    observations = venv.reset()
    for i, env in enumerate(singles):
        assert np.array_equal(env.reset(seed=4 + i)[0], observations[i])
    for step in range(5):
        observations, rewards, dones, infos = venv.step(np.zeros(3, dtype=np.int64))
        expected = [env.step(0) for env in singles]
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    for i, (final, *_ ) in enumerate(expected):
        assert np.array_equal(infos[i]["terminal_observation"], final)
        assert np.array_equal(observations[i], singles[i].reset()[0])
    config = AgentConfig(algo="dqn", env_id="rlgan/HideAndSeek-v0", steps=800, n_envs=4,
                         env_kwargs=DOOR_KWARGS, hp_overrides={"learning_starts": 100},
                         eval_freq=400, eval_episodes=1)
    train(tmp_path / "batched", config, progress=False)
    assert [r["step"] for r in Run(tmp_path / "batched").evaluations()] == [400, 800]


def test_tuned_n_envs_and_env_options_come_from_the_hyperparameter_file():
    tuned = AgentConfig(algo="dqn", env_id="rlgan/Driving-v0", steps=10).settings()
    assert tuned["n_envs"] == 8 and tuned["env_kwargs"]["headway_penalty"] > 0
    assert "n_envs" not in tuned["hyperparameters"] and tuned["hyperparameters"]["n_steps"] == 3
    mine = AgentConfig(algo="dqn", env_id="rlgan/Driving-v0", steps=10, n_envs=2,
                       env_kwargs={"headway_penalty": 0.0}).settings()
    assert mine["n_envs"] == 2 and mine["env_kwargs"]["headway_penalty"] == 0.0
    assert AgentConfig(algo="dqn", env_id="CartPole-v1", steps=10).settings()["n_envs"] == 1
    with pytest.raises(ValueError, match="Q-learning trains on one env"):
        AgentConfig(algo="qlearning", env_id="FrozenLake-v1", steps=10, n_envs=2)


class DropoutFeatures(BaseFeaturesExtractor):
    """Flat features through dropout: a network whose train and eval modes differ."""

    def __init__(self, observation_space: gymnasium.spaces.Box) -> None:
        super().__init__(observation_space, observation_space.shape[0])
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.dropout(observations)


def test_the_training_mode_is_set_only_where_it_changes_the_network():
    env = gymnasium.make("CartPole-v1")
    plain = DQN("MlpPolicy", env, device="cpu")
    assert not plain.policy.modes_differ
    with_dropout = DQN("MlpPolicy", env, device="cpu",
                       policy_kwargs={"features_extractor_class": DropoutFeatures})
    assert with_dropout.policy.modes_differ
    for mode in (False, True, False):
        with_dropout.policy.set_training_mode(mode)
        assert with_dropout.q_net.training is mode and with_dropout.q_net.features_extractor.dropout.training is mode
    observation = np.ones(4, np.float32)
    assert np.array_equal(with_dropout.q_values(observation), with_dropout.q_values(observation))
