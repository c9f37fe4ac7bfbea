"""The SAD-GAN world model: networks, losses, metrics, training, checkpoints, predictor,
evaluation, dream, CLI, torchrun and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rlgan  # noqa: F401  (registers the envs)
import rlgan.worldmodel.step as step_module
from rlgan.cli import main
from rlgan.compiled import FixedBatchNetwork, pad_rows, tree_batch_sizes
from rlgan.data import DatasetError, TransitionWriter
from conftest import record_dataset, write_square_dataset
from rlgan.make import make_env
from rlgan.worldmodel import (
    Discriminator,
    Generator,
    TrainingDiverged,
    WorldModel,
    WorldModelConfig,
    train_worldmodel,
)
from rlgan.data.replay import replay_every_action
from rlgan.worldmodel.data import collate, rank_data
from rlgan.worldmodel.evaluate import counterfactual, evaluate_worldmodel, stderr_over_groups
from rlgan.worldmodel.losses import (
    best_sample_terms,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    generator_loss,
    gradient_difference_loss,
    l1_loss,
    l2_loss,
)
from rlgan.worldmodel.metrics import PSNR_CAP_DB, psnr, sharpness, ssim
from rlgan.worldmodel.run import load_checkpoint, load_progress, save_checkpoint
from rlgan.worldmodel.step import GANStep
from rlgan.demo.weights import BUNDLED
from rlgan.pipeline import load_settings

FAST = {"log_every": 2, "sample_every": 4, "checkpoint_every": 4, "batch_size": 8,
        "base_width": 8, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- datasets ---------------------------------------------------------------------------------
def record_driving(path: Path, steps: int = 240, max_steps: int = 40) -> Path:
    """Scripted driving at 32x32 with a random key 30% of the time, shards of 60."""
    kwargs = {"obs_height": 32, "obs_width": 32, "max_steps": max_steps}
    env = make_env("rlgan/Driving-v0", **kwargs)
    record_dataset(path, env, "rlgan/Driving-v0", kwargs, "scripted", steps, seed=3, epsilon=0.3,
                   shard_size=60)
    env.close()
    return path


@pytest.fixture(scope="module")
def square_data(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("square") / "data")


@pytest.fixture(scope="module")
def driving_data(tmp_path_factory) -> Path:
    return record_driving(tmp_path_factory.mktemp("driving") / "data")


@pytest.fixture(scope="module")
def driving_run(driving_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("driving_run") / "run"
    train_worldmodel(driving_data, run, {**FAST, "steps": 4, "history": 2}, progress=False)
    return run


# -- networks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("height, width, channels, history, conditioning, discriminator", [
    (16, 16, 1, 1, "film", "patch"),
    (32, 32, 3, 2, "concat", "global"),
    (64, 64, 3, 2, "film", "patch"),
    (96, 64, 3, 3, "film", "global"),
    (32, 48, 1, 4, "concat", "patch"),
])
def test_generator_and_discriminator_shapes_and_ranges(height, width, channels, history,
                                                       conditioning, discriminator):
    config = WorldModelConfig(frame_height=height, frame_width=width, channels=channels,
                              history=history, conditioning=conditioning,
                              discriminator=discriminator, base_width=8)
    generator, critic = Generator(config), Discriminator(config)
    frames = torch.rand(5, history * channels, height, width) * 2 - 1
    actions = torch.tensor([0, 1, 2, 0, 1])
    out = generator(frames, actions, torch.randn(5, config.z_dim))
    assert out.shape == (5, channels, height, width) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    logits = critic(frames[:, -channels:], out, actions)
    patches = (height // 8) * (width // 8) if discriminator == "patch" else 1
    assert logits.shape == (5, patches) and torch.isfinite(logits).all()


def test_generator_output_depends_on_the_action_and_noise():
    torch.manual_seed(0)
    config = WorldModelConfig(frame_height=32, frame_width=32, base_width=8)
    generator = Generator(config).eval()
    frames = torch.rand(1, 2 * 3, 32, 32) * 2 - 1
    z = torch.randn(1, config.z_dim)
    with torch.no_grad():
        outs = [generator(frames, torch.tensor([a]), z) for a in range(3)]
        other_z = generator(frames, torch.tensor([0]), torch.randn(1, config.z_dim))
    assert (outs[0] - outs[1]).abs().max() > 1e-5 and (outs[1] - outs[2]).abs().max() > 1e-5
    assert (other_z - outs[0]).abs().max() > 1e-5
    # untrained, it about copies the last frame (zero flow, mask near 1)
    assert (outs[0] - frames[:, 3:]).abs().max() < 0.1


def test_model_is_small_enough_to_bundle():
    generator = Generator(WorldModelConfig())
    assert sum(p.numel() for p in generator.parameters()) * 4 < 4e6  # bytes of float32 weights


# -- losses -----------------------------------------------------------------------------------
def test_losses_on_known_inputs():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert l1_loss(a, b).item() == pytest.approx(0.5)
    assert gradient_difference_loss(b, a).item() == 0.0  # flat images have no edges
    edge = torch.zeros(1, 1, 4, 4)
    edge[..., 2:] = 1.0  # one vertical edge of height 1 in each row
    # |dx| differs by 1 at one of 3 horizontal positions per row; no vertical gradients
    assert gradient_difference_loss(edge, a[:1, :1]).item() == pytest.approx(1 / 3)
    zero = torch.zeros(3, 5)
    assert generator_adversarial_loss(zero).item() == pytest.approx(math.log(2))
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert discriminator_loss(torch.full((3,), 20.0), torch.full((3,), -20.0)).item() < 1e-6


def test_generator_loss_with_lambda_zero_is_the_regression_loss():
    predicted, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss, logs = generator_loss(predicted, target, None, 0.0, 1.0, 0.5)
    expected = l1_loss(predicted, target) + 0.5 * gradient_difference_loss(predicted, target)
    assert loss.item() == pytest.approx(expected.item())
    assert "adv" not in logs
    loss, logs = generator_loss(predicted, target, torch.zeros(2, 4), 0.1)
    assert loss.item() == pytest.approx(l1_loss(predicted, target).item() + 0.1 * math.log(2))
    with pytest.raises(ValueError, match="lambda_adv"):
        generator_loss(predicted, target, None, 0.1)
    assert l2_loss(torch.zeros(2, 3), torch.full((2, 3), 0.5)).item() == pytest.approx(0.25)
    loss, logs = generator_loss(predicted, target, None, 0.0, 1.0, 0.0, 10.0)
    assert loss.item() == pytest.approx(l1_loss(predicted, target).item()
                                        + 10 * l2_loss(predicted, target).item())
    assert logs["l2"] == pytest.approx(l2_loss(predicted, target).item())
    with pytest.raises(ValueError, match="l1_weight, l2_weight, gdl_weight and lambda_adv are all 0"):
        WorldModelConfig(l1_weight=0.0, l2_weight=0.0, lambda_adv=0.0)


def test_runs_and_shield_settings_stored_before_l2_weight_load_with_l1_alone(tmp_path):
    assert WorldModelConfig().l2_weight == 10.0  # the default of new runs
    shield = tmp_path / "shield"
    shutil.copytree(BUNDLED / "shield", shield)
    for path, section in ((shield / "worldmodel" / "run.json", "config"), (shield / "settings.json", "worldmodel")):
        stored = json.loads(path.read_text())
        stored[section].pop("l2_weight", None)  # as written before the option existed
        path.write_text(json.dumps(stored))
    assert WorldModel.load(shield / "worldmodel").config.l2_weight == 0.0
    assert load_settings(shield).worldmodel["l2_weight"] == 0.0


class ExplodingDiscriminator(torch.nn.Module):
    """A discriminator that must never be called."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, *args):
        raise AssertionError("the discriminator was called with lambda_adv = 0")


