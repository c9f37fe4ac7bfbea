"""The network that predicts frame t+1 for a :class:`WorldModelConfig`, whichever the model."""

from __future__ import annotations

from torch import nn

from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.model import Generator
from rlgan.worldmodel.vae import LatentDynamicsVAE


def predicting_network(config: WorldModelConfig) -> nn.Module:
    """SAD-GAN's :class:`Generator` (``model="gan"``) or the :class:`LatentDynamicsVAE`
    (``model="vae"``); both have ``forward(frames, action, z)``, ``encode`` and ``decode``."""
    return LatentDynamicsVAE(config) if config.model == "vae" else Generator(config)
