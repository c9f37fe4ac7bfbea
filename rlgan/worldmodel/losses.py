"""SAD-GAN's losses as pure functions of tensors; callers own the networks and optimisers.

Frames are float ``(B, C, H, W)`` in [-1, 1]; logits are float tensors of any shape
``(B, ...)`` (one per patch for a PatchGAN discriminator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l1_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every pixel and channel (the reconstruction term)."""
    return (predicted - target).abs().mean()


def l2_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every pixel and channel."""
    return (predicted - target).square().mean()


def gradient_difference_loss(predicted: torch.Tensor, target: torch.Tensor,
                             alpha: float = 1.0) -> torch.Tensor:
    """Gradient difference loss (Mathieu et al. 2016): penalises edges that are blurred away.

    ``mean(| |dx P| - |dx T| |^alpha) + mean(| |dy P| - |dy T| |^alpha)`` with ``dx``, ``dy``
    the differences of horizontally and vertically adjacent pixels.
    """
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()

    pred_x, pred_y = grads(predicted)
    true_x, true_y = grads(target)
    return ((pred_x - true_x).abs().pow(alpha).mean()
            + (pred_y - true_y).abs().pow(alpha).mean())


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(G(...))`` (BCE of fake logits against "real")."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of D: ``-log D(real) - log(1 - D(fake))``, each averaged."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def reconstruction_loss(predicted: torch.Tensor, target: torch.Tensor, l1_weight: float = 1.0,
                        gdl_weight: float = 0.0, l2_weight: float = 0.0) -> torch.Tensor:
    """``l1_weight * L1 + l2_weight * MSE + gdl_weight * GDL`` (terms with weight 0 are not
    computed)."""
    loss = predicted.new_zeros(())
    if l1_weight:
        loss = loss + l1_weight * l1_loss(predicted, target)
    if l2_weight:
        loss = loss + l2_weight * l2_loss(predicted, target)
    if gdl_weight:
        loss = loss + gdl_weight * gradient_difference_loss(predicted, target)
    return loss


def generator_loss(predicted: torch.Tensor, target: torch.Tensor,
                   fake_logits: torch.Tensor | None, lambda_adv: float, l1_weight: float = 1.0,
                   gdl_weight: float = 0.0, l2_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """SAD-GAN's generator objective: reconstruction + ``lambda_adv`` * adversarial.

    Args:
        predicted, target: float ``(B, C, H, W)`` in [-1, 1].
        fake_logits: D's logits on ``predicted``; may be None when ``lambda_adv`` is 0, and
            is ignored then, so ``lambda_adv = 0`` is exactly the regression loss.
        lambda_adv: weight of the non-saturating adversarial term.
        l1_weight, gdl_weight, l2_weight: weights of L1, of the gradient-difference loss and of
            the mean squared error.

    Returns:
        ``(loss, logs)``: the scalar loss and float values of its terms (``l1``; ``l2``, ``gdl``
        and ``adv`` when weighted; ``total``).

    Raises:
        ValueError: ``lambda_adv > 0`` without ``fake_logits``.
    """
    loss = reconstruction_loss(predicted, target, l1_weight, gdl_weight, l2_weight)
    with torch.no_grad():
        logs = {"l1": float(l1_loss(predicted, target))}
        if l2_weight:
            logs["l2"] = float(l2_loss(predicted, target))
        if gdl_weight:
            logs["gdl"] = float(gradient_difference_loss(predicted, target))
    if lambda_adv:
        if fake_logits is None:
            raise ValueError(f"lambda_adv is {lambda_adv} but no discriminator logits were given")
        adversarial = generator_adversarial_loss(fake_logits)
        loss = loss + lambda_adv * adversarial
        logs["adv"] = float(adversarial.detach())
    logs["total"] = float(loss.detach())
    return loss, logs
