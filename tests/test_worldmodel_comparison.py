"""Comparing world models: open-loop rollout metrics, the safety classifier's foresight on
predicted frames, the VAE world model, ``rlgan plot --worldmodel-eval`` and the comparison
benchmark."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlgan.cli import main
from rlgan.data import TransitionDataset, TransitionWriter
from rlgan.safety.foresight import unsafe_foresight, within_horizons
from rlgan.worldmodel import WorldModel, WorldModelConfig, train_worldmodel
from rlgan.worldmodel.evaluate import evaluate_worldmodel
from rlgan.worldmodel.metrics import PSNR_CAP_DB
from rlgan.worldmodel.run import load_progress
from rlgan.worldmodel.rollouts import predict_rollout, rollout_metrics, steps_ahead
from rlgan.worldmodel.losses import l1_loss, l2_loss
from rlgan.worldmodel.vae import LatentDynamicsVAE, kl_to_standard_normal, vae_losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- the bar toy: a white bar at row 2*s of a black 16x16 frame, s in 0..7 ---------------------
#: How far each action moves the bar (mod 8): every step changes the frame.
MOVES = (1, 3)
#: The bar's position whose arrival is unsafe (and ends the episode, with ``terminate``).
UNSAFE_AT = 7


def bar_frame(position: int) -> np.ndarray:
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[2 * position:2 * position + 2] = 255
    return frame


def write_bar_dataset(path: Path, episodes: int = 10, steps: int = 20, terminate: bool = False) -> Path:
    """Random actions moving the bar; with ``terminate`` reaching :data:`UNSAFE_AT` is an unsafe
    step that ends the episode (the episode then has fewer than ``steps`` steps)."""
    rng = np.random.default_rng(0)
    metadata = {"env_id": "toy/Bars-v0", "env_kwargs": {}, "seed": 0, "policy": "random",
                "obs_shape": [16, 16, 3], "n_actions": len(MOVES)}
    writer = TransitionWriter(path, metadata, shard_size=1000)
    for episode in range(episodes):
        position = int(rng.integers(UNSAFE_AT))
        for step in range(steps):
            action = int(rng.integers(len(MOVES)))
            old, position = position, (position + MOVES[action]) % 8
            unsafe = position == UNSAFE_AT
            writer.add(obs=bar_frame(old), action=action, reward=0.0, next_obs=bar_frame(position),
                       unsafe=unsafe, terminated=terminate and unsafe,
                       truncated=step == steps - 1 and not (terminate and unsafe),
                       episode=episode, step=step)
            if terminate and unsafe:
                break
    writer.close()
    return path


def positions_of(frames: torch.Tensor) -> torch.Tensor:
    """The bar's position in float frames ``(B, C, 16, 16)`` in [-1, 1]: ``(B,)``."""
    return frames.mean(dim=(1, 3)).argmax(dim=1) // 2


def render_bars(positions: torch.Tensor) -> torch.Tensor:
    """Float frames ``(B, 3, 16, 16)`` in [-1, 1] of bars at ``positions``."""
    return torch.from_numpy(np.stack([bar_frame(int(p)) for p in positions])).movedim(-1, 1).float() / 127.5 - 1


class TruePredictor:
    """The bar toy's exact transition, or (``copy=True``) copying the last frame."""

    history = 1

    def __init__(self, copy: bool = False) -> None:
        self.copy = copy

    def predict(self, frames, actions, n_samples=1, generator=None):
        last = frames[:, -1]
        if self.copy:
            return last[:, None]
        moves = torch.as_tensor(MOVES)[torch.as_tensor(actions)]
        return render_bars((positions_of(last) + moves) % 8)[:, None]


class BarAtUnsafeClassifier(nn.Module):
    """A 'safety classifier' whose logit is high exactly when frame t+1 shows the bar at
    :data:`UNSAFE_AT` (pairs ``(B, 6, 16, 16)``: frame t then frame t+1)."""

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return (positions_of(pairs[:, 3:]) == UNSAFE_AT).float() * 10 - 5


