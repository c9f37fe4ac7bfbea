"""Game-tree safety search on a learned world model (SAD-GAN's decision procedure).

From the current frames the tree is expanded level by level: the children of every node for
every action come from ONE batched generator call per level (``samples`` noise draws per
child), a classifier labels each (parent frame, child frame) pair, a child is unsafe when any
of its samples is, and unsafe children are pruned (not expanded). Each expanded child carries
its first sample forward as its newest frame. The result per root action is its safe depth,
defined in :mod:`rlgan.safety.tree`, and the P(unsafe) of its first step (its risk). A search
may be limited to some first actions (the shield first checks only the policy's own action);
the others then get safe depth -1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from rlgan.safety.classifier import make_pairs, to_unit
from rlgan.safety.tree import Level, SearchResult, safe_depths

MAX_DEPTH = 8


class NextFramePredictor(Protocol):
    """A world model as the search sees it.

    Attributes:
        history: frames of context the predictor takes (1 = only frame t).
        frame_shape: ``(H, W, C)`` of one frame.
        n_actions: size of the ``Discrete`` action space.
    """

    history: int
    frame_shape: tuple[int, int, int]
    n_actions: int

    def predict(self, frames: torch.Tensor, actions: torch.Tensor, n_samples: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Next frames: float ``(B, history, C, H, W)`` in [-1, 1] and int64 actions ``(B,)``
        -> float ``(B, n_samples, C, H, W)`` in [-1, 1]."""
        ...


def predict_children(predictor: NextFramePredictor, frames: torch.Tensor, actions: torch.Tensor,
                     n_samples: int, generator: torch.Generator | None) -> torch.Tensor:
    """Next frames of every row of ``frames`` under every action: float ``(F, history, C, H, W)``
    and int64 ``(A,)`` -> ``(F * A, K, C, H, W)``, rows ordered parent-major.

    A predictor may offer ``predict_children(frames, actions, n_samples, generator)`` returning
    ``(F, A, K, C, H, W)`` (:class:`rlgan.worldmodel.WorldModel` does: it encodes each parent
    once for all its children); otherwise ``predict`` runs on the parents repeated per action.
    Both draw the same noise in the same order.
    """
    if hasattr(predictor, "predict_children"):
        children = predictor.predict_children(frames, actions, n_samples, generator=generator)
        return children.flatten(0, 1)
    parents = frames.repeat_interleave(len(actions), dim=0)
    return predictor.predict(parents, actions.repeat(len(frames)), n_samples, generator=generator)


