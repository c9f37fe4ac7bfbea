"""Both hide-and-seek teams learning together: the batched team env, the behaviour statistics
and phases, self-play PPO (learning, exact resume, bad input), evaluation and its cross-play
matrix, and the command line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from rlgan.agents.ppo import GridEncoder, TeamNetwork, ppo_loss
from rlgan.agents.selfplay import LEGACY_HYPERPARAMETERS, SelfPlay, SelfPlayConfig, sequences
from rlgan.agents.team_run import TeamRunConfig, load_snapshot, read_log, train_teams
from rlgan.agents.team_evaluation import cross_play, evaluate_teams
from rlgan.agents.team_play import play, play_games, team_network
from rlgan.agents.team_stats import episode_statistics, phases
from rlgan.cli import main
from rlgan.envs.hide_and_seek.behaviour import BEHIND_BOX, BEHIND_WALL, SEEN, hider_cover
from rlgan.envs.hide_and_seek.core import GridBatch
from rlgan.envs.hide_and_seek.config import HideAndSeekConfig
from rlgan.envs.hide_and_seek.team_env import TeamVectorEnv

TINY = {"size": 5, "n_boxes": 1, "walls": 0, "max_steps": 30}
TINY_HP = {"num_grids": 64, "snapshot_every": 5, "checkpoint_every": 10}


# -- the team env ------------------------------------------------------------------------------
def test_team_env_shapes_rewards_and_same_seed_games():
    envs = [TeamVectorEnv(8, n_hiders=2, n_seekers=1, max_steps=20) for _ in range(2)]
    first = [env.reset(seed=3) for env in envs]
    assert first[0]["hider"].shape == (8, 2, envs[0].observation_size)
    assert first[0]["seeker"].shape == (8, 1, envs[0].observation_size)
    assert first[0]["hider"].dtype == np.uint8
    rng = np.random.default_rng(0)
    for step in range(20):
        actions = rng.integers(5, size=(8, 3))
        results = [env.step(actions) for env in envs]
        np.testing.assert_equal(results[0], results[1])
        observations, rewards, done, info = results[0]
        assert rewards.shape == (8, 3) and done.shape == (8,)
        # the team reward: every hider the same, the seeker the negative
        np.testing.assert_array_equal(rewards[:, 0], rewards[:, 1])
        np.testing.assert_array_equal(rewards[:, 2], -rewards[:, 0])
        hidden = ~info["seen"].any(axis=1)
        np.testing.assert_array_equal(rewards[:, 0], np.where(info["prep"], 0, np.where(hidden, 1, -1)))
        assert done.all() == (step == 19)
    assert (envs[0].grid.steps == 0).all()  # reset within the last step


def test_team_env_refuses_bad_actions_and_pixels():
    env = TeamVectorEnv(2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"0\.\.4 of shape \(2, 2\)"):
        env.step(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="0..4"):
        env.step(np.full((2, 2), 5))
    with pytest.raises(ValueError, match="symbolic"):
        TeamVectorEnv(2, observation="pixels")


@pytest.mark.parametrize("layout, cover", [
    ("#######\n#H.B.S#\n#.....#\n#######\n#######\n#######\n#######", BEHIND_BOX),
    ("#######\n#H#..S#\n#.#...#\n#.#...#\n#.....#\n#.....#\n#######", BEHIND_WALL),
    ("#######\n#H...S#\n#.....#\n#.....#\n#.....#\n#.....#\n#######", SEEN),
])
def test_hider_cover_names_what_hides_the_hider(layout, cover):
    config = HideAndSeekConfig(layout=layout, prep_fraction=0.0)
    grid = GridBatch(1, config)
    grid.reset(0)
    assert hider_cover(grid).tolist() == [[cover]]


def test_a_box_the_hider_locks_is_counted():
    layout = "#######\n#B....#\n#H...S#\n#.....#\n#.....#\n#.....#\n#######"
    env = TeamVectorEnv(1, layout=layout, lockable=True)
    env.reset(seed=0)
    _, _, _, info = env.step(np.array([[0, 0]]))
    assert info["hider_locked"].tolist() == [0]
    _, _, _, info = env.step(np.array([[5, 0]]))  # the hider faces up, at the box
    assert info["hider_locked"].tolist() == [1]


# -- statistics and phases ---------------------------------------------------------------------
def test_episode_statistics_of_a_hand_made_trace():
    steps, grids = 4, 2
    prep = np.array([[True, True], [False, False], [False, False], [False, False]])
    seen = np.zeros((steps, grids, 1), dtype=bool)
    seen[2, 0] = seen[3, 0] = True  # grid 0: found one step after preparation
    cover = np.where(seen, SEEN, BEHIND_WALL).astype(np.int8)
    cover[1:, 1] = BEHIND_BOX  # grid 1: behind a box from the end of preparation
    pushed = np.zeros((steps, grids, 2), dtype=bool)
    pushed[0, 1, 0] = pushed[1, 1, 0] = pushed[3, 0, 1] = True
    trace = {"prep": prep, "seen": seen, "cover": cover, "pushed": pushed,
             "hider_locked": np.zeros((steps, grids), dtype=np.int64)}
    hider = np.where(prep, 0, np.where(seen[..., 0], -1, 1))
    rewards = np.stack([hider, -hider], axis=-1).astype(float)
    stats = episode_statistics(trace, rewards, n_hiders=1)
    assert stats["hider_return"] == pytest.approx((-1 + 3) / 2)
    assert stats["hider_box_pushes"] == 1.0 and stats["seeker_box_pushes"] == 0.5
    assert stats["found_rate"] == 0.5 and stats["steps_to_find"] == 1.0
    assert stats["hidden_behind_box"] == pytest.approx(3 / 6)
    assert stats["hidden_behind_wall"] == pytest.approx(1 / 6)
    only_second = episode_statistics(trace, rewards, 1, grids=np.array([False, True]))
    assert only_second["found_rate"] == 0.0 and np.isnan(only_second["steps_to_find"])


def test_phases_cut_at_reversals_larger_than_the_swing():
    curve = [0, 2, 4, 6, 8, 6, 4, 2, 0, 2, 4, 6, 8]
    assert phases(curve, min_swing=3, window=1) == [(0, 5), (5, 9), (9, 13)]
    noise = np.random.default_rng(0).normal(0, 0.5, 50)
    assert len(phases(noise, min_swing=3, window=1)) == 1


# -- team networks ------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_team_memory_steps_like_whole_episodes_and_remembers_the_past(encoder):
    env = TeamVectorEnv(1, **TINY)
    torch.manual_seed(0)
    network = team_network(env, 16, memory=True, encoder=encoder)
    episodes = torch.randint(0, 2, (6, 3, env.observation_size), dtype=torch.uint8)
    logits, values, state = network(episodes)
    assert logits.shape == (6, 3, env.config.n_actions) and values.shape == (6, 3)
    assert state.shape == (1, 3, 16)
    step_state = None
    for t in range(6):
        step_logits, step_values, step_state = network(episodes[t: t + 1], step_state)
        assert torch.allclose(step_logits[0], logits[t], atol=1e-5)
        assert torch.allclose(step_values[0], values[t], atol=1e-5)
    other_past = episodes.clone()
    other_past[0] = 1 - other_past[0]
    assert not torch.allclose(network(other_past)[2], state, atol=1e-4)
    memoryless = team_network(env, 16, memory=False, encoder=encoder)
    assert memoryless(other_past)[2] is None
    assert torch.equal(memoryless(other_past)[0][-1], memoryless(episodes)[0][-1])


def test_pieces_of_episodes_from_the_rollout_memory_replay_the_whole_episodes():
    env = TeamVectorEnv(1, **TINY)
    torch.manual_seed(0)
    network = team_network(env, 16, memory=True, encoder="conv")
    episodes = torch.randint(0, 2, (6, 3, env.observation_size), dtype=torch.uint8)
    actions = torch.arange(18).reshape(6, 3)
    states, state = [], None
    for t in range(6):
        states.append(torch.zeros(3, 16) if state is None else state[0])
        _, _, state = network(episodes[t: t + 1], state)
    pieces = sequences({"observations": episodes, "actions": actions}, torch.stack(states), 2)
    assert pieces["observations"].shape == (2, 9, env.observation_size)
    assert pieces["state"].shape == (1, 9, 16)
    assert torch.equal(pieces["actions"][:, 3 * 1 + 2], actions[2:4, 2])  # piece 1 of agent 2
    with torch.no_grad():
        whole = network(episodes)[0]
        cut = network(pieces["observations"], pieces["state"])[0]
    assert torch.allclose(cut.reshape(2, 3, 3, -1).transpose(0, 1).reshape(6, 3, -1), whole,
                          atol=1e-5)
    assert "valid" not in pieces
    padded = sequences({"actions": actions}, torch.stack(states), 4)  # pieces of 4 and 2 + 2
    assert padded["actions"].shape == (4, 6) and padded["state"].shape == (1, 6, 16)
    assert padded["valid"].sum() == 18 and not padded["valid"][2:, 3:].any()
    assert torch.equal(padded["actions"][:2, 3:], actions[4:])
    generator = torch.Generator().manual_seed(0)
    data = {"observations": episodes, "actions": torch.randint(5, (6, 3), generator=generator),
            **{key: torch.randn(6, 3, generator=generator)
               for key in ("old_log_probs", "advantage", "returns")}}
    settings = {"clip": 0.2, "value_coef": 0.5, "entropy_coef": 0.01}
    with torch.no_grad():
        loss_whole, terms_whole = ppo_loss(network, **data, **settings)
        loss_cut, terms_cut = ppo_loss(network, **sequences(data, torch.stack(states), 4),
                                       **settings)
    assert loss_cut.item() == pytest.approx(loss_whole.item(), abs=1e-5)
    assert terms_cut.entropy == pytest.approx(terms_whole.entropy, abs=1e-5)
    with pytest.raises(ValueError, match="bptt must be >= 0"):
        SelfPlayConfig(bptt=-1)


def test_conv_encoder_reads_the_planes_as_a_grid():
    env = TeamVectorEnv(1, **TINY)
    network = team_network(env, 16, memory=False, encoder="conv")
    assert isinstance(network.body, GridEncoder)
    assert (network.body.planes, network.body.side, network.body.extras) == (6, 5, 4)
    observation = torch.zeros(1, 1, env.observation_size, dtype=torch.uint8)
    moved = observation.clone()
    moved[0, 0, 3 * 25 + 0] = 1  # the agent's own plane, top-left cell
    other = observation.clone()
    other[0, 0, 3 * 25 + 24] = 1  # bottom-right cell
    assert not torch.allclose(network(moved)[0], network(other)[0])
    with pytest.raises(ValueError, match="encoder"):
        team_network(env, 16, memory=False, encoder="transformer")
    with pytest.raises(ValueError, match="does not make an observation"):
        TeamNetwork(env.observation_size + 1, 5, 16, torch.ones(env.observation_size + 1),
                    grid=(6, 5, 4))
    with pytest.raises(ValueError, match="encoder"):
        SelfPlayConfig(encoder="cnn")


# -- self-play ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """40 updates of both teams on a 5x5 grid (76,800 steps, about 10 s)."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("selfplay") / "run"
    config = TeamRunConfig(teams="hider,seeker", steps=64 * 30 * 40, seed=0, env_kwargs=TINY,
                           hp_overrides=TINY_HP)
    train_teams(run, config, progress=False)
    return run


