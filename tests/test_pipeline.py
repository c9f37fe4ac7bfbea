"""``rlgan shield train``: the recipe end to end on the tiny budget, resume, settings, refusals."""

import json
import multiprocessing
import os
import signal

import numpy as np
import pytest

from rlgan.cli import main
from rlgan.io import DirectoryBusyError, DirectoryLock
from rlgan.pipeline import ShieldDir, apply_overrides, default_settings, load_settings, train_shield
from rlgan.pipeline import stages as stage_module
from rlgan.pipeline.calibration import choose_depth, paired_gain, safe_depths_at, shield_choices
from rlgan.pipeline.settings import STAGES, ShieldSettings, palette_variants

DRIVING = "rlgan/Driving-v0"


def tiny_settings(agent="random", **overrides):
    settings = default_settings(DRIVING, {"map": "day"}, agent, "tiny", device="cpu")
    return apply_overrides(settings, overrides)


@pytest.fixture(scope="module")
def tiny_shield(tmp_path_factory):
    out = tmp_path_factory.mktemp("shield") / "day"
    return train_shield(out, tiny_settings(), progress=False)


def test_tiny_budget_writes_every_stage_and_a_shield_that_loads(tiny_shield):
    root = tiny_shield.root
    for name in ("settings.json", "progress.json", "records/metadata.json", "worldmodel/run.json",
                 "classifier/config.json", "calibration.json", "shield.json", "evaluation.json",
                 "report.md"):
        assert (root / name).is_file(), name
    assert list(tiny_shield.progress()) == list(STAGES)
    choice = tiny_shield.read_choice()
    assert choice["depth"] in (1, 2, 3) and 0 < choice["threshold"] < 1
    evaluation = json.loads((root / "evaluation.json").read_text())
    names = [row["name"] for row in evaluation["rows"]]
    assert names == ["agent", "gan_shield_depth1", "gan_shield_depth2", "gan_shield_depth3", "oracle_shield"]
    assert all(len(row["episode_unsafe"]) == 1 for row in evaluation["rows"])
    report = (root / "report.md").read_text()
    assert "## Closed loop" in report and "**chosen**" in report
    calibration = json.loads((root / "calibration.json").read_text())
    assert set(calibration["depth_gain"]) == {"2", "3"} and calibration["depth_stderrs"] == 2.0
    assert "beats depth 1's by more than 2 standard errors (paired over states): depth 2 " in report
    gain = calibration["depth_gain"][str(choice["depth"])] if choice["depth"] > 1 else None
    assert gain is None or gain["gain"] > 2 * gain["stderr"]
    shield = tiny_shield.load_shield(device="cpu")
    assert shield.search.config.depth == choice["depth"]
    assert shield.search.config.threshold == pytest.approx(choice["threshold"])


def test_shield_directory_holds_no_absolute_path(tiny_shield):
    root = tiny_shield.root
    for path in [root / "classifier" / "config.json", root / "shield.json", root / "settings.json"]:
        assert str(root) not in path.read_text() and "/tmp" not in path.read_text(), path


