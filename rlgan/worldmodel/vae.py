"""A VAE world model with latent dynamics: encode the frames, step the latent, decode.

The encoder maps frames up to t to a Gaussian posterior over a latent state ``s_t``; an
action-conditioned transition steps it to ``s_t+1``; the decoder draws a frame from a latent
state. Training (:func:`vae_losses`) reconstructs frame t from a sample of ``s_t`` and predicts
frame t+1 from its step, with the KL divergence of the posterior from N(0, I): a VAE (Kingma &
Welling 2014) and its latent dynamics trained jointly, where World Models (Ha & Schmidhuber
2018) trains them one after the other. A prediction decodes the step of the posterior mean:
the VAE takes no noise z.

It has the generator's interface (:class:`rlgan.worldmodel.model.Generator`): ``forward``,
``encode`` (once per set of frames) and ``decode`` (per action), so
:class:`rlgan.worldmodel.WorldModel`, the search and ``rlgan worldmodel eval`` use either.
Frames are float tensors in [-1, 1], channels first; ``w`` is ``base_width``, ``L``
``latent_dim``, frames ``H x W`` with ``C`` channels and ``h`` frames of history.
"""

from __future__ import annotations

import torch
from torch import nn

from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.losses import l1_loss, prediction_terms, weighted_prediction_loss
from rlgan.worldmodel.model import dcgan_init, down_block