def trained_with(run: Path) -> dict:
    """The env options a run trained with (the tuned ones under TINY's)."""
    return json.loads((run / "config.json").read_text())["env_kwargs"]


def test_tiny_self_play_improves_each_team_over_random(tiny_run):
    hider, seeker = load_snapshot(tiny_run, "hider"), load_snapshot(tiny_run, "seeker")
    options = trained_with(tiny_run)
    assert options == {"observation": "full", **TINY}
    random_hider = play(options, "random", "random", 200, seed=1)["hider_return"]
    learned_hider = play(options, hider, "random", 200, seed=1)["hider_return"]
    learned_seeker = play(options, "random", seeker, 200, seed=1)["hider_return"]
    assert learned_hider > random_hider + 3
    assert -learned_seeker > -random_hider + 2
    rows = read_log(tiny_run)
    assert [row["update"] for row in rows] == list(range(1, 41))


def test_kickstarting_pulls_a_team_to_the_scripted_policy_then_stops(one_torch_thread):
    saved = TeamRunConfig(teams="seeker", steps=1, env_kwargs=TINY, hp_overrides={
        "num_grids": 32, "teacher_coef": 5.0, "teacher_updates": 4}).saved()
    trainer = SelfPlay(saved)

    def agreement() -> float:
        data = trainer.rollout()[0]["seeker"]
        with torch.no_grad():
            logits = trainer.networks["seeker"](data["observations"])[0]
        return float((logits.argmax(-1) == data["teacher"]).float().mean())

    before = agreement()
    for _ in range(3):
        trainer.learn(trainer.rollout()[0])
        trainer.update += 1
    assert trainer.teacher_weight == pytest.approx(5.0 * (1 - 3 / 4))
    assert agreement() > before + 0.2
    trainer.update = 4
    assert trainer.teacher_weight == 0.0 and "teacher" not in trainer.rollout()[0]["seeker"]