def test_lambda_zero_step_is_a_pure_regression_step():
    config = WorldModelConfig(frame_height=16, frame_width=16, history=1, base_width=8,
                              lambda_adv=0.0)
    torch.manual_seed(0)
    generator = Generator(config)
    reference = Generator(config)
    reference.load_state_dict(generator.state_dict())
    critic = ExplodingDiscriminator()
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.1)
    update = GANStep(config, generator, critic, optimizer, torch.optim.SGD(critic.parameters(), lr=0.1),
                     torch.Generator().manual_seed(5))
    batch = {"frames": torch.rand(4, 3, 16, 16) * 2 - 1, "next_frame": torch.rand(4, 3, 16, 16) * 2 - 1,
             "action": torch.tensor([0, 1, 2, 1])}
    logs = update([batch], 1)
    z = torch.randn(4, config.z_dim, generator=torch.Generator().manual_seed(5))
    predicted = reference(batch["frames"], batch["action"], z)
    (l1_loss(predicted, batch["next_frame"]) + 10 * l2_loss(predicted, batch["next_frame"])).backward()
    for (name, param), ref in zip(generator.named_parameters(), reference.parameters()):
        assert param.grad is not None and torch.allclose(param.grad, ref.grad, atol=1e-6), name
    assert set(logs) == {"l1", "l2", "g_total"} and critic.weight.grad is None


def test_adversarial_step_trains_both_networks_and_d_steps_use_extra_batches():
    config = WorldModelConfig(frame_height=16, frame_width=16, history=1, base_width=8,
                              lambda_adv=0.5, d_steps=2)
    generator, critic = Generator(config), Discriminator(config)
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in critic.parameters()]
    optimizers = [torch.optim.Adam(net.parameters(), 1e-3) for net in (generator, critic)]
    update = GANStep(config, generator, critic, *optimizers, torch.Generator().manual_seed(0))

    def batch():
        return {"frames": torch.rand(4, 3, 16, 16) * 2 - 1,
                "next_frame": torch.rand(4, 3, 16, 16) * 2 - 1, "action": torch.tensor([0, 1, 2, 1])}

    logs = update([batch(), batch()], 1)
    assert {"d_loss", "adv", "l1", "g_total"} <= set(logs)
    assert optimizers[1].state[next(critic.parameters())]["step"] == 2  # k = 2 D steps
    assert any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, critic.parameters()))
    assert all(p.requires_grad for p in critic.parameters())


def test_feature_matching_adds_the_distance_of_the_discriminators_features():
    real, fake = [torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 4, 4)], [torch.ones(2, 4, 8, 8), torch.zeros(2, 8, 4, 4)]
    assert feature_matching_loss(real, real).item() == 0.0
    assert feature_matching_loss(real, fake).item() == pytest.approx(0.5)  # level 1 differs by 1, level 2 not
    with pytest.raises(ValueError, match="same number"):
        feature_matching_loss(real, fake[:1])

    config = WorldModelConfig(frame_height=16, frame_width=16, history=2, base_width=8, z_dim=0,
                              lambda_adv=0.5, adv_warmup=0, feature_matching=2.0)
    torch.manual_seed(0)
    generator, reference, critic = Generator(config), Generator(config), Discriminator(config)
    reference.load_state_dict(generator.state_dict())
    optimizers = [torch.optim.Adam(net.parameters(), 1e-3) for net in (generator, critic)]
    batch = {"frames": torch.rand(4, 6, 16, 16) * 2 - 1, "next_frame": torch.rand(4, 3, 16, 16) * 2 - 1,
             "action": torch.tensor([0, 1, 2, 1])}
    logs = GANStep(config, generator, critic, *optimizers, torch.Generator().manual_seed(0))([batch], 1)
    with torch.no_grad():  # the generator before its update, the discriminator after its own
        predicted = reference(batch["frames"], batch["action"], torch.zeros(4, 0))
        newest = batch["frames"][:, 3:]
        matching = feature_matching_loss(critic.levels(newest, batch["next_frame"]),
                                         critic.levels(newest, predicted))
    assert logs["fm"] == pytest.approx(matching.item(), rel=1e-5)
    assert logs["g_total"] == pytest.approx(logs["l1"] + 10 * logs["l2"] + 0.5 * logs["adv"]
                                            + 2.0 * logs["fm"], rel=1e-5)
    with pytest.raises(ValueError, match="feature_matching is 2.0 but no feature-matching loss"):
        generator_loss(predicted, batch["next_frame"], None, 0.0, feature_matching=2.0)
    with pytest.raises(ValueError, match="feature_matching=1.0 compares the discriminator's features"):
        WorldModelConfig(feature_matching=1.0, lambda_adv=0.0)
    with pytest.raises(ValueError, match="feature_matching must be a number >= 0"):
        WorldModelConfig(feature_matching=-1.0)


def test_unrolled_step_feeds_its_predictions_back_and_averages_the_steps():
    config = WorldModelConfig(frame_height=16, frame_width=16, history=2, base_width=8,
                              lambda_adv=0.0, unroll=3)
    torch.manual_seed(0)
    generator, reference = Generator(config), Generator(config)
    reference.load_state_dict(generator.state_dict())
    update = GANStep(config, generator, ExplodingDiscriminator(),
                     torch.optim.SGD(generator.parameters(), lr=0.1), None,
                     torch.Generator().manual_seed(5))
    frames = torch.rand(4, 6, 16, 16) * 2 - 1
    targets = torch.rand(4, 3, 3, 16, 16) * 2 - 1
    actions = torch.tensor([[0, 1, 2], [1, 1, 0], [2, 0, 1], [0, 2, 2]])
    batch = {"frames": frames, "next_frame": targets[:, 0], "action": actions[:, 0],
             "next_frames": targets, "actions": actions}
    update([batch], 1)
    noise = torch.Generator().manual_seed(5)
    history, loss = frames, 0.0
    for k in range(3):
        prediction = reference(history, actions[:, k], torch.randn(4, config.z_dim, generator=noise))
        loss = loss + (l1_loss(prediction, targets[:, k]) + 10 * l2_loss(prediction, targets[:, k])) / 3
        history = torch.cat([history[:, 3:], prediction], dim=1)  # the prediction, with gradient
    loss.backward()
    for (name, param), ref in zip(generator.named_parameters(), reference.parameters()):
        assert param.grad is not None and torch.allclose(param.grad, ref.grad, atol=1e-6), name

    adversarial = WorldModelConfig(frame_height=16, frame_width=16, history=2, base_width=8,
                                   lambda_adv=0.5, unroll=3)
    critic = Discriminator(adversarial)
    optimizers = [torch.optim.Adam(net.parameters(), 1e-3) for net in (generator, critic)]
    unrolled = GANStep(adversarial, generator, critic, *optimizers,
                       torch.Generator().manual_seed(0)).rollout(generator, batch)
    assert unrolled.predictions.shape == unrolled.targets.shape == (12, 3, 16, 16)
    assert torch.equal(unrolled.recorded_inputs[4:8], targets[:, 0])  # step 1 follows frame t+1
    assert torch.equal(unrolled.inputs[4:8], unrolled.predictions[:4])  # ... as predicted
    assert torch.equal(unrolled.actions, actions.T.flatten())
    logs = GANStep(adversarial, generator, critic, *optimizers,
                   torch.Generator().manual_seed(0))([batch], 1)
    assert {"d_loss", "adv", "l1", "g_total"} <= set(logs)


