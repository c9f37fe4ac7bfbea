"""A plain depth-first reference of :class:`rlgan.safety.search.LearnedSearch`, for tests."""

from __future__ import annotations

import numpy as np
import torch

from rlgan.safety.classifier import make_pairs
from rlgan.safety.search import NextFramePredictor, PairClassifier, SearchConfig, frames_to_tensor


@torch.no_grad()
def recursive_search(predictor: NextFramePredictor, classifier: PairClassifier, frames: np.ndarray,
                     config: SearchConfig) -> np.ndarray:
    """The safe depths :class:`LearnedSearch` must return, one node at a time (no budget); with
    a deterministic predictor both give the same safe depths.

    Returns:
        int64 ``(n_actions,)`` safe depths.
    """
    n_actions, samples = int(predictor.n_actions), config.samples
    generator = torch.Generator().manual_seed(config.seed)

    def safe_lengths(history: torch.Tensor, level: int) -> list[int]:
        lengths = []
        for action in range(n_actions):
            child = predictor.predict(history, torch.tensor([action]), samples, generator=generator)
            pairs = make_pairs(history[:, -1].expand(samples, -1, -1, -1), child[0])
            if bool((torch.sigmoid(classifier(pairs)) >= config.threshold).any()):
                lengths.append(0)
            elif level == config.depth:
                lengths.append(1)
            else:
                next_history = torch.cat([history[:, 1:], child[:, :1]], dim=1)
                lengths.append(1 + max(safe_lengths(next_history, level + 1)))
        return lengths

    root = frames_to_tensor(frames, predictor.frame_shape, int(predictor.history))
    return np.asarray(safe_lengths(root, 1), dtype=np.int64)