def test_resume_equals_an_uninterrupted_run(tmp_path, one_torch_thread):
    def config():
        return TeamRunConfig(teams="hider,seeker", steps=16 * 20 * 6, seed=3,
                             env_kwargs={**TINY, "max_steps": 20},
                             hp_overrides={"num_grids": 16, "snapshot_every": 1, "checkpoint_every": 2,
                                           "scripted_prob": 0.25, "teacher_coef": 1.0,
                                           "teacher_updates": 4})

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_teams(whole, config(), progress=False)
    train_teams(parts, config(), progress=False, stop_at=16 * 20 * 2)
    assert [row["update"] for row in read_log(parts)] == [1, 2]
    train_teams(parts, resume=True, progress=False)
    strip = [{k: v for k, v in row.items() if k != "wall_seconds"} for row in read_log(whole)]
    assert str(strip) == str([{k: v for k, v in row.items() if k != "wall_seconds"}
                              for row in read_log(parts)])  # str: NaN equals NaN
    against_scripted = [row[f"{team}_vs_scripted"] for row in strip for team in ("hider", "seeker")]
    assert all(math.isnan(value) or -20 <= value <= 20 for value in against_scripted)
    assert sum(not math.isnan(value) for value in against_scripted) >= 6
    for team in ("hider", "seeker"):
        a, b = (load_file(str(run / "checkpoints" / "step_000001920" / f"{team}.safetensors"))
                for run in (whole, parts))
        assert all(torch.equal(a[key], b[key]) for key in a)
    assert sorted(p.name for p in (whole / "pool").iterdir()) == \
        sorted(p.name for p in (parts / "pool").iterdir())