def test_sequence_discriminator_judges_each_rollout_whole():
    config = WorldModelConfig(frame_height=16, frame_width=16, history=2, base_width=8,
                              lambda_adv=0.5, unroll=3, discriminator="sequence")
    torch.manual_seed(0)
    generator, critic = Generator(config), Discriminator(config)
    optimizers = [torch.optim.Adam(net.parameters(), 1e-3) for net in (generator, critic)]
    update = GANStep(config, generator, critic, *optimizers, torch.Generator().manual_seed(0))
    frames = torch.rand(4, 6, 16, 16) * 2 - 1
    targets = torch.rand(4, 3, 3, 16, 16) * 2 - 1
    actions = torch.tensor([[0, 1, 2], [1, 1, 0], [2, 0, 1], [0, 2, 2]])
    batch = {"frames": frames, "next_frame": targets[:, 0], "action": actions[:, 0],
             "next_frames": targets, "actions": actions}
    unrolled = update.rollout(generator, batch)
    (first, recorded, recorded_actions), (fake_first, predicted, fake_actions) = update.judged(unrolled, True)
    assert torch.equal(first, frames[:, 3:]) and torch.equal(fake_first, first)
    assert torch.equal(recorded, targets.flatten(1, 2))  # (B, n*C, H, W): t+1, t+2, t+3 of each rollout
    assert torch.equal(predicted[:, 3:6], unrolled.predictions[4:8])  # frame t+2 of rollout b: row B + b
    assert torch.equal(recorded_actions, actions) and torch.equal(fake_actions, actions)
    assert critic(first, recorded, actions).shape == (4, 4)  # (16/8)^2 patches per rollout
    d_before = [p.detach().clone() for p in critic.parameters()]
    logs = update([batch], 1)
    assert {"d_loss", "adv"} <= set(logs) and math.isfinite(logs["g_total"])
    assert any(not torch.equal(a, b) for a, b in zip(d_before, critic.parameters()))
    with pytest.raises(ValueError, match="discriminator='sequence' judges whole rollouts: it needs unroll >= 2"):
        WorldModelConfig(discriminator="sequence")


def test_variety_loss_takes_each_examples_best_sample_over_its_steps():
    target = torch.zeros(2 * 2 * 3, 1, 4, 4)  # 2 steps x 2 samples x 3 examples, step-major
    predicted = torch.ones_like(target)
    best = {0: 1, 1: 0, 2: 1}  # the sample of each example that is exact at both steps
    for step in range(2):
        for example, sample in best.items():
            predicted[(step * 2 + sample) * 3 + example] = 0.0
    predicted[(1 * 2 + 0) * 3 + 0] = 0.0  # sample 0 of example 0 exact at step 1 only: not its best
    terms = best_sample_terms(predicted, target, 2, 3, 1.0, 10.0, 0.0)
    assert terms["l1"].item() == 0.0 and terms["l2"].item() == 0.0
    predicted[(0 * 2 + 1) * 3 + 0] = 0.5  # example 0's best sample now errs by 0.5 at one step
    terms = best_sample_terms(predicted, target, 2, 3, 1.0, 10.0, 0.0)
    assert terms["l1"].item() == pytest.approx(0.5 / 2 / 3)
    loss, logs = generator_loss(predicted, target, None, 0.0, 1.0, 0.0, 10.0, samples=2, examples=3)
    assert loss.item() == pytest.approx(0.5 / 6 + 10 * 0.25 / 6) and logs["l1"] == pytest.approx(0.5 / 6)
    with pytest.raises(ValueError, match="variety_samples=4 draws several noise samples z"):
        WorldModelConfig(variety_samples=4, z_dim=0)


def test_variety_samples_spread_over_two_futures_where_one_sample_predicts_their_mean():
    def train(samples: int) -> torch.Tensor:
        torch.manual_seed(0)
        config = WorldModelConfig(frame_height=16, frame_width=16, channels=1, history=1, base_width=8,
                                  lambda_adv=0.0, l2_weight=0.0, variety_samples=samples)
        generator = Generator(config)
        update = GANStep(config, generator, ExplodingDiscriminator(),
                         torch.optim.Adam(generator.parameters(), 1e-2), None, torch.Generator().manual_seed(1))
        futures = torch.tensor([-0.8, 0.8])  # the same frame turns dark or bright, half and half
        for step in range(1, 301):
            next_frame = futures[torch.randint(0, 2, (16,))].view(16, 1, 1, 1).expand(16, 1, 16, 16)
            update([{"frames": torch.zeros(16, 1, 16, 16), "next_frame": next_frame,
                     "action": torch.zeros(16, dtype=torch.int64)}], step)
        generator.eval()
        with torch.no_grad():
            z = torch.randn(64, config.z_dim, generator=torch.Generator().manual_seed(2))
            return generator(torch.zeros(64, 1, 16, 16), torch.zeros(64, dtype=torch.int64), z).mean(dim=(1, 2, 3))

    one, four = train(1), train(4)
    assert one.abs().max() < 0.3 and one.std() < 0.1  # the mean of the two futures, whatever z is
    assert (four < -0.5).any() and (four > 0.5).any()  # some samples dark, some bright


