"""One update of a world model: SAD-GAN's (k discriminator steps, then one generator step)
or the VAE's (one step on its loss).

Batches are dicts of float tensors on the training device:
``frames`` ``(B, history*C, H, W)`` and ``next_frame`` ``(B, C, H, W)`` in [-1, 1],
``action`` int64 ``(B,)`` (see :func:`rlgan.worldmodel.train.prepare_batch`).
"""

from __future__ import annotations

import torch
from torch import nn

from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.losses import discriminator_loss, generator_loss
from rlgan.worldmodel.vae import LatentDynamicsVAE, vae_losses


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    return getattr(module, "module", module)


class GANStep:
    """Updates a generator and a discriminator with SAD-GAN's losses.

    Args:
        config: loss weights (``lambda_adv``, ``l1_weight``, ``gdl_weight``), ``d_steps``,
            ``z_dim``, ``channels``.
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

    def _discriminator_step(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> float:
        last = self._last_frame(batch["frames"])
        real_logits = self.discriminator(last, batch["next_frame"], batch["action"])
        fake_logits = self.discriminator(last, fake.detach(), batch["action"])
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
        feed the extra discriminator steps with fakes drawn without gradients.

        Returns:
            float logs: ``g_total``, ``l1`` (``gdl``, ``adv``, ``d_loss`` when computed).
        """
        config = self.config
        batch = batches[0]
        device = batch["frames"].device
        z = self.sample_z(len(batch["action"]), device)
        fake = self.generator(batch["frames"], batch["action"], z)
        logs: dict[str, float] = {}
        fake_logits = None
        if config.lambda_adv:
            d_losses = [self._discriminator_step(batch, fake)]
            for extra in batches[1:config.d_steps]:
                with torch.no_grad():
                    extra_fake = unwrap(self.generator)(
                        extra["frames"], extra["action"],
                        self.sample_z(len(extra["action"]), device))
                d_losses.append(self._discriminator_step(extra, extra_fake))
            logs["d_loss"] = sum(d_losses) / len(d_losses)
            discriminator = unwrap(self.discriminator)
            discriminator.requires_grad_(False)
            try:
                fake_logits = discriminator(self._last_frame(batch["frames"]), fake, batch["action"])
            finally:
                discriminator.requires_grad_(True)
        loss, g_logs = generator_loss(fake, batch["next_frame"], fake_logits,
                                      self.adversarial_weight(step) if config.lambda_adv else 0.0,
                                      config.l1_weight, config.gdl_weight)
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
        loss, logs = vae_losses(self.model, batch["frames"], batch["next_frame"], batch["action"],
                                eps.to(batch["frames"].device), self.config)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {("vae_total" if key == "total" else key): value for key, value in logs.items()}
