"""SAD-GAN's world model: an action-conditioned GAN that predicts the next frame.

- :mod:`rlgan.worldmodel.config`: :class:`WorldModelConfig`, every setting of a run.
- :mod:`rlgan.worldmodel.model`: the U-Net :class:`Generator` G(frames, action, z) and the
  action-conditioned :class:`Discriminator` D(frame t, frame t+1, action).
- :mod:`rlgan.worldmodel.losses` and :mod:`rlgan.worldmodel.metrics`: pure functions (L1,
  gradient difference, adversarial and discriminator losses; PSNR, SSIM, sharpness).
- :mod:`rlgan.worldmodel.train`: :func:`train_worldmodel` (``rlgan worldmodel train``, also
  under ``torchrun``); :mod:`rlgan.worldmodel.run`: the run directory and its checkpoints.
- :mod:`rlgan.worldmodel.predictor`: :class:`WorldModel`, a trained generator as a batched
  predictor (what the safety search calls).
- :mod:`rlgan.worldmodel.evaluate`: ``rlgan worldmodel eval``; :mod:`rlgan.worldmodel.dream`:
  ``rlgan worldmodel dream``.
"""

from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.model import Discriminator, Generator
from rlgan.worldmodel.predictor import WorldModel
from rlgan.worldmodel.train import TrainingDiverged, train_worldmodel

__all__ = ["Discriminator", "Generator", "TrainingDiverged", "WorldModel", "WorldModelConfig",
           "train_worldmodel"]