class PairClassifier(Protocol):
    """Unsafe logits of stacked pairs: float ``(B, 2C, H, W)`` in [-1, 1] -> ``(B,)``."""

    def __call__(self, pairs: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class SearchConfig:
    """Parameters of a safety search (learned or oracle).

    Attributes:
        depth: levels of the game tree, 1..8.
        threshold: a pair is unsafe when P(unsafe) >= threshold, in [0, 1] (learned search).
        samples: noise samples per child, >= 1; a child is unsafe if any sample is
            (learned search; the true simulator is deterministic).
        node_budget: most (node, action) children evaluated per search; a level that would
            exceed it is not searched, so the search stops at the last complete level. Must
            cover depth 1 (at least ``n_actions``).
        seed: seed of the search's own ``torch.Generator`` (noise samples), so searches replay.
    """

    depth: int = 3
    threshold: float = 0.5
    samples: int = 1
    node_budget: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or not 1 <= self.depth <= MAX_DEPTH:
            raise ValueError(f"depth must be an integer in 1..{MAX_DEPTH}, got {self.depth!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {self.samples!r}")
        if not isinstance(self.node_budget, int) or self.node_budget < 1:
            raise ValueError(f"node_budget must be an integer >= 1, got {self.node_budget!r}")

    def check_budget(self, n_actions: int) -> None:
        """Raise ``ValueError`` when the budget cannot cover depth 1 with ``n_actions``."""
        if self.node_budget < n_actions:
            raise ValueError(f"node_budget {self.node_budget} cannot cover even depth 1 "
                             f"({n_actions} actions); use node_budget >= {n_actions} (the full "
                             f"depth-{self.depth} tree has {full_tree_nodes(n_actions, self.depth)} nodes)")


def full_tree_nodes(n_actions: int, depth: int) -> int:
    """Nodes of the unpruned tree: ``A + A^2 + ... + A^depth``."""
    return sum(n_actions**level for level in range(1, depth + 1))


def frames_to_tensor(frames: np.ndarray, frame_shape: tuple[int, int, int],
                     history: int) -> torch.Tensor:
    """uint8 frames ``(history, H, W, C)`` (observation layout, oldest first) -> float
    ``(1, history, C, H, W)`` in [-1, 1].

    Raises:
        ValueError: wrong number of frames or frame shape.
    """
    frames = np.asarray(frames)
    if frames.shape != (history, *frame_shape):
        raise ValueError(f"expected {history} frame(s) of shape {tuple(frame_shape)} (H, W, C), "
                         f"got an array of shape {frames.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return to_unit(tensor).unsqueeze(0)


class LearnedSearch:
    """The batched safety search on a world model and a safety classifier.

    Args:
        predictor: the world model (:class:`NextFramePredictor`).
        classifier: unsafe logits of (frame t, frame t+1) pairs (e.g. a
            :class:`rlgan.safety.classifier.SafetyClassifier` in eval mode).
        config: depth, threshold, samples, node budget, seed.
        device: where the tensors live (the predictor's and classifier's device).

    Raises:
        ValueError: the node budget cannot cover depth 1.
    """

    def __init__(self, predictor: NextFramePredictor, classifier: PairClassifier,
                 config: SearchConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.predictor = predictor
        self.classifier = classifier
        self.config = config or SearchConfig()
        self.config.check_budget(predictor.n_actions)
        self.device = torch.device(device)
        self.generator = torch.Generator()  # CPU: noise is drawn on the CPU, then moved
        self.generator.manual_seed(self.config.seed)

    @property
    def n_actions(self) -> int:
        return int(self.predictor.n_actions)

    @property
    def history(self) -> int:
        """Frames of context the search needs (the world model's history length)."""
        return int(self.predictor.history)

    @torch.no_grad()
    def unsafe_probability(self, parents: torch.Tensor, children: torch.Tensor) -> torch.Tensor:
        """P(unsafe) of each (parent, child sample): ``(N, C, H, W)`` and ``(N, K, C, H, W)``
        float in [-1, 1] -> ``(N, K)``."""
        n, k = children.shape[:2]
        repeated = parents.unsqueeze(1).expand(-1, k, -1, -1, -1).reshape(n * k, *parents.shape[1:])
        pairs = make_pairs(repeated, children.reshape(n * k, *children.shape[2:]))
        return torch.sigmoid(self.classifier(pairs)).reshape(n, k)

    @torch.no_grad()
    def search(self, frames: np.ndarray, env: object = None,
               actions: Sequence[int] | None = None) -> SearchResult:
        """Search from ``frames``: uint8 ``(history, H, W, C)``, oldest first (``env`` unused).

        Args:
            actions: first actions to search (default: all); the others get safe depth -1.

        Returns:
            :class:`SearchResult` with the safe depth of every action.
        """
        start = time.perf_counter()
        config, n_actions = self.config, self.n_actions
        roots = root_actions(actions, n_actions)
        nodes_frames = frames_to_tensor(frames, self.predictor.frame_shape, self.history).to(self.device)
        levels: list[Level] = []
        risks = np.full(n_actions, np.nan)
        nodes, searched = 0, config.depth
        for number in range(1, config.depth + 1):
            level_actions = roots if number == 1 else np.arange(n_actions)
            width, branching = nodes_frames.shape[0], len(level_actions)
            if width == 0:
                break
            if nodes + width * branching > config.node_budget:
                searched = number - 1
                break
            step_actions = torch.as_tensor(level_actions, device=self.device)
            children = predict_children(self.predictor, nodes_frames, step_actions, config.samples,
                                        self.generator)  # (F*A, K, C, H, W)
            parent_of = torch.arange(width, device=self.device).repeat_interleave(branching)  # (F*A,)
            probabilities = self.unsafe_probability(nodes_frames[parent_of, -1], children).amax(dim=1)
            if number == 1:
                risks[roots] = probabilities.cpu().numpy()
            unsafe = probabilities >= config.threshold
            levels.append(Level(unsafe=unsafe.reshape(width, branching).cpu().numpy(),
                                terminal=np.zeros((width, branching), dtype=bool)))
            nodes += width * branching
            if number < config.depth:
                keep = ~unsafe
                nodes_frames = torch.cat([nodes_frames[parent_of[keep], 1:], children[keep, :1]], dim=1)
        return SearchResult(safe_depths=scatter_depths(safe_depths(levels, searched), roots, n_actions),
                            depth=searched, nodes=nodes,
                            elapsed_ms=1000.0 * (time.perf_counter() - start), risks=risks)


def root_actions(actions: Sequence[int] | None, n_actions: int) -> np.ndarray:
    """The first actions to search, int64 (default all).

    Raises:
        ValueError: an action outside ``0..n_actions-1``, a repeat, or none at all.
    """
    if actions is None:
        return np.arange(n_actions)
    roots = np.asarray(list(actions), dtype=np.int64)
    if len(roots) == 0 or len(set(roots.tolist())) != len(roots) or roots.min() < 0 or roots.max() >= n_actions:
        raise ValueError(f"actions to search must be distinct values in 0..{n_actions - 1}, got "
                         f"{list(actions)}")
    return roots


def scatter_depths(depths: np.ndarray, roots: np.ndarray, n_actions: int) -> np.ndarray:
    """Safe depths of the searched ``roots`` placed in an ``(n_actions,)`` array, -1 elsewhere."""
    full = np.full(n_actions, -1, dtype=np.int64)
    full[roots] = depths
    return full


@torch.no_grad()
def recursive_search(predictor: NextFramePredictor, classifier: PairClassifier, frames: np.ndarray,
                     config: SearchConfig) -> np.ndarray:
    """Plain depth-first reference of :class:`LearnedSearch` (no budget, one node at a time).

    Used in tests to check the batched search on small trees; with a deterministic predictor
    both give the same safe depths.

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
