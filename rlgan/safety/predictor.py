"""Load a world-model run as the :class:`rlgan.safety.search.NextFramePredictor` the search uses."""

from __future__ import annotations

from pathlib import Path

import torch

from rlgan.safety.search import NextFramePredictor


def load_predictor(run_dir: str | Path, device: str | torch.device = "cpu",
                   compiled: bool = False) -> NextFramePredictor:
    """The predicting network of a world-model run (``rlgan worldmodel train``: the GAN's
    generator or the VAE), ready to predict;
    ``compiled`` runs it through ``torch.compile`` (:class:`rlgan.worldmodel.WorldModel`).

    Raises:
        FileNotFoundError / ValueError: not a world-model run, or a corrupt one.
        RuntimeError: ``compiled`` on a machine where ``torch.compile`` cannot build.
    """
    try:
        from rlgan.worldmodel import WorldModel
    except ImportError as error:
        raise ValueError(f"cannot load world model {run_dir}: rlgan.worldmodel is not "
                         f"available ({error})") from error
    return WorldModel.load(run_dir, device, compiled)