@pytest.fixture(scope="module")
def bar_data(tmp_path_factory) -> Path:
    return write_bar_dataset(tmp_path_factory.mktemp("bars") / "data")


@pytest.fixture(scope="module")
def crash_data(tmp_path_factory) -> Path:
    return write_bar_dataset(tmp_path_factory.mktemp("bars") / "crashes", episodes=30, terminate=True)


# -- rollouts -----------------------------------------------------------------------------------
def test_the_true_transition_rolls_out_exactly_and_copy_last_matches_a_hand_computation(bar_data):
    dataset = TransitionDataset(bar_data, 1)
    depth = 16
    result = rollout_metrics(TruePredictor(), dataset, depth, 40, torch.Generator(),
                             baseline=TruePredictor(copy=True))
    assert result["rollouts"] == 40
    assert result["psnr_by_depth"] == [PSNR_CAP_DB] * depth  # identical frames at every step
    assert result["ssim_by_depth"] == pytest.approx([1.0] * depth, abs=1e-6)
    assert result["sharpness_by_depth"] == [PSNR_CAP_DB] * depth
    # By hand: two bars of 2 rows differ in 4 of 16 rows, MSE = 255^2 / 4, PSNR = 10 log10(4).
    steps, _ = steps_ahead(dataset, np.arange(len(dataset)), depth)
    starts = np.flatnonzero(steps == depth)
    starts = starts[np.linspace(0, len(starts) - 1, 40).round().astype(int)]
    rows = dataset.indices[starts]
    start_positions = dataset.arrays["obs"][rows].mean(axis=(2, 3)).argmax(axis=1) // 2
    for k in range(depth):
        later = dataset.arrays["next_obs"][rows + k].mean(axis=(2, 3)).argmax(axis=1) // 2
        expected = np.where(later == start_positions, PSNR_CAP_DB, 10 * math.log10(4)).mean()
        assert result["psnr_by_depth_copy_last"][k] == pytest.approx(expected, abs=1e-4)
    assert result["psnr_by_depth_baseline"] == pytest.approx(result["psnr_by_depth_copy_last"])
    assert result["ssim_by_depth_baseline"] == pytest.approx(result["ssim_by_depth_copy_last"])
    assert rollout_metrics(TruePredictor(), dataset, 4, 8, torch.Generator())["psnr_by_depth_baseline"] is None


def test_a_rollout_feeds_its_own_predictions_back():
    frames = render_bars(torch.tensor([0, 5]))[:, None]  # (2, 1, 3, 16, 16)
    actions = torch.tensor([[0, 1, 1], [1, 0, 0]])
    rolled = predict_rollout(TruePredictor(), frames, actions, torch.Generator())
    assert rolled.shape == (2, 3, 3, 16, 16)
    assert positions_of(rolled.flatten(0, 1)).reshape(2, 3).tolist() == [[1, 4, 7], [0, 1, 2]]
    with pytest.raises(ValueError, match="one batch size"):
        predict_rollout(TruePredictor(), frames, actions[:1], torch.Generator())


def test_steps_ahead_stop_at_the_episode_end_and_tell_termination(crash_data):
    dataset = TransitionDataset(crash_data, 1)
    steps, terminated = steps_ahead(dataset, np.arange(len(dataset)), 8)
    episode, step = dataset.arrays["episode"], dataset.arrays["step"]
    last = np.r_[episode[1:] != episode[:-1], True]  # the last recorded step of an episode
    assert np.all(steps[last] == 1) and np.all(terminated[last] == dataset.arrays["terminated"][last])
    crashed = dataset.arrays["terminated"]
    assert crashed.any() and np.all(steps[np.flatnonzero(crashed) - 1][step[crashed] > 0] == 2)
    assert steps.max() == 8


# -- foresight ------------------------------------------------------------------------------------
def test_within_horizons_reduces_over_the_recorded_steps_only():
    per_step = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    steps = np.array([4, 4, 2])
    assert within_horizons(per_step, steps, [1, 2, 4], "any").tolist() == [
        [False, False, True], [True, True, True], [False, False, False]]
    scores = np.array([[0.1, 0.5, 0.2, 0.9]])
    assert within_horizons(scores, np.array([3]), [1, 2, 4], "max").tolist() == [[0.1, 0.5, 0.5]]