def kl_to_standard_normal(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)) summed over the latent, averaged over the batch.

    Args:
        mean, log_variance: float ``(B, L)`` (or ``(B, L, 1, 1)``).
    """
    terms = mean.pow(2) + log_variance.exp() - 1.0 - log_variance
    return 0.5 * terms.flatten(1).sum(dim=1).mean()


class LatentDynamicsVAE(nn.Module):
    """Encoder q(s_t | frames), transition s_t+1 = f(s_t, a), decoder p(frame | s).

    Encoder::

        frames (B, h*C, H, W) -> (B, w, H/2) -> (B, 2w, H/4) -> (B, 4w, H/8) -> (B, 8w, H/16)
            [strided conv, BN, ReLU] -> flatten -> Linear -> mean, log-variance (B, L) each

    Transition (residual)::

        s_t+1 = s_t + MLP([s_t, embedding(a)])      (B, L)

    Decoder::

        s (B, L) -> Linear -> (B, 8w, H/16, W/16) -> (B, 4w, H/8) -> (B, 2w, H/4)
            -> (B, w, H/2) -> (B, w, H)  [ConvTranspose(4, stride 2), BN, ReLU]
            -> Conv2d(3) -> tanh -> (B, C, H, W)
    """

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        w, c, latent = config.base_width, config.channels, config.latent_dim
        self.bottom = (config.frame_height // 16, config.frame_width // 16)
        cells = 8 * w * self.bottom[0] * self.bottom[1]
        self.encoder = nn.Sequential(
            down_block(config.history * c, w, False, nn.ReLU()),
            down_block(w, 2 * w, True, nn.ReLU()),
            down_block(2 * w, 4 * w, True, nn.ReLU()),
            down_block(4 * w, 8 * w, True, nn.ReLU()),
            nn.Flatten(),
        )
        self.posterior = nn.Linear(cells, 2 * latent)
        self.action_embedding = nn.Embedding(config.n_actions, config.action_dim)
        self.transition = nn.Sequential(
            nn.Linear(latent + config.action_dim, 2 * latent), nn.ReLU(),
            nn.Linear(2 * latent, latent))
        self.expand = nn.Linear(latent, cells)
        self.decoder = nn.Sequential(*[
            layer for in_channels, out_channels in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w), (w, w))
            for layer in (nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
                          nn.BatchNorm2d(out_channels), nn.ReLU())
        ], nn.Conv2d(w, c, 3, 1, 1))
        self.apply(dcgan_init)

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior of ``s_t`` from ``frames`` (B, h*C, H, W): mean and log-variance, float
        ``(B, L, 1, 1)`` each (1x1 maps, so the predictor repeats and lays them out as the
        generator's encoder maps)."""
        mean, log_variance = self.posterior(self.encoder(frames)).chunk(2, dim=1)
        return mean[:, :, None, None], log_variance[:, :, None, None]

    def step(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``s_t+1`` of latent states ``(B, L)`` under actions int64 ``(B,)``: float ``(B, L)``."""
        return state + self.transition(torch.cat([state, self.action_embedding(action)], dim=1))

    def render(self, state: torch.Tensor) -> torch.Tensor:
        """The frame of latent states ``(B, L)``: float ``(B, C, H, W)`` in [-1, 1]."""
        x = self.expand(state).reshape(len(state), -1, *self.bottom)
        return torch.tanh(self.decoder(x))

    def decode(self, frames: torch.Tensor, mean: torch.Tensor, log_variance: torch.Tensor,
               action: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Frame t+1 from the posterior of :meth:`encode` and the action: the step of the
        posterior mean, decoded. ``frames``, ``log_variance`` and the noise ``z`` are taken for
        the generator's interface and not used. Float ``(B, C, H, W)`` in [-1, 1]."""
        return self.render(self.step(mean.flatten(1), action))

    def forward(self, frames: torch.Tensor, action: torch.Tensor,
                z: torch.Tensor | None = None) -> torch.Tensor:
        """Predict frame t+1 (``frames`` float ``(B, h*C, H, W)``, ``action`` int64 ``(B,)``;
        ``z`` is not used): float ``(B, C, H, W)`` in [-1, 1]."""
        mean, log_variance = self.encode(frames)
        return self.decode(frames, mean, log_variance, action, z)


def vae_losses(model: LatentDynamicsVAE, frames: torch.Tensor, next_frames: torch.Tensor,
               actions: torch.Tensor, noise: torch.Tensor,
               config: WorldModelConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The VAE's training loss on one batch and its terms.

    ``l1_weight * L1(predictions, frames t+1..t+n) [+ l2_weight * MSE] [+ gdl_weight * GDL] +
    reconstruction_weight * L1(reconstruction, frame t) + kl_weight * KL``. The reconstruction
    and the prediction of t+1 are decoded from one posterior sample
    ``s_t = mean + exp(log_var / 2) * noise``; with n > 1 recorded steps (``unroll``), frame t+k+1
    is predicted from the model's own frame t+k as a rollout feeds it (the posterior mean of the
    frames with that prediction as the newest), and the prediction terms are averaged over the
    n steps, the gradients flowing back through the predictions.

    Args:
        model: the VAE (possibly in training mode).
        frames: float ``(B, h*C, H, W)`` in [-1, 1], the recorded frames up to t.
        next_frames: float ``(B, n, C, H, W)``, the recorded frames t+1..t+n.
        actions: int64 ``(B, n)``, the actions t..t+n-1.
        noise: float ``(B, L)`` standard normal draws for the posterior sample.
        config: the loss weights.

    Returns:
        ``(loss, logs)``: the scalar loss and float logs ``total``, ``l1`` (prediction),
        ``reconstruction``, ``kl`` (and ``l2``, ``gdl`` when weighted).
    """
    channels = config.channels
    mean, log_variance = (t.flatten(1) for t in model.encode(frames))
    state = mean + (0.5 * log_variance).exp() * noise
    reconstruction = model.render(state)
    predictions = [model.render(model.step(state, actions[:, 0]))]
    history = frames
    for k in range(1, next_frames.shape[1]):
        history = torch.cat([history[:, channels:], predictions[-1]], dim=1)
        predictions.append(model(history, actions[:, k]))
    prediction, target = torch.cat(predictions), next_frames.transpose(0, 1).flatten(0, 1)
    terms = {**prediction_terms(prediction, target, config.l2_weight, config.gdl_weight),
             "reconstruction": l1_loss(reconstruction, frames[:, -channels:]),
             "kl": kl_to_standard_normal(mean, log_variance)}
    loss = (weighted_prediction_loss(terms, config.l1_weight, config.l2_weight, config.gdl_weight)
            + config.reconstruction_weight * terms["reconstruction"] + config.kl_weight * terms["kl"])
    logs = {"total": float(loss.detach()), **{key: float(value.detach()) for key, value in terms.items()}}
    return loss, logs