def test_shield_eval_reads_a_shield_directory(tiny_shield, capsys):
    assert main(["shield", "eval", "--shield", str(tiny_shield.root), "--episodes", "1",
                 "--env-kwargs", "max_steps=5", "--no-oracle", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["name"] for row in rows] == ["agent", "gan_shield"]


def test_play_takes_a_shield_directory_like_shield_eval(tiny_shield, capsys):
    from rlgan.cli.common import resolve_shield

    choice = tiny_shield.read_choice()
    assert resolve_shield(str(tiny_shield.root)) == (str(tiny_shield.classifier), choice["depth"],
                                                     tiny_shield.threshold())
    assert resolve_shield(str(tiny_shield.root), 1, 0.3) == (str(tiny_shield.classifier), 1, 0.3)
    assert resolve_shield("oracle") == ("oracle", None, None)
    assert main(["play", "driving", "--steps", "3", "--shield", str(tiny_shield.root)]) == 0
    assert "played 3 steps" in capsys.readouterr().out


def test_settings_round_trip(tiny_shield):
    stored = load_settings(tiny_shield.root)
    assert stored == tiny_settings()
    assert ShieldSettings.from_dict(stored.to_dict()) == stored
    assert stored.collect.env_kwargs == {"show_unsafe": True, "hazard_start": 0.5, "max_steps": 200}
    assert len(stored.collect.variants) == 51 and stored.collect.variants[1] == {"palette_seed": 0}


def test_full_budget_keeps_half_its_records_in_the_maps_own_colours():
    full = default_settings(DRIVING, {"map": "day"}, "scripted", "full")
    shards = full.collect.outcomes.episodes // full.collect.outcomes.num_envs
    palettes = [full.collect.variants[k % len(full.collect.variants)]["palette_seed"] for k in range(shards)]
    assert full.collect.outcomes.episodes == 6400
    assert palettes.count(None) == shards // 2
    assert sorted(seed for seed in set(palettes) if seed is not None) == list(range(34))
    assert default_settings(DRIVING, {"map": "day"}, "scripted", "demo").collect.variants == palette_variants()
    with pytest.raises(ValueError, match="own_colours_every"):
        palette_variants(own_colours_every=1)


def test_overrides_reach_every_section_and_misspellings_are_named():
    settings = tiny_settings(**{"classifier.steps": 7, "collect.outcomes.epsilon": 0.2,
                                "worldmodel.base_width": 8, "evaluate.env_kwargs.max_steps": 9,
                                "calibrate.depths": [1, 2]})
    assert settings.classifier.steps == 7 and settings.collect.outcomes.epsilon == 0.2
    assert settings.worldmodel["base_width"] == 8 and settings.evaluate.env_kwargs["max_steps"] == 9
    assert settings.calibrate.depths == (1, 2)
    with pytest.raises(TypeError, match="Did you mean 'steps'"):
        tiny_settings(**{"classifier.stepz": 1})
    with pytest.raises(TypeError, match="no settings section 'clasifier'"):
        tiny_settings(**{"clasifier.steps": 1})
    with pytest.raises(TypeError, match="'lr'"):
        tiny_settings(**{"worldmodel.lr": 1})
    with pytest.raises(ValueError, match="budget"):
        default_settings(DRIVING, {}, "scripted", "huge")


def test_a_finished_shield_is_refused_unless_overwritten(tiny_shield, capsys):
    with pytest.raises(FileExistsError, match="finished shield; pass --overwrite"):
        train_shield(tiny_shield.root, tiny_settings(), progress=False)
    code = main(["shield", "train", "--env", DRIVING, "--map", "day", "--budget", "tiny",
                 "--out", str(tiny_shield.root), "--no-progress"])
    assert code == 2 and "finished shield" in capsys.readouterr().err


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_after_its_last_finished_stage(tmp_path, monkeypatch):
    out = tmp_path / "shield"
    settings = tiny_settings()

    def interrupted(*args):
        raise Interrupted

    monkeypatch.setitem(stage_module.STAGES, "classifier", interrupted)
    with pytest.raises(Interrupted):
        train_shield(out, settings, progress=False)
    assert list(ShieldDir(out).progress()) == ["collect", "worldmodel"]
    monkeypatch.undo()
    with pytest.raises(FileExistsError, match="pass --resume"):
        train_shield(out, settings, progress=False)
    with pytest.raises(ValueError, match="classifier.steps"):
        train_shield(out, tiny_settings(**{"classifier.steps": 9}), resume=True, progress=False)
    saved = json.loads((out / "settings.json").read_text())
    for option in ("model", "latent_dim"):  # a run from before these options: it used the defaults
        del saved["worldmodel"][option]
    (out / "settings.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"worldmodel.model \('gan' there, 'vae' now\)"):
        train_shield(out, tiny_settings(**{"worldmodel.model": "vae"}), resume=True, progress=False)
    generator = out / "worldmodel" / "checkpoint" / "generator.safetensors"
    before = generator.stat().st_mtime_ns
    for stage in ("collect", "worldmodel"):
        monkeypatch.setitem(stage_module.STAGES, stage, interrupted)  # must not run again
    calibrate = stage_module.STAGES["calibrate"]
    monkeypatch.setitem(stage_module.STAGES, "calibrate", interrupted)
    with pytest.raises(Interrupted):  # today's defaults resume it
        train_shield(out, tiny_settings(), resume=True, progress=False)
    assert list(ShieldDir(out).progress()) == ["collect", "worldmodel", "classifier"]
    monkeypatch.setitem(stage_module.STAGES, "classifier", interrupted)
    monkeypatch.setitem(stage_module.STAGES, "calibrate", calibrate)
    assert main(["shield", "train", "--out", str(out), "--resume", "--no-progress"]) == 0  # its own settings
    assert list(ShieldDir(out).progress()) == list(STAGES)
    assert generator.stat().st_mtime_ns == before


def test_a_corrupt_stage_output_is_named_and_kept(tmp_path, monkeypatch):
    out = tmp_path / "shield"

    def interrupted(*args):
        raise Interrupted

    monkeypatch.setitem(stage_module.STAGES, "calibrate", interrupted)
    with pytest.raises(Interrupted):
        train_shield(out, tiny_settings(), progress=False)
    monkeypatch.undo()
    weights = out / "classifier" / "classifier.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ValueError, match="classifier.safetensors.*corrupt"):
        train_shield(out, tiny_settings(), resume=True, progress=False)
    assert weights.is_file() and (out / "records" / "metadata.json").is_file()


@pytest.mark.parametrize("env, kwargs, agent, message", [
    ("rlgan/Drivng-v0", {}, "scripted", "unknown environment id.*Did you mean 'rlgan/Driving-v0'"),
    ("CartPole-v1", {}, "random", "cannot save and restore its state"),
    ("rlgan/HideAndSeek-v0", {}, "random", "not pixel frames"),
    (DRIVING, {}, "no/such/run", "unknown agent .no/such/run.*Or the run directory of rlgan train"),
])
def test_a_bad_target_is_refused_before_anything_is_written(tmp_path, env, kwargs, agent, message):
    out = tmp_path / "shield"
    settings = default_settings(env, kwargs, agent, "tiny")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        train_shield(out, settings, progress=False)
    assert not out.exists()


def test_an_agent_trained_on_another_env_is_refused(tmp_path):
    from rlgan.agents.training import AgentConfig, train

    train(tmp_path / "lake", AgentConfig(algo="qlearning", env_id="FrozenLake-v1", steps=50,
                                         eval_freq=50, eval_episodes=1), progress=False)
    with pytest.raises(ValueError, match="trained on FrozenLake-v1, not rlgan/Driving-v0"):
        train_shield(tmp_path / "shield", tiny_settings(str(tmp_path / "lake")), progress=False)


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    out = tmp_path / "shield"
    with DirectoryLock(out):
        with pytest.raises(DirectoryBusyError, match=f"process {os.getpid()}"):
            train_shield(out, tiny_settings(), progress=False)
    assert not (out / "settings.json").exists()


def _hold_lock(directory, ready):
    with DirectoryLock(directory):
        ready.set()
        signal.pause()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_lock, args=(tmp_path, ready))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(DirectoryBusyError, match=f"process {holder.pid}"):
        DirectoryLock(tmp_path).__enter__()
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with DirectoryLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def _brute_force_safe_depth(levels, threshold, depth, n_actions, level, node):
    if levels[level][node] >= threshold:
        return 0
    if level + 1 == depth:
        return 1
    return 1 + max(_brute_force_safe_depth(levels, threshold, depth, n_actions, level + 1,
                                           node * n_actions + child) for child in range(n_actions))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_safe_depths_from_the_tree_of_risks_match_their_definition(depth):
    rng = np.random.default_rng(depth)
    n_actions, states = 3, 5
    levels = [rng.random((states, n_actions ** level)) for level in range(1, 4)]
    depths = safe_depths_at(levels, 0.4, depth, n_actions)
    for state in range(states):
        single = [level[state] for level in levels]
        expected = [_brute_force_safe_depth(single, 0.4, depth, n_actions, 0, action)
                    for action in range(n_actions)]
        assert depths[state].tolist() == expected


def test_shield_choices_keep_safe_actions_and_replace_unsafe_ones():
    depths = np.array([[2, 0, 1], [0, 2, 2], [0, 0, 0]])
    risks = np.array([[0.1, 0.9, 0.2], [0.9, 0.1, 0.2], [0.9, 0.3, 0.8]])
    chosen = shield_choices(depths, risks, proposed=np.array([0, 0, 0]), required=2)
    assert chosen.tolist() == [0, 1, 1]


def test_a_deeper_search_is_chosen_only_when_it_beats_depth_1_by_two_standard_errors():
    weight = np.ones(400)
    shallow = np.zeros(400)
    shallow[:40] = 1.0  # depth 1 lets 40 of 400 states go unsafe
    noisy = shallow.copy()
    noisy[:2] = 0.0  # depth 2 saves 2 of them: lower, within noise
    better = shallow.copy()
    better[:30] = 0.0  # depth 3 saves 30
    gain, stderr = paired_gain(shallow, noisy, weight)
    assert gain == pytest.approx(2 / 400)
    assert stderr == pytest.approx(np.sqrt(2 * (1 - 2 / 400) ** 2 + 398 * (2 / 400) ** 2) / 400)
    depth, gains = choose_depth({1: shallow, 2: noisy}, weight)
    assert depth == 1 and gains[2]["gain"] < 2 * gains[2]["stderr"]
    depth, gains = choose_depth({1: shallow, 2: noisy, 3: better}, weight)
    assert depth == 3 and set(gains) == {2, 3}
    assert choose_depth({2: shallow, 3: shallow}, weight)[0] == 2  # equal: the shallower
    doubled = np.where(np.arange(400) < 200, 2.0, 1.0)  # states standing for two count twice
    assert paired_gain(shallow, better, doubled)[0] == pytest.approx(60 / 600)


@pytest.mark.slow
def test_tiny_budget_on_the_second_family_hide_and_seek(tmp_path):
    settings = default_settings("rlgan/HideAndSeek-v0", {"observation": "pixels"}, "random", "tiny",
                                device="cpu")
    shield = train_shield(tmp_path / "hider", settings, progress=False)
    assert list(shield.progress()) == list(STAGES)
    records = shield.progress()["collect"]["summary"]
    assert records["states"] > 0 and records["unsafe_events"] > 0  # a random hider is seen
    evaluation = json.loads(shield.evaluation.read_text())
    assert evaluation["rows"][-1]["name"] == "oracle_shield"
    assert shield.load_shield(device="cpu").search.predictor.frame_shape == (64, 64, 3)


def test_an_exploring_agent_takes_random_actions_at_its_rate_and_keeps_its_preferences():
    from rlgan.make import make_env
    from rlgan.safety.policies import EpsilonPolicy, load_policy

    env = make_env(DRIVING)
    observation, _ = env.reset(seed=0)
    scripted = load_policy("scripted", env)
    exploring = load_policy("scripted", env, seed=3, epsilon=0.5)
    assert isinstance(exploring, EpsilonPolicy)
    own = scripted.act(observation, env)
    actions = np.array([exploring.act(observation, env) for _ in range(2000)])
    others = (actions != own).mean()  # a random action differs from the driver's 2/3 of the time
    assert abs(others - 0.5 * 2 / 3) < 0.04
    assert not isinstance(load_policy("scripted", env, seed=3, epsilon=0.0), EpsilonPolicy)
    with pytest.raises(ValueError, match="epsilon"):
        load_policy("scripted", env, epsilon=1.5)


def test_an_interrupted_comparison_resumes_after_its_finished_rows(tiny_shield, tmp_path, monkeypatch):
    from rlgan.pipeline.comparison import compare_shields
    from rlgan.safety import evaluation

    measured = []
    real_row = evaluation.evaluate_shield

    def row(name, *args, **kwargs):
        if name == "oracle_shield" and not measured.count("oracle_shield"):
            measured.append(name)
            raise Interrupted
        measured.append(name)
        return real_row(name, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_shield", row)
    partial = tmp_path / "rows.json"
    arguments = (tiny_shield, DRIVING, {"map": "day", "max_steps": 5}, "scripted", 1, 0)
    with pytest.raises(Interrupted):
        compare_shields(*arguments, partial=partial)
    assert [r["name"] for r in json.loads(partial.read_text())] == ["agent", "gan_shield"]
    rows = compare_shields(*arguments, partial=partial)
    assert measured == ["agent", "gan_shield", "oracle_shield", "oracle_shield"]
    assert [r["name"] for r in rows] == ["agent", "gan_shield", "oracle_shield"]
    assert all("removed" in r and "return_kept_stderr" in r for r in rows[1:])


@pytest.mark.slow
def test_the_same_settings_train_the_same_shield(tiny_shield, tmp_path):
    again = train_shield(tmp_path / "again", tiny_settings(), progress=False)
    assert again.read_choice() == tiny_shield.read_choice()
    first = json.loads(tiny_shield.evaluation.read_text())["rows"]
    second = json.loads(again.evaluation.read_text())["rows"]
    for a, b in zip(first, second):
        assert (a["name"], a["episode_returns"], a["episode_unsafe"]) == (b["name"], b["episode_returns"], b["episode_unsafe"])
    assert json.loads(again.calibration.read_text())["rows"] == json.loads(tiny_shield.calibration.read_text())["rows"]


def test_an_agent_that_meets_nothing_unsafe_is_told_how_to_collect_more(tmp_path):
    with pytest.raises(ValueError, match="met no unsafe step in 16 episodes.*collect.outcomes.episodes"):
        train_shield(tmp_path / "shield", tiny_settings("scripted"), progress=False)
    assert list(ShieldDir(tmp_path / "shield").progress()) == []  # the stage did not finish


def test_many_episodes_at_a_time_give_the_agent_and_oracle_rows_of_one_at_a_time(tiny_shield):
    from rlgan.pipeline.comparison import compare_shields

    arguments = (tiny_shield, DRIVING, {"map": "day", "max_steps": 12, "hazard_start": 1.0},
                 "scripted", 7, 3)
    alone = {row["name"]: row for row in compare_shields(*arguments, num_envs=1)}
    together = {row["name"]: row for row in compare_shields(*arguments, num_envs=4)}
    assert list(alone) == list(together) == ["agent", "gan_shield", "oracle_shield"]
    for name in ("agent", "oracle_shield"):
        for key in ("episode_returns", "episode_unsafe", "episode_steps", "interventions_per_1000"):
            assert alone[name][key] == together[name][key], (name, key)
    assert sum(alone["agent"]["episode_unsafe"]) > 0
    assert together["gan_shield"]["episodes"] == 7 and len(together["gan_shield"]["episode_steps"]) == 7


def test_a_shields_agent_is_found_beside_it_from_any_directory(tmp_path):
    (tmp_path / "bundle" / "agent").mkdir(parents=True)
    shield = ShieldDir(tmp_path / "bundle" / "shield")
    assert shield.agent_path("agent") == str(tmp_path / "bundle" / "agent")
    assert shield.agent_path("random") == "random"
    assert shield.agent_path("no/such/run") == "no/such/run"