def test_foresight_of_a_perfect_model_is_perfect_and_copy_last_foresees_nothing(crash_data):
    dataset = TransitionDataset(crash_data, 1)
    result = unsafe_foresight(BarAtUnsafeClassifier(), {"true": TruePredictor(),
                                                        "copy": TruePredictor(copy=True)},
                              dataset, horizons=(1, 2, 4, 8), count=10_000)
    assert result["horizons"] == [1, 2, 4, 8] and result["starts"] > 100
    assert result["positives"] == sorted(result["positives"]) and result["positives"][0] > 5
    assert result["auc"]["true"] == [1.0, 1.0, 1.0, 1.0]
    assert result["auc_recorded_frames"] == [1.0, 1.0, 1.0, 1.0]
    # copy-last shows frame t at every step, and no start shows the bar at 7 (reaching it ends
    # the episode): every start scores the same, chance level.
    assert result["auc"]["copy"] == [0.5, 0.5, 0.5, 0.5]
    assert result["auc_stderr"] == {"true": [0.0] * 4, "copy": [0.0] * 4}  # the same in every resample
    assert 1 < result["episodes"] < result["starts"]
    with pytest.raises(ValueError, match="increasing"):
        unsafe_foresight(BarAtUnsafeClassifier(), {}, dataset, horizons=(4, 2))


