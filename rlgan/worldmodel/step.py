"""One update of a world model: SAD-GAN's (k discriminator steps, then one generator step)
or the VAE's (one step on its loss).

Batches are dicts of tensors on the training device (:func:`rlgan.worldmodel.data.collate`):
``frames`` float ``(B, history*C, H, W)`` and ``next_frame`` float ``(B, C, H, W)`` in [-1, 1],
``action`` int64 ``(B,)``; an unrolled batch also ``next_frames`` ``(B, n, C, H, W)`` and
``actions`` ``(B, n)``, its n recorded steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.data import batch_steps
from rlgan.worldmodel.losses import discriminator_loss, feature_matching_loss, generator_loss
from rlgan.worldmodel.vae import LatentDynamicsVAE, vae_losses


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    return getattr(module, "module", module)


@dataclass(frozen=True)
class Unrolled:
    """A batch's predictions over its recorded steps, the steps stacked along the batch
    (step-major: row ``k * B + b`` is step ``k`` of sample ``b``).

    Attributes:
        inputs: ``(n*B, C, H, W)`` the newest frame the generator saw (recorded at step 0,
            its own prediction after).
        predictions: ``(n*B, C, H, W)`` its predictions of frames t+1 .. t+n.
        recorded_inputs: ``(n*B, C, H, W)`` the recorded frames t .. t+n-1.
        targets: ``(n*B, C, H, W)`` the recorded frames t+1 .. t+n.
        actions: int64 ``(n*B,)`` the actions t .. t+n-1.
    """

    inputs: torch.Tensor
    predictions: torch.Tensor
    recorded_inputs: torch.Tensor
    targets: torch.Tensor
    actions: torch.Tensor


class GANStep:
    """Updates a generator and a discriminator with SAD-GAN's losses.

    Args:
        config: loss weights (``lambda_adv``, ``l1_weight``, ``gdl_weight``,
            ``feature_matching``), ``d_steps``,
            ``z_dim``, ``variety_samples``, ``channels``.
        generator, discriminator: the networks, possibly wrapped in
            ``DistributedDataParallel`` (gradients are then averaged over ranks).
        optimizer_g, optimizer_d: their optimisers.
        noise: ``torch.Generator`` (on the CPU) drawing z.

    With ``lambda_adv = 0`` the discriminator is neither evaluated nor trained: the generator
    step is exactly a step on the reconstruction loss (the regression baseline).
    """

    def __init__(self, config: WorldModelConfig, generator: nn.Module, discriminator: nn.Module,
                 optimizer_g: torch.optim.Optimizer, optimizer_d: torch.optim.Optimizer,
                 noise: torch.Generator) -> None:
        self.config = config
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.noise = noise

    def sample_z(self, batch: int, device: torch.device) -> torch.Tensor:
        """z ~ N(0, I), ``(batch, z_dim)``, from the step's own generator."""
        return torch.randn(batch, self.config.z_dim, generator=self.noise).to(device)

    def _last_frame(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[:, -self.config.channels:]

    def rollout(self, generator: nn.Module, batch: dict[str, torch.Tensor]) -> Unrolled:
        """``generator``'s predictions along ``batch``'s recorded steps (one step, or
        ``unroll`` steps when the batch has ``next_frames``), each step fed the previous
        prediction as its newest frame."""
        frames = batch["frames"]
        targets, actions = batch_steps(batch)
        if self.config.variety_samples > 1:  # sample-major: row k * B + b is sample k of example b
            samples = self.config.variety_samples
            frames = frames.repeat(samples, 1, 1, 1)
            targets = targets.repeat(samples, 1, 1, 1, 1)
            actions = actions.repeat(samples, 1)
        first, inputs, predictions = frames, [], []
        for k in range(targets.shape[1]):
            prediction = generator(frames, actions[:, k], self.sample_z(len(frames), frames.device))
            inputs.append(self._last_frame(frames))
            predictions.append(prediction)
            frames = torch.cat([frames[:, self.config.channels:], prediction], dim=1)
        recorded = torch.cat([self._last_frame(first)[:, None], targets[:, :-1]], dim=1)
        return Unrolled(inputs=torch.cat(inputs), predictions=torch.cat(predictions),
                        recorded_inputs=recorded.transpose(0, 1).flatten(0, 1),
                        targets=targets.transpose(0, 1).flatten(0, 1),
                        actions=actions.transpose(0, 1).flatten())

    def judged(self, unrolled: Unrolled, detach: bool) -> tuple[tuple[torch.Tensor, ...], ...]:
        """The discriminator's ``(frame, next_frame, action)`` for the recorded and for the
        predicted side (predictions detached with ``detach``): every step's pair, or with the
        ``"sequence"`` discriminator each rollout whole, ``(B, C, H, W)`` recorded frame t,
        ``(B, n*C, H, W)`` frames t+1..t+n and ``(B, n)`` actions."""
        predictions = unrolled.predictions.detach() if detach else unrolled.predictions
        if self.config.discriminator != "sequence":
            inputs = unrolled.inputs.detach() if detach else unrolled.inputs
            return ((unrolled.recorded_inputs, unrolled.targets, unrolled.actions),
                    (inputs, predictions, unrolled.actions))
        steps = self.config.unroll

        def clip(frames: torch.Tensor) -> torch.Tensor:  # step-major (n*B, C, H, W) -> (B, n*C, H, W)
            return frames.view(steps, -1, *frames.shape[1:]).transpose(0, 1).flatten(1, 2)

        first = unrolled.recorded_inputs[:len(unrolled.targets) // steps]
        actions = unrolled.actions.view(steps, -1).T
        return (first, clip(unrolled.targets), actions), (first, clip(predictions), actions)

    def _discriminator_step(self, unrolled: Unrolled) -> float:
        real, fake = self.judged(unrolled, detach=True)
        real_logits, fake_logits = self.discriminator(*real), self.discriminator(*fake)
        loss = discriminator_loss(real_logits, fake_logits)
        self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        return float(loss.detach())

    def adversarial_weight(self, step: int) -> float:
        """``lambda_adv``, ramped linearly over the first ``adv_warmup`` steps (step 1 = first)."""
        config = self.config
        if config.adv_warmup == 0:
            return config.lambda_adv
        return config.lambda_adv * min(1.0, step / config.adv_warmup)

    def __call__(self, batches: list[dict[str, torch.Tensor]], step: int) -> dict[str, float]:
        """Update ``step`` (1-based) on ``batches`` (``d_steps`` of them when ``lambda_adv > 0``,
        else one).

        The first batch serves the generator step and the first discriminator step; the others
        feed the extra discriminator steps with fakes drawn without gradients. A batch with
        ``next_frames`` is unrolled (:meth:`rollout`): the discriminator judges every step's
        (input frame, prediction) pair against the recorded pair, and the losses are
        averaged over the steps.

        Returns:
            float logs: ``g_total``, ``l1`` (``gdl``, ``adv``, ``fm``, ``d_loss`` when computed).
        """
        config = self.config
        unrolled = self.rollout(self.generator, batches[0])
        logs: dict[str, float] = {}
        fake_logits = matching = None
        if config.lambda_adv:
            d_losses = [self._discriminator_step(unrolled)]
            for extra in batches[1:config.d_steps]:
                with torch.no_grad():
                    extra_unrolled = self.rollout(unwrap(self.generator), extra)
                d_losses.append(self._discriminator_step(extra_unrolled))
            logs["d_loss"] = sum(d_losses) / len(d_losses)
            discriminator = unwrap(self.discriminator)
            discriminator.requires_grad_(False)
            try:
                real, fake = self.judged(unrolled, detach=False)
                fake_levels = discriminator.levels(*fake[:2])
                fake_logits = discriminator.logits(fake_levels[-1], fake[2])
                if config.feature_matching:
                    with torch.no_grad():
                        real_levels = discriminator.levels(*real[:2])
                    matching = feature_matching_loss(real_levels, fake_levels)
            finally:
                discriminator.requires_grad_(True)
        loss, g_logs = generator_loss(unrolled.predictions, unrolled.targets, fake_logits,
                                      self.adversarial_weight(step) if config.lambda_adv else 0.0,
                                      config.l1_weight, config.gdl_weight, config.l2_weight,
                                      config.variety_samples, len(batches[0]["frames"]),
                                      config.feature_matching, matching)
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_g.step()
        logs.update({("g_total" if key == "total" else key): value for key, value in g_logs.items()})
        return logs


class VAEStep:
    """Updates a :class:`LatentDynamicsVAE` on :func:`rlgan.worldmodel.vae.vae_losses`.

    Args:
        config: the loss weights and ``latent_dim``.
        model: the VAE (one process: not wrapped in ``DistributedDataParallel``).
        optimizer: its optimiser.
        noise: ``torch.Generator`` (on the CPU) drawing the posterior samples.
    """

    def __init__(self, config: WorldModelConfig, model: LatentDynamicsVAE,
                 optimizer: torch.optim.Optimizer, noise: torch.Generator) -> None:
        self.config, self.model, self.optimizer, self.noise = config, model, optimizer, noise

    def __call__(self, batches: list[dict[str, torch.Tensor]], step: int) -> dict[str, float]:
        """Update on ``batches[0]``; return float logs ``vae_total``, ``l1`` (prediction),
        ``reconstruction``, ``kl`` (``gdl`` when weighted). ``step`` is not used."""
        batch = batches[0]
        eps = torch.randn(len(batch["action"]), self.config.latent_dim, generator=self.noise)
        loss, logs = vae_losses(self.model, batch["frames"], *batch_steps(batch),
                                eps.to(batch["frames"].device), self.config)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {("vae_total" if key == "total" else key): value for key, value in logs.items()}