def test_a_run_saved_before_memory_and_the_league_loads_and_resumes_as_made(tmp_path):
    run = tmp_path / "old"
    options = {**TINY, "max_steps": 8}
    config = TeamRunConfig(teams="hider,seeker", steps=8 * 8, env_kwargs=options,
                           hp_overrides={"num_grids": 8, **LEGACY_HYPERPARAMETERS})
    train_teams(run, config, progress=False)
    saved = json.loads((run / "config.json").read_text())
    for key in LEGACY_HYPERPARAMETERS:
        del saved["hyperparameters"][key]
    (run / "config.json").write_text(json.dumps(saved))
    old_network = load_snapshot(run, "hider")
    assert old_network.memory is None and not isinstance(old_network.body, GridEncoder)
    train_teams(run, resume=True, steps=8 * 8 * 2, progress=False)
    rows = read_log(run)
    assert [row["update"] for row in rows] == [1, 2]
    assert all(math.isnan(row["hider_vs_scripted"]) for row in rows)


def test_bad_team_and_a_changed_resume_are_refused_and_nothing_is_lost(tiny_run):
    with pytest.raises(ValueError, match="unknown team 'seekr'.*Did you mean 'seeker'"):
        TeamRunConfig(teams="hider,seekr", steps=10)
    with pytest.raises(ValueError, match=r"scripted_prob must be in \[0, 1\).*got 1.0"):
        SelfPlayConfig(scripted_prob=1.0)
    before = {path: path.read_bytes() for path in tiny_run.rglob("*") if path.is_file()}
    with pytest.raises(ValueError, match="size=5, not 7"):
        train_teams(tiny_run, resume=True, steps=10**9, env_kwargs={"size": 7}, progress=False)
    with pytest.raises(ValueError, match="teams hider,seeker, not hider"):
        train_teams(tiny_run, resume=True, steps=10**9, teams="hider", progress=False)
    after = {path: path.read_bytes() for path in tiny_run.rglob("*") if path.is_file()}
    assert after == before