def test_eval_with_a_classifier_reports_foresight_and_plots_the_curves(tiny_dataset, tiny_worldmodel_run,
                                                                       tiny_safety_run, tmp_path, capsys):
    assert main(["worldmodel", "eval", "--run", str(tiny_worldmodel_run), "--data", str(tiny_dataset),
                 "--classifier", str(tiny_safety_run), "--baseline-run", str(tiny_worldmodel_run),
                 "--states", "0", "--samples", "16", "--depth", "6", "--rollouts", "8",
                 "--foresight-starts", "32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for metric in ("psnr", "ssim", "sharpness"):
        for suffix in ("", "_copy_last", "_baseline"):
            assert len(result[f"{metric}_by_depth{suffix}"]) == 6
    foresight = result["foresight"]
    assert foresight["horizons"] == [1, 2, 4, 8] and set(foresight["auc"]) == {"model", "baseline"}
    assert 0 < foresight["starts"] <= 32 and not foresight["mirror_average"]
    assert main(["worldmodel", "eval", "--run", str(tiny_worldmodel_run), "--data", str(tiny_dataset),
                 "--classifier", str(tiny_safety_run), "--states", "0", "--samples", "16", "--depth", "2",
                 "--rollouts", "8", "--foresight-starts", "32", "--mirror-average"]) == 0
    assert "averaged with the mirror image" in capsys.readouterr().out
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(result))
    assert main(["plot", "--worldmodel-eval", str(path)]) == 0
    png = tmp_path / "eval.png"
    assert capsys.readouterr().out.strip() == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    path.write_text(json.dumps({"run": "x"}))
    assert main(["plot", "--worldmodel-eval", str(path)]) == 2
    assert "not the output of rlgan worldmodel eval" in capsys.readouterr().err
    assert main(["worldmodel", "eval", "--run", str(tiny_worldmodel_run), "--data", str(tiny_dataset),
                 "--states", "0", "--samples", "8", "--depth", "3"]) == 0
    report = capsys.readouterr().out
    assert "step 2" in report and "SSIM, copy-last" in report and "ROC AUC" not in report


# -- the VAE --------------------------------------------------------------------------------------
def test_vae_has_the_generators_interface_and_predicts_the_posterior_mean():
    config = WorldModelConfig(model="vae", frame_height=32, frame_width=16, history=2,
                              base_width=8, latent_dim=12, z_dim=0)
    vae = LatentDynamicsVAE(config).eval()
    frames = torch.rand(5, 6, 32, 16) * 2 - 1
    actions = torch.tensor([0, 1, 2, 0, 1])
    mean, log_variance = vae.encode(frames)
    assert mean.shape == log_variance.shape == (5, 12, 1, 1)
    predicted = vae(frames, actions)
    assert predicted.shape == (5, 3, 32, 16) and predicted.abs().max() <= 1
    assert torch.equal(vae.decode(frames, mean, log_variance, actions, torch.randn(5, 3)), predicted)
    assert not torch.equal(vae(frames, torch.tensor([1, 2, 0, 1, 2])), predicted)  # action matters
    assert float(kl_to_standard_normal(torch.zeros(4, 3), torch.zeros(4, 3))) == 0.0
    assert float(kl_to_standard_normal(torch.ones(2, 3), torch.zeros(2, 3))) == pytest.approx(1.5)


def test_vae_learns_a_transition_better_than_copy_last(tmp_path):
    data = write_bar_dataset(tmp_path / "bars")
    result = train_worldmodel(data, tmp_path / "vae", {
        "model": "vae", "steps": 200, "batch_size": 32, "base_width": 8, "latent_dim": 16,
        "history": 1, "log_every": 50, "sample_every": 200, "checkpoint_every": 200,
        "device": "cpu"}, progress=False)
    assert result["val"]["psnr"] > result["val"]["psnr_copy_last"] + 3
    report = evaluate_worldmodel(tmp_path / "vae", data, states=0, max_samples=64, depth=2,
                                 rollouts_count=32)
    assert report["psnr"] > report["psnr_copy_last"] + 3 and report["ssim"] > report["ssim_copy_last"]
    assert report["psnr_by_depth"][0] > report["psnr_by_depth_copy_last"][0] + 3


def test_unrolled_vae_loss_feeds_its_predictions_back_and_averages_the_steps():
    config = WorldModelConfig(model="vae", frame_height=16, frame_width=16, history=2,
                              base_width=8, latent_dim=6, z_dim=0, lambda_adv=0.0, unroll=3)
    torch.manual_seed(0)
    vae = LatentDynamicsVAE(config).eval()  # batch norm in eval: the same function twice
    frames = torch.rand(4, 6, 16, 16) * 2 - 1
    targets = torch.rand(4, 3, 3, 16, 16) * 2 - 1
    actions = torch.tensor([[0, 1, 2], [1, 1, 0], [2, 0, 1], [0, 2, 2]])
    noise = torch.randn(4, 6)
    loss, logs = vae_losses(vae, frames, targets, actions, noise, config)
    mean, log_variance = (t.flatten(1) for t in vae.encode(frames))
    history = frames
    prediction = vae.render(vae.step(mean + (0.5 * log_variance).exp() * noise, actions[:, 0]))
    expected = l1_loss(prediction, targets[:, 0]) / 3
    squared = l2_loss(prediction, targets[:, 0]) / 3
    for k in (1, 2):
        history = torch.cat([history[:, 3:], prediction], dim=1)
        prediction = vae(history, actions[:, k])
        expected = expected + l1_loss(prediction, targets[:, k]) / 3
        squared = squared + l2_loss(prediction, targets[:, k]) / 3
    assert logs["l1"] == pytest.approx(float(expected.detach()), rel=1e-5)
    assert logs["l2"] == pytest.approx(float(squared.detach()), rel=1e-5)
    _, one_logs = vae_losses(vae, frames, targets[:, :1], actions[:, :1], noise, config)
    assert one_logs["l1"] != pytest.approx(logs["l1"]) and one_logs["kl"] == pytest.approx(logs["kl"])
    loss.backward()
    assert vae.transition[0].weight.grad.abs().sum() > 0


def test_vae_trains_on_its_own_rollouts(tmp_path):
    data = write_bar_dataset(tmp_path / "bars", episodes=4)
    result = train_worldmodel(data, tmp_path / "vae", {
        "model": "vae", "unroll": 3, "steps": 2, "batch_size": 4, "base_width": 8,
        "latent_dim": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
        "device": "cpu"}, progress=False)
    assert result["step"] == 2 and WorldModel.load(tmp_path / "vae").config.unroll == 3


def test_vae_runs_save_resume_load_and_predict_like_the_gan(tmp_path):
    data = write_bar_dataset(tmp_path / "bars", episodes=4)
    run = tmp_path / "vae"
    options = {"model": "vae", "steps": 2, "batch_size": 4, "base_width": 8, "latent_dim": 8,
               "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "device": "cpu"}
    train_worldmodel(data, run, options, progress=False)
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == [
        "generator.safetensors", "optimizers.pt", "progress.json"]
    result = train_worldmodel(data, run, {"steps": 4}, resume=True, progress=False)
    assert result["step"] == 4 and result["samples_seen"] == 16
    model = WorldModel.load(run)
    assert model.config.model == "vae" and model.config.lambda_adv == 0 and model.config.z_dim == 0
    frames = np.stack([bar_frame(p) for p in (1, 2, 3, 4)]).reshape(2, 2, 16, 16, 3)
    children = model.predict_children(frames, [0, 1])
    assert children.shape == (2, 2, 1, 16, 16, 3) and children.dtype == np.uint8
    one_by_one = model.predict(np.repeat(frames, 2, axis=0), [0, 1, 0, 1])
    assert np.array_equal(children.reshape(4, 1, 16, 16, 3), one_by_one)
    with pytest.raises(ValueError, match="lambda_adv apply to the GAN only"):
        train_worldmodel(data, tmp_path / "bad", {**options, "lambda_adv": 0.1})
    with pytest.raises(ValueError, match="model"):
        WorldModelConfig(model="diffusion")


def test_cli_trains_a_vae(tmp_path, capsys):
    data = write_bar_dataset(tmp_path / "bars", episodes=3)
    assert main(["worldmodel", "train", "--model", "vae", "--data", str(data), "--run",
                 str(tmp_path / "run"), "--steps", "2", "--batch-size", "4", "--device", "cpu",
                 "--set", "base_width=8", "latent_dim=8", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2
    assert main(["worldmodel", "train", "--model", "vae", "--lambda-adv", "0.1", "--data", str(data),
                 "--run", str(tmp_path / "other")]) == 2
    assert "GAN only" in capsys.readouterr().err


# -- the comparison benchmark ---------------------------------------------------------------------
def test_comparison_benchmark_refuses_bad_foresight_inputs_before_training(tmp_path, capsys,
                                                                          tiny_safety_run):
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import bench_worldmodel

    out = tmp_path / "compare"
    for extra, message in (
            (["--foresight-data", str(tmp_path)], "--foresight-data needs --classifier"),
            (["--classifier", str(tmp_path / "none")], "safety run config not found"),
            (["--classifier", str(tiny_safety_run), "--foresight-data", str(tmp_path / "none")],
             "dataset directory not found")):
        with pytest.raises(SystemExit):
            bench_worldmodel.main(["compare", "--budget", "tiny", "--out", str(out), *extra])
        assert message in capsys.readouterr().err
        assert not out.exists()


@pytest.mark.slow
def test_comparison_benchmark_runs_on_the_tiny_budget(tmp_path, capsys, tiny_safety_run,
                                                      tiny_dataset):
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import bench_worldmodel

    bench_worldmodel.main(["compare", "--budget", "tiny", "--out", str(tmp_path / "compare")])
    table = capsys.readouterr().out
    for name in ("regression", "gan", "vae", "copy-last"):
        assert f"| {name} | psnr |" in table
    results = json.loads((tmp_path / "compare" / "compare.json").read_text())
    assert set(results) == {"regression", "gan", "vae"}
    for result in results.values():
        assert len(result["eval"]["psnr_by_depth"]) == 16 and result["samples_per_second"] > 0

    out = tmp_path / "compare"  # the GAN's run interrupted at step 50: --reuse resumes it
    tiny = bench_worldmodel.COMPARE_BUDGETS["tiny"]["train"]
    settings = {**tiny, "seed": 0, "checkpoint_every": 50, "device": "cpu", "steps": 50}
    train_worldmodel(out / "data", out / "gan", settings, progress=False, overwrite=True)
    finished = (out / "vae" / "checkpoint" / "progress.json").stat().st_mtime_ns
    capsys.readouterr()
    bench_worldmodel.main(["compare", "--budget", "tiny", "--out", str(out), "--reuse",
                           "--classifier", str(tiny_safety_run),
                           "--foresight-data", str(tiny_dataset)])
    assert load_progress(out / "gan")["step"] == tiny["steps"]
    assert (out / "vae" / "checkpoint" / "progress.json").stat().st_mtime_ns == finished
    assert "| gan | AUC unsafe within k |" in capsys.readouterr().out
    results = json.loads((out / "compare.json").read_text())
    for result in results.values():  # on the other recording, the classifier's held-out part
        assert result["foresight"]["split"] == \
            "episodes held out by the world model and the classifier"
        assert result["foresight"]["horizons"] == [1, 2, 4, 8]


# -- where rollouts lose their edges ---------------------------------------------------------------
def regions_benchmark():
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import bench_worldmodel_regions

    return bench_worldmodel_regions


def test_region_scores_put_each_error_in_its_region():
    regions = regions_benchmark()
    truth = torch.zeros(2, 1, 3, 8, 8)
    predicted = truth.clone()
    predicted[:, :, :, 1, 1] = 200.0  # one wrong pixel, inside the "cars" region
    cars = torch.zeros(2, 1, 1, 8, 8)
    cars[..., :3, :3] = 1.0
    masks = {"cars": cars, "rest": 1 - cars}
    scores = regions.region_scores(predicted, truth, masks)
    assert scores["share_cars"] == [1.0] and scores["share_rest"] == [0.0]
    assert scores["perfect_cars"] == [PSNR_CAP_DB]
    mean_error = 4 * 200.0 * 3 / (3 * 8 * 8)  # |dx| + |dy| of the pixel and of its right and lower neighbours
    assert scores["sharpness"][0] == pytest.approx(10 * math.log10(255.0**2 / mean_error))
    assert scores["perfect_rest"] == pytest.approx(scores["sharpness"])


def test_regions_benchmark_splits_a_runs_rollouts(tmp_path, capsys, tiny_worldmodel_run):
    regions = regions_benchmark()
    out = tmp_path / "regions.json"
    regions.main([str(tiny_worldmodel_run), "--rollouts", "4", "--depth", "3", "--json", str(out)])
    table = capsys.readouterr().out
    for name in ("copy-last", *regions.WRONG_STATES, str(tiny_worldmodel_run)):
        for step in (1, 3):
            assert f"| {name} | {step} |" in table
    figures = json.loads(out.read_text())
    for name in regions.WRONG_STATES:  # crisp but misplaced: far sharper than copying the frame
        assert figures["models"][name]["sharpness"][0] > figures["models"]["copy-last"]["sharpness"][0]
    assert len(figures["differs"]) == 3 and all(0.0 <= share <= 1.0 for share in figures["differs"])
    for scores in figures["models"].values():
        for k in range(3):
            assert sum(scores[f"share_{r}"][k] for r in regions.REGIONS) == pytest.approx(1.0)
            assert all(scores[f"perfect_{r}"][k] >= scores["sharpness"][k] - 1e-9
                       for r in regions.REGIONS)


def test_regions_benchmark_refuses_foggy_maps_long_rollouts_and_missing_runs(tiny_worldmodel_run, capsys):
    regions = regions_benchmark()
    with pytest.raises(SystemExit, match="has fog"):
        regions.make_env("rlgan/Driving-v0", {"map": "night"})
    with pytest.raises(SystemExit):
        regions.main([str(tiny_worldmodel_run), "--depth", "16"])
    assert "--depth must be in 1..15" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        regions.main([str(tiny_worldmodel_run.parent / "missing")])
    assert "is not a world-model run" in capsys.readouterr().err