def test_unrolled_batches_hold_consecutive_steps_of_one_episode(tmp_path):
    data = write_square_dataset(tmp_path / "data", episodes=3, steps=20, unsafe_every=10)
    part = rank_data(data, 1, [0, 1, 2], rank=0, world_size=1, unroll=4)
    assert len(part.starts) == 3 * (20 - 3) and 17 not in part.starts and 16 in part.starts
    assert part.unsafe_rows.tolist() == [6, 7, 8, 9, 16, 26, 27, 28, 29, 36, 46, 47, 48, 49, 56]
    batch = collate(part.dataset, np.array([0, 16, 40]), torch.device("cpu"), unroll=4)
    assert batch["next_frames"].shape == (3, 4, 3, 16, 16) and batch["actions"].shape == (3, 4)
    for k in range(4):
        item = part.dataset[40 + k]
        assert torch.equal(batch["next_frames"][2, k], item["next_frame"].float() / 127.5 - 1)
        assert batch["actions"][2, k] == item["action"]
    result = train_worldmodel(data, tmp_path / "run", {**FAST, "steps": 2, "unroll": 4,
                                                       "unsafe_fraction": 0.25,
                                                       "colour_jitter": 0.5}, progress=False)
    assert result["step"] == 2 and WorldModel.load(tmp_path / "run").config.unroll == 4
    with pytest.raises(DatasetError, match="no training episode .* has 30 consecutive steps"):
        train_worldmodel(data, tmp_path / "long", {**FAST, "unroll": 30})
    with pytest.raises(ValueError, match="z_dim apply to the GAN only"):
        train_worldmodel(data, tmp_path / "vae", {**FAST, "model": "vae", "unroll": 2, "z_dim": 4})
    with pytest.raises(ValueError, match="unroll must be an integer >= 1, got 0"):
        WorldModelConfig(unroll=0)
    assert not (tmp_path / "long").exists() and not (tmp_path / "vae").exists()


def test_adversarial_weight_ramps_up_over_the_warmup():
    def weights(warmup):
        update = GANStep(WorldModelConfig(lambda_adv=0.01, adv_warmup=warmup), None, None, None,
                         None, torch.Generator())
        return [update.adversarial_weight(step) for step in (1, 50, 100, 500)]

    assert weights(100) == pytest.approx([0.0001, 0.005, 0.01, 0.01])
    assert weights(0) == pytest.approx([0.01] * 4)


def test_cosine_schedule_decays_the_learning_rate_over_the_budget(square_data, tmp_path):
    config = WorldModelConfig(learning_rate=1e-3, steps=101, lr_schedule="cosine")
    assert [config.learning_rate_at(step) for step in (1, 51, 101)] == pytest.approx([1e-3, 5e-4, 0.0])
    assert WorldModelConfig(learning_rate=1e-3, steps=101, lr_schedule="constant").learning_rate_at(101) == 1e-3
    assert WorldModelConfig().lr_schedule == "cosine"  # the recipe's default
    with pytest.raises(ValueError, match="lr_schedule"):
        WorldModelConfig(lr_schedule="linear")
    run = tmp_path / "run"
    train_worldmodel(square_data, run, {**FAST, "steps": 5, "history": 1, "lr_schedule": "cosine"},
                     progress=False)
    saved = torch.load(run / "checkpoint" / "optimizers.pt", weights_only=True)
    assert [group["lr"] for group in saved["generator"]["param_groups"]] == [0.0]


# -- metrics ----------------------------------------------------------------------------------
def test_psnr_on_known_inputs():
    frames = torch.randint(0, 200, (3, 3, 32, 32)).float()
    assert torch.isinf(psnr(frames, frames)).all()
    assert (psnr(frames, frames, cap=PSNR_CAP_DB) == PSNR_CAP_DB).all()
    shifted = frames + 5.0  # MSE exactly 25
    assert psnr(shifted, frames) == pytest.approx(torch.full((3,), 10 * math.log10(255**2 / 25)))
    generator = torch.Generator().manual_seed(0)
    noisy = frames + 8.0 * torch.randn(frames.shape, generator=generator)
    expected = 10 * math.log10(255**2 / 64)  # Gaussian noise of std 8: MSE = 64
    assert psnr(noisy, frames).mean().item() == pytest.approx(expected, abs=0.15)
    assert psnr(frames / 127.5 - 1, shifted / 127.5 - 1, data_range=2.0) == pytest.approx(
        psnr(frames, shifted), abs=1e-4)


def test_ssim_on_known_inputs():
    frames = torch.rand(2, 3, 24, 24) * 255
    assert ssim(frames, frames) == pytest.approx(torch.ones(2), abs=1e-6)
    a, b = torch.full((1, 1, 16, 16), 100.0), torch.full((1, 1, 16, 16), 50.0)
    c1 = (0.01 * 255) ** 2  # constant images: SSIM = luminance term only
    assert ssim(a, b).item() == pytest.approx((2 * 100 * 50 + c1) / (100**2 + 50**2 + c1), rel=1e-5)
    generator = torch.Generator().manual_seed(1)
    light = (frames + 10 * torch.randn(frames.shape, generator=generator)).clamp(0, 255)
    heavy = (frames + 60 * torch.randn(frames.shape, generator=generator)).clamp(0, 255)
    assert (ssim(heavy, frames) < ssim(light, frames)).all()
    assert ssim(light, frames) == pytest.approx(ssim(frames, light), abs=1e-6)


def test_sharpness_prefers_sharp_edges_over_blur():
    target = torch.zeros(1, 1, 32, 32)
    target[..., ::4, :] = 255.0  # thin stripes
    blurred = torch.nn.functional.avg_pool2d(target, 3, 1, 1)
    slightly_off = (target + 3.0).clamp(0, 255)
    assert torch.isinf(sharpness(target, target)).all()
    assert sharpness(target, target, cap=PSNR_CAP_DB).item() == PSNR_CAP_DB
    assert sharpness(slightly_off, target).item() > sharpness(blurred, target).item()
    with pytest.raises(ValueError, match="same shape"):
        psnr(target, target[..., :16])


# -- training, checkpoints, predictor ---------------------------------------------------------
def test_training_lowers_the_reconstruction_loss(square_data, tmp_path):
    options = {**FAST, "steps": 60, "history": 1, "learning_rate": 2e-3, "lambda_adv": 0.01,
               "log_every": 10, "sample_every": 60, "checkpoint_every": 60}
    untrained = tmp_path / "untrained"
    train_worldmodel(square_data, untrained, {**options, "steps": 1, "learning_rate": 1e-9},
                     progress=False)
    result = train_worldmodel(square_data, tmp_path / "run", options, progress=False)
    assert result["step"] == 60 and result["samples_seen"] == 60 * 8
    before = evaluate_worldmodel(untrained, square_data, states=0, max_samples=100)
    after = evaluate_worldmodel(tmp_path / "run", square_data, states=0, max_samples=100)
    assert after["psnr"] > before["psnr"] + 3
    assert (tmp_path / "run" / "samples.png").is_file()
    assert any((tmp_path / "run" / "tensorboard").iterdir())