def test_a_corrupt_or_foreign_snapshot_is_named_and_left_as_it_is(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    pool = copy / "pool"
    (pool / "hider_000005.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="hider_000005.safetensors is corrupt"):
        train_teams(copy, resume=True, steps=10**9, progress=False)
    with pytest.raises(ValueError, match="hider_000005.safetensors is corrupt"):
        load_snapshot(copy, "hider", 5)
    wide = team_network(TeamVectorEnv(1, **trained_with(tiny_run)), 32, True, "conv")
    save_file(wide.state_dict(), str(pool / "seeker_000005.safetensors"))
    with pytest.raises(ValueError, match="seeker_000005.safetensors .* made for another network: "
                                         "size mismatch"):
        load_snapshot(copy, "seeker", 5)
    assert (pool / "hider_000005.safetensors").read_bytes() == b"not a safetensors file"


def test_cross_play_matrix_holds_real_games_between_snapshots(tiny_run):
    cross = cross_play(tiny_run, games=16, seed=5, snapshots=3)
    assert cross["hider_updates"] == [5, 25, 40] and cross["seeker_updates"] == [5, 25, 40]
    matrix = np.array(cross["hider_return"])
    assert matrix.shape == (3, 3)
    for i, hider in enumerate(cross["hider_updates"]):
        for j, seeker in enumerate(cross["seeker_updates"]):
            game = play(trained_with(tiny_run), load_snapshot(tiny_run, "hider", hider),
                        load_snapshot(tiny_run, "seeker", seeker), 16, seed=5)
            assert matrix[i, j] == game["hider_return"]
    assert len(np.unique(matrix)) > 1


def test_team_evaluation_plays_each_pair_of_baselines_once(tiny_run, monkeypatch):
    import rlgan.agents.team_evaluation as team_evaluation

    pairs = []

    def counted(env_kwargs, hider, seeker, games, seed):
        pairs.append((hider if isinstance(hider, str) else "learned",
                      seeker if isinstance(seeker, str) else "learned"))
        return play_games(env_kwargs, hider, seeker, games, seed)

    monkeypatch.setattr(team_evaluation, "play_games", counted)
    evaluate_teams(tiny_run, 2, 0, 1)
    baselines = ("scripted", "random")
    assert sorted(pairs) == sorted([(hider, seeker) for hider in ("learned", *baselines) for seeker in baselines]
                                   + [(hider, "learned") for hider in baselines])


def test_eval_json_and_plot_from_the_command_line(tiny_run, tmp_path, capsys):
    assert main(["eval", "--agent", str(tiny_run), "--episodes", "8", "--snapshots", "2",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["teams"]) == {"hider", "seeker"}
    assert set(result["teams"]["hider"]) == {"learned", "scripted", "random"}
    assert set(result["teams"]["hider"]["learned"]) == {"scripted", "random"}
    assert np.array(result["cross_play"]["hider_return"]).shape == (2, 2)
    errors = result["stderr"]
    assert {team: {name: set(row) for name, row in rows.items()} for team, rows in errors.items()} == \
        {team: {name: set(row) for name, row in rows.items()} for team, rows in result["teams"].items()}
    assert errors["hider"]["random"]["random"] > 0
    for team, rows in result["teams"].items():
        for opponent in ("scripted", "random"):
            difference, stderr = result["learned_minus_scripted"][team][opponent]
            assert difference == pytest.approx(rows["learned"][opponent] - rows["scripted"][opponent])
            assert stderr > 0
    assert evaluate_teams(tiny_run, 8, 0, 2) == result
    hiders = result["teams"]["hider"]
    assert result["teams"]["seeker"]["scripted"]["random"] == -hiders["random"]["scripted"]
    out = tmp_path / "teams.png"
    assert main(["plot", "--run", str(tiny_run), "--out", str(out)]) == 0
    summary = json.loads((tmp_path / "teams_phases.json").read_text())
    assert out.stat().st_size > 0 and summary and "hider_box_pushes" in summary[0]
    assert all(Path(tmp_path / f"teams_phase{k + 1}.gif").is_file() for k in range(len(summary)))


def test_train_command_line_checks_teams_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--env", "rlgan/HideAndSeek-v0", "--teams", "hider,hidr", "--steps",
                 "10", "--run", str(run)]) == 2
    assert "Did you mean 'hider'" in capsys.readouterr().err
    assert not run.exists()
    assert main(["train", "--algo", "ppo", "--env", "rlgan/HideAndSeek-v0", "--steps", "10",
                 "--run", str(run)]) == 2
    assert "--teams" in capsys.readouterr().err
    args = ["train", "--env", "rlgan/HideAndSeek-v0", "--teams", "seeker", "--steps", "64",
            "--env-kwargs", "size=5", "walls=0", "n_boxes=1", "max_steps=8", "--hp",
            "num_grids=8", "--run", str(run), "--no-progress"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["found_rate"] >= 0
    assert main(["train", "--resume", "--run", str(run), "--env-kwargs", "size=6",
                 "--no-progress"]) == 2
    assert "size=5, not 6" in capsys.readouterr().err
    assert main(["train", "--resume", "--run", str(run), "--steps", "128", "--no-progress"]) == 0
    assert [row["update"] for row in read_log(run)] == [1, 2]
