"""SAD-GAN's losses as pure functions of tensors; callers own the networks and optimisers.

Frames are float ``(B, C, H, W)`` in [-1, 1]; logits are float tensors of any shape
``(B, ...)`` (one per patch for a PatchGAN discriminator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _mean(values: torch.Tensor, per_row: bool) -> torch.Tensor:
    """The mean of ``values``, or of each row ``(B,)`` when ``per_row``."""
    return values.flatten(1).mean(dim=1) if per_row else values.mean()


def l1_loss(predicted: torch.Tensor, target: torch.Tensor, per_row: bool = False) -> torch.Tensor:
    """Mean absolute error over every pixel and channel (the reconstruction term)."""
    return _mean((predicted - target).abs(), per_row)


def l2_loss(predicted: torch.Tensor, target: torch.Tensor, per_row: bool = False) -> torch.Tensor:
    """Mean squared error over every pixel and channel."""
    return _mean((predicted - target).square(), per_row)


def gradient_difference_loss(predicted: torch.Tensor, target: torch.Tensor,
                             alpha: float = 1.0, per_row: bool = False) -> torch.Tensor:
    """Gradient difference loss (Mathieu et al. 2016): penalises edges that are blurred away.

    ``mean(| |dx P| - |dx T| |^alpha) + mean(| |dy P| - |dy T| |^alpha)`` with ``dx``, ``dy``
    the differences of horizontally and vertically adjacent pixels.
    """
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()

    pred_x, pred_y = grads(predicted)
    true_x, true_y = grads(target)
    return (_mean((pred_x - true_x).abs().pow(alpha), per_row)
            + _mean((pred_y - true_y).abs().pow(alpha), per_row))


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(G(...))`` (BCE of fake logits against "real")."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def feature_matching_loss(real_levels: list[torch.Tensor],
                          fake_levels: list[torch.Tensor]) -> torch.Tensor:
    """Feature matching (pix2pixHD, Wang et al. 2018): the L1 distance between the
    discriminator's features of the recorded and of the predicted pairs, averaged over its
    levels; the recorded side is a constant target (detached)."""
    if len(real_levels) != len(fake_levels) or not real_levels:
        raise ValueError(f"expected the same number (>= 1) of levels, got {len(real_levels)} "
                         f"and {len(fake_levels)}")
    distances = [(fake - real.detach()).abs().mean() for real, fake in zip(real_levels, fake_levels)]
    return torch.stack(distances).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of D: ``-log D(real) - log(1 - D(fake))``, each averaged."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def prediction_terms(predicted: torch.Tensor, target: torch.Tensor, l2_weight: float = 0.0,
                     gdl_weight: float = 0.0, per_row: bool = False) -> dict[str, torch.Tensor]:
    """The unweighted terms of a predicted frame's loss, each computed once: ``l1`` always,
    ``l2`` (MSE) and ``gdl`` only when their weight is not 0; scalars, or ``(B,)`` per row."""
    terms = {"l1": l1_loss(predicted, target, per_row)}
    if l2_weight:
        terms["l2"] = l2_loss(predicted, target, per_row)
    if gdl_weight:
        terms["gdl"] = gradient_difference_loss(predicted, target, per_row=per_row)
    return terms


def best_sample_terms(predicted: torch.Tensor, target: torch.Tensor, samples: int, examples: int,
                      l1_weight: float, l2_weight: float, gdl_weight: float) -> dict[str, torch.Tensor]:
    """:func:`prediction_terms` of each example's best sample (the variety loss).

    Args:
        predicted, target: float ``(S * K * B, C, H, W)``: row ``(s * K + k) * B + b`` is step
            ``s`` of noise sample ``k`` of example ``b`` (one step: ``S = 1``).
        samples, examples: ``K`` and ``B``.

    Returns:
        The terms, each averaged over the examples, of the sample whose weighted loss over
        the steps is lowest for each example.
    """
    rows = prediction_terms(predicted, target, l2_weight, gdl_weight, per_row=True)
    per_sample = {name: term.reshape(-1, samples, examples).mean(dim=0)
                  for name, term in rows.items()}  # (K, B)
    best = weighted_prediction_loss(per_sample, l1_weight, l2_weight, gdl_weight).argmin(dim=0)
    columns = torch.arange(best.shape[0], device=best.device)
    return {name: term[best, columns].mean() for name, term in per_sample.items()}


def weighted_prediction_loss(terms: dict[str, torch.Tensor], l1_weight: float, l2_weight: float,
                             gdl_weight: float) -> torch.Tensor:
    """``l1_weight * L1 + l2_weight * MSE + gdl_weight * GDL`` of :func:`prediction_terms`
    (other entries of ``terms`` are not read)."""
    weights = {"l1": l1_weight, "l2": l2_weight, "gdl": gdl_weight}
    return sum((weight * terms[name] for name, weight in weights.items() if name in terms),
               terms["l1"].new_zeros(()))


def generator_loss(predicted: torch.Tensor, target: torch.Tensor,
                   fake_logits: torch.Tensor | None, lambda_adv: float, l1_weight: float = 1.0,
                   gdl_weight: float = 0.0, l2_weight: float = 0.0,
                   samples: int = 1, examples: int = 0, feature_matching: float = 0.0,
                   matching: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """SAD-GAN's generator objective: reconstruction + ``lambda_adv`` * adversarial
    [+ ``feature_matching`` * feature matching].

    Args:
        predicted, target: float ``(B, C, H, W)`` in [-1, 1].
        fake_logits: D's logits on ``predicted``; may be None when ``lambda_adv`` is 0, and
            is ignored then, so ``lambda_adv = 0`` is exactly the regression loss.
        lambda_adv: weight of the non-saturating adversarial term.
        l1_weight, gdl_weight, l2_weight: weights of L1, of the gradient-difference loss and of
            the mean squared error.
        samples, examples: noise samples per example and examples, laid out as
            :func:`best_sample_terms` reads them; with more than 1 sample the reconstruction
            terms are each example's best sample's.
        feature_matching, matching: the weight of :func:`feature_matching_loss` and its value,
            which is needed only when the weight is not 0.

    Returns:
        ``(loss, logs)``: the scalar loss and float values of its terms (``l1``; ``l2``, ``gdl``,
        ``adv`` and ``fm`` when weighted; ``total``).

    Raises:
        ValueError: ``lambda_adv > 0`` without ``fake_logits``, or ``feature_matching > 0``
            without ``matching``.
    """
    terms = (best_sample_terms(predicted, target, samples, examples, l1_weight, l2_weight, gdl_weight)
             if samples > 1 else prediction_terms(predicted, target, l2_weight, gdl_weight))
    loss = weighted_prediction_loss(terms, l1_weight, l2_weight, gdl_weight)
    logs = {name: float(term.detach()) for name, term in terms.items()}
    if lambda_adv:
        if fake_logits is None:
            raise ValueError(f"lambda_adv is {lambda_adv} but no discriminator logits were given")
        adversarial = generator_adversarial_loss(fake_logits)
        loss = loss + lambda_adv * adversarial
        logs["adv"] = float(adversarial.detach())
    if feature_matching:
        if matching is None:
            raise ValueError(f"feature_matching is {feature_matching} but no feature-matching "
                             "loss was given")
        loss = loss + feature_matching * matching
        logs["fm"] = float(matching.detach())
    logs["total"] = float(loss.detach())
    return loss, logs