def test_init_from_starts_the_generator_from_another_run(square_data, driving_run, tmp_path):
    options = {**FAST, "steps": 4, "history": 1}
    source = tmp_path / "regression"
    train_worldmodel(square_data, source, {**options, "lambda_adv": 0.0}, progress=False)
    tuned = tmp_path / "tuned"
    train_worldmodel(square_data, tuned, {**options, "steps": 2, "lambda_adv": 0.01,
                                          "learning_rate": 1e-9}, progress=False, init_from=source)
    expected, got = WorldModel.load(source).network, WorldModel.load(tuned).network
    for (name, value), other in zip(expected.named_parameters(), got.parameters()):
        assert torch.allclose(value, other, atol=1e-6), name  # batch-norm statistics move on
    assert json.loads((tuned / "run.json").read_text())["init_from"] == "../regression"  # relative to the run
    with pytest.raises(ValueError, match="base_width=8 \\(this run: 16\\)"):
        train_worldmodel(square_data, tmp_path / "wide", {**options, "base_width": 16},
                         progress=False, init_from=source)
    with pytest.raises(ValueError, match="rlgan/Driving-v0"):
        train_worldmodel(square_data, tmp_path / "other", {**options, "history": 2},
                         progress=False, init_from=driving_run)
    with pytest.raises(ValueError, match="cannot start from itself"):
        train_worldmodel(square_data, source, options, overwrite=True, progress=False,
                         init_from=source)
    assert WorldModel.load(source).step == 4
    with pytest.raises(ValueError, match="pass one of them"):
        train_worldmodel(square_data, tuned, options, resume=True, progress=False, init_from=source)
    with pytest.raises(FileNotFoundError, match="not a world-model run"):
        train_worldmodel(square_data, tmp_path / "x", options, progress=False, init_from=tmp_path / "none")
    assert not (tmp_path / "wide").exists() and not (tmp_path / "x").exists()


