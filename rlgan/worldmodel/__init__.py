"""World models that predict the next frame: SAD-GAN's action-conditioned GAN, and a VAE with
latent dynamics.

- :mod:`rlgan.worldmodel.config`: :class:`WorldModelConfig`, every setting of a run.
- :mod:`rlgan.worldmodel.model`: the U-Net :class:`Generator` G(frames, action, z) and the
  action-conditioned :class:`Discriminator` D(frame t, frame t+1, action).
- :mod:`rlgan.worldmodel.vae`: :class:`LatentDynamicsVAE` (``model="vae"``), with the
  generator's interface; :mod:`rlgan.worldmodel.networks` builds either from a config.
- :mod:`rlgan.worldmodel.losses` and :mod:`rlgan.worldmodel.metrics`: pure functions (L1,
  gradient difference, adversarial and discriminator losses; PSNR, SSIM, sharpness).
- :mod:`rlgan.worldmodel.train`: :func:`train_worldmodel` (``rlgan worldmodel train``, also
  under ``torchrun``); :mod:`rlgan.worldmodel.run`: the run directory and its checkpoints.
- :mod:`rlgan.worldmodel.predictor`: :class:`WorldModel`, a trained generator or VAE as a batched
  predictor (what the safety search calls).
- :mod:`rlgan.worldmodel.evaluate`: ``rlgan worldmodel eval``, its open-loop rollouts in
  :mod:`rlgan.worldmodel.rollouts` and their curves in :mod:`rlgan.worldmodel.plotting`;
  :mod:`rlgan.worldmodel.dream`: ``rlgan worldmodel dream``.
"""

from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.model import Discriminator, Generator
from rlgan.worldmodel.predictor import WorldModel
from rlgan.worldmodel.train import TrainingDiverged, train_worldmodel
from rlgan.worldmodel.vae import LatentDynamicsVAE

__all__ = ["Discriminator", "Generator", "LatentDynamicsVAE", "TrainingDiverged", "WorldModel",
           "WorldModelConfig", "train_worldmodel"]