def test_outcome_records_fine_tune_the_generator_on_every_actions_next_frame(driving_run, tmp_path):
    from rlgan.data.outcomes import OutcomeTransitions, load_outcomes
    from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes

    kwargs = {"obs_height": 32, "obs_width": 32, "max_steps": 30, "hazard_start": 1.0}
    collect_outcomes("rlgan/Driving-v0", kwargs, "random", tmp_path / "records",
                     OutcomeConfig(episodes=4, num_envs=2, safe_fraction=0.3, doom_horizon=0), progress=False)
    records = load_outcomes(tmp_path / "records")
    transitions = OutcomeTransitions(tmp_path / "records", history=2)
    last = len(records["action"]) - 1
    assert len(transitions) == 3 * (last + 1) and int(transitions.arrays["unsafe"].sum()) == records["unsafe"].sum()
    item = transitions[3 * last + 2]  # the last record's third action
    assert int(item["action"]) == 2 and item["frames"].shape == (2, 3, 32, 32)
    assert torch.equal(item["next_frame"], torch.from_numpy(records["next_frames"][last, 2]).permute(2, 0, 1))
    assert torch.equal(item["frames"][1], torch.from_numpy(records["frames"][last, 1]).permute(2, 0, 1))
    result = train_worldmodel(tmp_path / "records", tmp_path / "tuned", {**FAST, "steps": 2, "history": 2},
                              progress=False, init_from=driving_run)
    assert result["step"] == 2 and WorldModel.load(tmp_path / "tuned").step == 2
    report = evaluate_worldmodel(tmp_path / "tuned", tmp_path / "records", states=5)
    assert report["split"] == "held-out episodes" and report["rollouts"] == 0
    held_out = np.isin(records["episode"], WorldModel.load(tmp_path / "tuned").data.val_episodes).sum()
    assert report["counterfactual_states"] + report["counterfactual_states_skipped"] == min(5, held_out) > 0
    assert np.isfinite(report["psnr"]) and np.isfinite(report["psnr_copy_last"])
    with pytest.raises(DatasetError, match=r"keep 2 frame\(s\) per state, 3 are needed"):
        OutcomeTransitions(tmp_path / "records", history=3)


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    config = WorldModelConfig(frame_height=16, frame_width=16, history=2, base_width=8)
    generator, critic = Generator(config), Discriminator(config)
    optimizer = torch.optim.Adam(generator.parameters())
    frames = torch.rand(4, 6, 16, 16) * 2 - 1
    generator(frames, torch.tensor([0, 1, 2, 0]), torch.randn(4, config.z_dim)).mean().backward()
    optimizer.step()  # non-trivial optimizer state and BN statistics
    save_checkpoint(tmp_path, generator, critic, {"generator": optimizer}, {"step": 7})
    loaded, loaded_optimizer = Generator(config), None
    loaded_optimizer = torch.optim.Adam(loaded.parameters())
    progress = load_checkpoint(tmp_path, loaded, Discriminator(config), {"generator": loaded_optimizer})
    assert progress == {"step": 7}
    generator.eval(), loaded.eval()
    z = torch.randn(4, config.z_dim)
    actions = torch.tensor([2, 1, 0, 1])
    assert torch.equal(generator(frames, actions, z), loaded(frames, actions, z))
    state = loaded_optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(state, optimizer.state_dict()["state"][0]["exp_avg"])
    save_checkpoint(tmp_path, generator, critic, {"generator": optimizer}, {"step": 8})
    assert load_checkpoint(tmp_path, loaded)["step"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_world_model_load_and_predict(driving_run, driving_data):
    model = WorldModel.load(driving_run)
    assert (model.env_id, model.frame_shape, model.n_actions, model.history, model.step) == (
        "rlgan/Driving-v0", (32, 32, 3), 3, 2, 4)
    assert model.env_kwargs["obs_height"] == 32
    frames = np.random.default_rng(0).integers(0, 256, (5, 2, 32, 32, 3), dtype=np.uint8)
    out = model.predict(frames, [0, 1, 2, 0, 1], n_samples=3, generator=torch.Generator().manual_seed(1))
    assert out.shape == (5, 3, 32, 32, 3) and out.dtype == np.uint8
    again = model.predict(frames, np.array([0, 1, 2, 0, 1]), n_samples=3,
                          generator=torch.Generator().manual_seed(1))
    assert np.array_equal(out, again)
    floats = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    predicted = model.predict(floats, torch.tensor([0, 1, 2, 0, 1]), 2)
    assert predicted.shape == (5, 2, 3, 32, 32) and predicted.dtype == torch.float32
    assert WorldModel.load(driving_run).predict(frames[:1], [2]).shape == (1, 1, 32, 32, 3)
    many = torch.rand(20, 2, 3, 32, 32) * 2 - 1  # more than one CPU chunk
    actions = torch.arange(20) % 3
    chunked = model.predict(many, actions, 1, generator=torch.Generator().manual_seed(4))[:, 0]
    z = torch.randn(20, model.config.z_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole = model.network(many.reshape(20, 6, 32, 32), actions, z)
    assert torch.allclose(chunked, whole, atol=1e-5)
    assert model.predict(many[:0], actions[:0]).shape == (0, 1, 3, 32, 32)
    from rlgan.safety.predictor import load_predictor

    assert load_predictor(driving_run).frame_shape == (32, 32, 3)


def test_children_are_predicted_from_one_encoding_per_parent(driving_run, monkeypatch):
    model = WorldModel.load(driving_run)
    encoded_rows = []
    encode = model.network.encode

    def counting_encode(frames):
        encoded_rows.append(len(frames))
        return encode(frames)

    monkeypatch.setattr(model.network, "encode", counting_encode)
    frames = torch.rand(4, 2, 3, 32, 32) * 2 - 1
    actions = torch.tensor([2, 0, 1])
    children = model.predict_children(frames, actions, 2, generator=torch.Generator().manual_seed(3))
    assert children.shape == (4, 3, 2, 3, 32, 32) and encoded_rows == [4]
    repeated = model.predict(frames.repeat_interleave(3, dim=0), actions.repeat(4), 2,
                             generator=torch.Generator().manual_seed(3))  # same noise, same order
    assert torch.allclose(children.flatten(0, 1), repeated, atol=1e-5)
    observations = np.random.default_rng(1).integers(0, 256, (2, 2, 32, 32, 3), dtype=np.uint8)
    as_uint8 = model.predict_children(observations, [1], generator=torch.Generator().manual_seed(4))
    assert as_uint8.shape == (2, 1, 1, 32, 32, 3) and as_uint8.dtype == np.uint8
    with pytest.raises(ValueError, match="at least one action"):
        model.predict_children(frames, [])
    with pytest.raises(ValueError, match=r"0\.\.2"):
        model.predict_children(frames, [0, 3])


def test_search_on_shared_encodings_equals_the_search_on_repeated_parents(driving_run):
    from rlgan.safety.search import LearnedSearch, SearchConfig

    model = WorldModel.load(driving_run)
    torch.nn.init.normal_(model.network.flow.weight, 0.0, 0.5)  # children that differ by action

    class PredictOnly:  # the model without predict_children: the search repeats the parents
        history, frame_shape, n_actions = model.history, model.frame_shape, model.n_actions
        predict = staticmethod(model.predict)

    def brightness_classifier(pairs):  # unsafe when the child is brighter than its parent
        return 400.0 * (pairs[:, 3:].mean(dim=(1, 2, 3)) - pairs[:, :3].mean(dim=(1, 2, 3)))

    rng = np.random.default_rng(2)
    depths = []
    for _ in range(4):
        frames = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        config = SearchConfig(depth=3, samples=2, threshold=0.5)
        shared = LearnedSearch(model, brightness_classifier, config).search(frames)
        repeated = LearnedSearch(PredictOnly(), brightness_classifier, config).search(frames)
        assert shared.safe_depths.tolist() == repeated.safe_depths.tolist()
        assert shared.nodes == repeated.nodes and np.allclose(shared.risks, repeated.risks, atol=1e-5)
        depths += shared.safe_depths.tolist()
    assert len(set(depths)) > 1  # the trees were not all alike


def test_tree_batch_sizes():
    assert tree_batch_sizes(3, 27) == (1, 3, 9, 27)
    assert tree_batch_sizes(3, 10) == (1, 3, 9, 10)
    assert tree_batch_sizes(18, 27) == (1, 18, 27)
    with pytest.raises(ValueError, match="branching >= 2"):
        tree_batch_sizes(1, 27)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_padding_a_batch_repeats_its_last_row_and_keeps_its_memory_layout():
    maps = torch.randn(2, 5, 4, 4).contiguous(memory_format=torch.channels_last)
    padded = pad_rows(maps, 9)
    assert padded.shape == (9, 5, 4, 4) and padded.stride() == (80, 1, 20, 5)
    assert torch.equal(padded[:2], maps) and torch.equal(padded[2:], maps[-1:].expand(7, -1, -1, -1))
    assert pad_rows(torch.randn(2, 5, 4, 4), 3).is_contiguous()
    assert torch.equal(pad_rows(torch.tensor([4, 7]), 4), torch.tensor([4, 7, 7, 7]))


@pytest.mark.slow
def test_compiled_world_model_predicts_what_the_eager_one_does(driving_run, monkeypatch):
    compiled_calls = []
    original = FixedBatchNetwork.__call__

    def spy(self, *inputs):
        compiled_calls.append(inputs[0].shape[0])
        return original(self, *inputs)

    monkeypatch.setattr(FixedBatchNetwork, "__call__", spy)
    eager = WorldModel.load(driving_run)
    compiled = WorldModel(eager.network, eager.config, eager.data, compiled=True, max_batch=3)
    assert compiled.encoder.sizes == compiled.decoder.sizes == (1, 3)
    frames = torch.rand(7, 2, 3, 32, 32) * 2 - 1  # pieces of 3, 3 and 1 rows
    actions = torch.arange(7) % 3
    expected = eager.predict(frames, actions, 2, generator=torch.Generator().manual_seed(5))
    got = compiled.predict(frames, actions, 2, generator=torch.Generator().manual_seed(5))
    assert compiled_calls == [7, 14]  # the encoder once per row, the decoder once per sample
    assert got.shape == expected.shape == (7, 2, 3, 32, 32)
    assert torch.allclose(got, expected, atol=1e-4)
    children = compiled.predict_children(frames[:3], [0, 2], 2, generator=torch.Generator().manual_seed(8))
    assert torch.allclose(children, eager.predict_children(frames[:3], [0, 2], 2,
                                                           generator=torch.Generator().manual_seed(8)),
                          atol=1e-4)
    for rows in (1, 2):  # padded up to the compiled sizes 1 and 3
        got = compiled.predict(frames[:rows], actions[:rows], generator=torch.Generator().manual_seed(6))
        expected = eager.predict(frames[:rows], actions[:rows], generator=torch.Generator().manual_seed(6))
        assert torch.allclose(got, expected, atol=1e-4)
    other = Generator(eager.config)  # a second compiled model in the process keeps its weights
    other.load_state_dict(eager.network.state_dict())
    torch.nn.init.normal_(other.flow.weight, 0.0, 0.1)
    other_eager = WorldModel(other, eager.config, eager.data)
    other_compiled = WorldModel(other, eager.config, eager.data, compiled=True, max_batch=3)

    def first_three(model):
        return model.predict(frames[:3], actions[:3], generator=torch.Generator().manual_seed(7))

    assert torch.allclose(first_three(compiled), first_three(eager), atol=1e-4)
    assert torch.allclose(first_three(other_compiled), first_three(other_eager), atol=1e-4)
    assert not torch.allclose(first_three(other_eager), first_three(eager), atol=1e-3)


def test_compiled_generator_keeps_the_warp_as_one_operator():
    graphs = []

    def recording_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    network = Generator(WorldModelConfig(frame_height=32, frame_width=32)).eval()
    torch.nn.init.normal_(network.flow.weight, 0.0, 0.1)
    frames, actions = torch.rand(3, 6, 32, 32) * 2 - 1, torch.arange(3)
    with torch.no_grad():
        expected = network(frames, actions)
        got = torch.compile(network, backend=recording_backend)(frames, actions)
    targets = [str(node.target) for graph in graphs for node in graph.graph.nodes]
    assert any("rlgan.grid_sample_border" in target for target in targets)
    assert not any("grid_sample" in target and "rlgan" not in target for target in targets)
    assert torch.allclose(got, expected, atol=1e-6)
    frames.requires_grad_(True)  # eager training differentiates through the warp
    network(frames, actions).sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0


def test_compile_failure_is_a_clear_error(driving_run, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no C++ compiler found")

    eager = WorldModel.load(driving_run)
    monkeypatch.setattr(torch, "compile", lambda network, **options: broken)
    with pytest.raises(RuntimeError, match="could not build.*without compiling.*no C\\+\\+ compiler"):
        WorldModel(eager.network, eager.config, eager.data, compiled=True)


def test_predict_rejects_bad_frames_and_actions(driving_run):
    model = WorldModel.load(driving_run)
    frames = np.zeros((2, 2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(B, 2, 32, 32, 3\)"):
        model.predict(frames[:, :1], [0, 1])
    with pytest.raises(ValueError, match=r"0\.\.2"):
        model.predict(frames, [0, 3])
    with pytest.raises(ValueError, match="2 integers"):
        model.predict(frames, [0, 1, 2])
    with pytest.raises(ValueError, match="float tensor"):
        model.predict(frames.astype(np.float32), [0, 1])
    with pytest.raises(ValueError, match="trained on rlgan/Driving-v0"):
        model.check_compatible("env X", "rlgan/Driving-v0", (64, 64, 3), 3)


def test_resume_continues_the_step_count(square_data, tmp_path):
    run = tmp_path / "run"
    options = {**FAST, "steps": 4, "history": 1}
    train_worldmodel(square_data, run, options, progress=False)
    result = train_worldmodel(square_data, run, {"steps": 6}, resume=True, progress=False)
    assert result["step"] == 6 and result["samples_seen"] == 6 * 8
    assert WorldModel.load(run).step == 6
    with pytest.raises(ValueError, match="cannot change lambda_adv"):
        train_worldmodel(square_data, run, {"steps": 8, "lambda_adv": 0.5}, resume=True)
    with pytest.raises(FileExistsError, match="--resume"):
        train_worldmodel(square_data, run, options)
    assert train_worldmodel(square_data, run, options, overwrite=True, progress=False)["step"] == 4


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(square_data, tmp_path, monkeypatch):
    real_loss, calls = step_module.generator_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss, logs = real_loss(*args, **kwargs)
        if calls["n"] > 5:
            return loss * float("nan"), {**logs, "total": float("nan")}
        return loss, logs

    monkeypatch.setattr(step_module, "generator_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"step 6.*step 4\) is kept"):
        train_worldmodel(square_data, run, {**FAST, "steps": 10, "history": 1}, progress=False)
    assert WorldModel.load(run).step == 4


def test_bad_data_and_options_give_clear_errors(square_data, tmp_path):
    with pytest.raises(TypeError, match="Did you mean 'lambda_adv'"):
        train_worldmodel(square_data, tmp_path / "a", {"lambda_adb": 0.1})
    with pytest.raises(ValueError, match="frame_height comes from the dataset"):
        train_worldmodel(square_data, tmp_path / "a", {"frame_height": 32})
    with pytest.raises(ValueError, match="discriminator"):
        WorldModelConfig(discriminator="pixel")
    with pytest.raises(ValueError, match="multiple of 16"):
        WorldModelConfig(frame_height=40)
    with pytest.raises(DatasetError, match="not found"):
        train_worldmodel(tmp_path / "missing", tmp_path / "a")
    empty = tmp_path / "empty"
    TransitionWriter(empty, {"env_id": "toy", "env_kwargs": {}, "seed": 0,
                             "obs_shape": [16, 16, 3], "n_actions": 3}).close()
    with pytest.raises(DatasetError, match="empty recording"):
        train_worldmodel(empty, tmp_path / "a")
    odd = write_square_dataset(tmp_path / "odd", episodes=1, steps=3, size=20)
    with pytest.raises(DatasetError, match="multiples of 16"):
        train_worldmodel(odd, tmp_path / "a")
    corrupt = write_square_dataset(tmp_path / "corrupt", episodes=2, steps=5)
    (corrupt / "shard_00000.npz").write_bytes(b"not a shard")
    with pytest.raises(DatasetError, match="corrupt"):
        train_worldmodel(corrupt, tmp_path / "a")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a world-model run"):
        train_worldmodel(square_data, tmp_path / "other", {**FAST, "steps": 1})


def test_batches_oversample_unsafe_transitions(square_data, tmp_path):
    data = write_square_dataset(tmp_path / "data", episodes=3, steps=20, unsafe_every=10)
    part = rank_data(data, 1, [0, 1, 2], rank=0, world_size=1)
    assert part.unsafe_rows.tolist() == [9, 19, 29, 39, 49, 59]
    rows = part.draw(np.random.default_rng(0), 32, unsafe_fraction=0.25)
    assert len(rows) == 32 and set(rows[:8].tolist()) <= set(part.unsafe_rows.tolist())
    uniform = part.draw(np.random.default_rng(0), 32)  # as before the option existed
    assert np.array_equal(uniform, np.random.default_rng(0).choice(part.rows, 32))
    result = train_worldmodel(data, tmp_path / "run", {**FAST, "steps": 2, "unsafe_fraction": 0.25},
                              progress=False)
    assert result["step"] == 2
    with pytest.raises(DatasetError, match="unsafe_fraction=0.25 .* have none"):
        train_worldmodel(square_data, tmp_path / "none", {**FAST, "unsafe_fraction": 0.25})
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match=r"unsafe_fraction must be a number in \[0, 1\), got 1.0"):
        WorldModelConfig(unsafe_fraction=1.0)


def test_colour_jitter_recolours_history_and_next_frame_alike(square_data, tmp_path):
    from rlgan.worldmodel.train import recolour

    torch.manual_seed(0)
    frame = torch.rand(16, 3, 8, 8) * 2 - 1
    batch = {"frames": torch.cat([frame, frame], dim=1), "next_frame": frame.clone()}
    recolour(batch, channels=3, fraction=0.5)
    assert batch["frames"].shape == (16, 6, 8, 8) and batch["next_frame"].shape == (16, 3, 8, 8)
    assert torch.equal(batch["frames"][:, :3], batch["next_frame"])  # one transform per transition
    assert torch.equal(batch["frames"][:, 3:], batch["next_frame"])
    changed = (batch["next_frame"] != frame).flatten(1).any(dim=1)
    assert 0 < int(changed.sum()) < 16
    result = train_worldmodel(square_data, tmp_path / "run", {**FAST, "steps": 2, "colour_jitter": 1.0},
                              progress=False)
    assert result["step"] == 2
    with pytest.raises(ValueError, match=r"colour_jitter must be a number in \[0, 1\], got 1.5"):
        WorldModelConfig(colour_jitter=1.5)


def test_data_from_another_env_or_frame_size_is_refused(square_data, driving_run, tmp_path):
    run = tmp_path / "run"
    train_worldmodel(square_data, run, {**FAST, "steps": 2, "history": 1}, progress=False)
    bigger = write_square_dataset(tmp_path / "big", episodes=2, steps=5, size=32)
    with pytest.raises(ValueError, match=r"frames \(32, 32, 3\).*trained on toy/Square-v0"):
        train_worldmodel(bigger, run, {"steps": 4}, resume=True)
    other_env = write_square_dataset(tmp_path / "env", episodes=2, steps=5, env_id="toy/Other-v0")
    with pytest.raises(ValueError, match="toy/Other-v0"):
        evaluate_worldmodel(run, other_env, states=0)
    with pytest.raises(ValueError, match="trained on rlgan/Driving-v0"):
        evaluate_worldmodel(driving_run, square_data, states=0)


# -- evaluation -------------------------------------------------------------------------------
class OraclePredictor:
    """Predicts the true next frame of each action (given by the test), or copies the last."""

    history, n_actions = 1, 3

    def __init__(self, true_frames=None):
        self.true_frames = true_frames

    def predict(self, frames, actions, n_samples=1, generator=None):
        if self.true_frames is None:
            return frames[:, -1:].expand(-1, n_samples, -1, -1, -1)
        true = torch.from_numpy(self.true_frames).movedim(-1, -3).float() / 127.5 - 1  # (S, A, C, H, W)
        return true.reshape(-1, *true.shape[2:])[:, None]


def test_counterfactual_accuracy_of_an_oracle_and_of_copy_last(driving_data):
    from rlgan.data import TransitionDataset

    dataset = TransitionDataset(driving_data, 1)
    items = np.arange(0, len(dataset), 12)
    true, unsafe = replay_every_action(dataset, items, "rlgan/Driving-v0",
                                       {"obs_height": 32, "obs_width": 32, "max_steps": 40}, 3)
    recorded = dataset.arrays["next_obs"][dataset.indices[items]]
    actions = dataset.arrays["action"][dataset.indices[items]]
    assert np.array_equal(true[np.arange(len(items)), actions], recorded)  # replay is exact
    recorded_unsafe = dataset.arrays["unsafe"][dataset.indices[items]]
    assert np.array_equal(unsafe[np.arange(len(items)), actions], recorded_unsafe)
    perfect = counterfactual(OraclePredictor(true), dataset, items, true, torch.Generator())
    assert perfect["counterfactual_accuracy"] == 1.0 and perfect["counterfactual_states"] > 0
    copy = counterfactual(OraclePredictor(), dataset, items, true, torch.Generator())
    assert copy["counterfactual_accuracy"] < 0.5
    with pytest.raises(ValueError, match="does not reproduce the recorded frame"):
        replay_every_action(dataset, items, "rlgan/Driving-v0",
                            {"obs_height": 32, "obs_width": 32, "max_steps": 40, "map": "night"}, 3)


def test_stderr_over_groups():
    values = torch.tensor([1.0, 1.0, 3.0, 3.0, 3.0, 5.0], dtype=torch.float64)
    groups = torch.tensor([7, 7, 2, 2, 2, 9])
    assert stderr_over_groups(values, groups) == pytest.approx(2.0 / 3 ** 0.5)  # means 1, 3, 5
    assert stderr_over_groups(values, torch.zeros(6, dtype=torch.int64)) is None


def test_evaluate_reports_every_metric(driving_run, driving_data, tmp_path):
    baseline = tmp_path / "baseline"
    train_worldmodel(driving_data, baseline, {**FAST, "steps": 2, "lambda_adv": 0.0},
                     progress=False)
    result = evaluate_worldmodel(driving_run, driving_data, baseline_run=baseline, states=12,
                                 max_samples=64, depth=3)
    assert result["split"] == "held-out episodes" and result["episodes"] >= 1
    for key in ("psnr", "psnr_copy_last", "psnr_baseline", "ssim", "ssim_baseline",
                "sharpness", "sharpness_baseline", "sharpness_gain"):
        assert math.isfinite(result[key]), key
    assert result["psnr_gain"] == pytest.approx(result["psnr"] - result["psnr_baseline"], abs=1e-6)
    stderr = result["sharpness_gain_stderr"]
    assert stderr is None if result["episodes"] < 2 else stderr > 0
    assert evaluate_worldmodel(baseline, driving_data, states=0, max_samples=16)["sharpness_gain"] is None
    assert len(result["psnr_by_depth"]) == 3 and result["rollouts"] > 0
    assert 0.0 <= result["counterfactual_accuracy"] <= 1.0
    assert result["counterfactual_states"] + result["counterfactual_states_skipped"] <= 12
    json.dumps(result, allow_nan=False)


# -- command line, dream, torchrun -------------------------------------------------------------
def test_cli_train_eval_and_dream(driving_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["worldmodel", "train", "--data", str(driving_data), "--run", str(run),
                 "--steps", "3", "--batch-size", "4", "--lambda-adv", "0.05", "--device", "cpu",
                 "--set", "base_width=8", "log_every=1", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 3
    assert main(["worldmodel", "eval", "--run", str(run), "--data", str(driving_data),
                 "--states", "6", "--samples", "32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"psnr", "psnr_copy_last", "ssim", "psnr_by_depth", "counterfactual_accuracy",
            "sharpness"} <= set(result) and result["psnr_baseline"] is None
    assert main(["worldmodel", "eval", "--run", str(run), "--data", str(driving_data),
                 "--states", "0", "--samples", "16"]) == 0
    assert "copy-last" in capsys.readouterr().out
    video = tmp_path / "dream.gif"
    assert main(["worldmodel", "dream", "--run", str(run), "--agent", "scripted", "--steps", "45",
                 "--fps", "0", "--scale", "2", "--sync-every", "10", "--video", str(video)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 45 and summary["syncs"] >= 3 and video.is_file()
    assert main(["worldmodel", "dream", "--run", str(run), "--map", "night", "--steps", "2",
                 "--fps", "0"]) == 0
    capsys.readouterr()
    assert main(["worldmodel", "train", "--data", str(driving_data), "--run", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["worldmodel", "eval", "--run", str(tmp_path / "none"), "--data",
                 str(driving_data)]) == 2
    assert main(["worldmodel", "dream", "--run", str(run), "--env", "rlgan/HideAndSeek-v0",
                 "--steps", "1"]) == 2
    assert "trained on rlgan/Driving-v0" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_train_resume_and_report_once(square_data, tmp_path):
    """Two gloo processes finish the run, resume it, and only rank 0 prints."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}  # a stack on abort

    def torchrun(steps: int, *extra: str) -> str:  # --run-dir: torchrun reads --run as its --run-path
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                   "--standalone", "-m", "rlgan", "worldmodel", "train", "--data",
                   str(square_data), "--run-dir", str(run), "--steps", str(steps), "--batch-size", "4",
                   "--history", "1", "--device", "cpu", "--set", "base_width=8", "log_every=1",
                   "--no-progress", *extra]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"stdout: {done.stdout[-1500:]}\nstderr: {done.stderr[-6000:]}"
        return done.stdout

    output = torchrun(3)
    assert output.count('"samples_per_second"') == 1  # rank 0's report only
    assert "already trained" not in output  # rank 1 used to report the step it started from
    assert json.loads(output)["step"] == 3 and json.loads(output)["world_size"] == 2
    progress = load_progress(run)
    assert progress["step"] == 3 and progress["world_size"] == 2
    assert progress["samples_seen"] == 3 * 4 * 2
    assert WorldModel.load(run).step == 3 and (run / "samples.png").is_file()

    output = torchrun(3, "--resume")
    assert output.count("is already trained for 3 steps; raise --steps to go on") == 1
    assert output.strip().count("\n") == 0

    output = torchrun(5, "--resume")
    assert output.count('"samples_per_second"') == 1 and json.loads(output)["step"] == 5
    progress = load_progress(run)
    assert progress["step"] == 5 and progress["samples_seen"] == 5 * 4 * 2
    assert WorldModel.load(run).step == 5
