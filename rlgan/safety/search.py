"""Game-tree safety search on a learned world model (SAD-GAN's decision procedure).

A child is predicted by the generator (``samples`` noise draws each), a classifier labels each
(parent frame, child frame) pair, a child is unsafe when any of its samples is, and unsafe
children are pruned (never expanded). Each expanded child carries its first sample forward as
its newest frame. The result per root action is its safe depth, defined in
:mod:`rlgan.safety.tree`, and the P(unsafe) of its first step (its risk). A search may be
limited to some first actions (the shield first checks only the policy's own action); the
others then get safe depth -1. Two strategies give the same safe depths:

``"breadth-first"``
    The tree is expanded level by level: the children of every safe node for every action come
    from ONE batched generator call per level. Cost: every safe node of the tree (39 frames at
    depth 3 with 3 actions when nothing is unsafe).
``"depth-first"``
    Each root action keeps a stack of safe nodes and stops as soon as one path stays safe to
    the horizon (or its stack is empty, its safe depth being the deepest safe node seen). A
    node's children are predicted one at a time, in action order, until one is safe: one
    batched generator call per round predicts the next child of the top node of every root
    action still searching (at most ``A`` frames). When nothing is unsafe a search needs as
    many calls as levels and ``A * D`` frames (9 at depth 3); near danger it backtracks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from rlgan.config import check_int_range
from rlgan.safety.classifier import make_pairs
from rlgan.worldmodel.frames import to_unit
from rlgan.safety.tree import Level, PathNode, SearchResult, depth_first, safe_depths

MAX_DEPTH = 8
STRATEGIES = ("depth-first", "breadth-first")


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
        node_budget: most (node, action) children evaluated per search. Must cover depth 1
            (at least ``n_actions``). A breadth-first search stops at the last complete level;
            a depth-first one at the last round that fits, its result's ``depth`` being the
            horizon to which every root action's safe depth is then known.
        seed: seed of the search's own ``torch.Generator`` (noise samples), so searches replay.
        strategy: ``"depth-first"`` or ``"breadth-first"`` (see the module docstring): the
            same safe depths, the first from far fewer predicted frames (learned search) or
            simulator steps (oracle).
    """

    depth: int = 3
    threshold: float = 0.5
    samples: int = 1
    node_budget: int = 2000
    seed: int = 0
    strategy: str = "depth-first"

    def __post_init__(self) -> None:
        check_int_range("depth", self.depth, 1, MAX_DEPTH)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {self.samples!r}")
        if not isinstance(self.node_budget, int) or self.node_budget < 1:
            raise ValueError(f"node_budget must be an integer >= 1, got {self.node_budget!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")

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
        roots = root_actions(actions, self.n_actions)
        root = frames_to_tensor(frames, self.predictor.frame_shape, self.history).to(self.device)
        # level 1, the same for both strategies: the root's children for the first actions
        children, probabilities = self.expand(root, torch.as_tensor(roots, device=self.device))
        risks = np.full(self.n_actions, np.nan)
        risks[roots] = probabilities.cpu().numpy()
        expand = self._depth_first if self.config.strategy == "depth-first" else self._breadth_first
        depths, searched, nodes = expand(root, children, probabilities)
        return SearchResult(safe_depths=scatter_depths(depths, roots, self.n_actions),
                            depth=searched, nodes=len(roots) + nodes,
                            elapsed_ms=1000.0 * (time.perf_counter() - start), risks=risks)

    @torch.no_grad()
    def expand(self, nodes_frames: torch.Tensor,
               actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Children of every node for every action in one batched generator call.

        Args:
            nodes_frames: float ``(F, history, C, H, W)`` in [-1, 1].
            actions: int64 ``(A,)``.

        Returns:
            ``children`` float ``(F*A, K, C, H, W)`` (parent-major) and their P(unsafe)
            ``(F*A,)``, the largest over the K samples.
        """
        children = predict_children(self.predictor, nodes_frames, actions, self.config.samples,
                                    self.generator)
        parents = nodes_frames[:, -1].repeat_interleave(len(actions), dim=0)
        return children, self.unsafe_probability(parents, children).amax(dim=1)

    @staticmethod
    def _child_frames(parents: torch.Tensor, children: torch.Tensor) -> torch.Tensor:
        """Histories of children: each parent's ``(history, C, H, W)`` shifted by one, its
        child's first sample appended. ``parents`` ``(N, history, ...)`` and ``children``
        ``(N, K, ...)`` row for row -> ``(N, history, ...)``."""
        return torch.cat([parents[:, 1:], children[:, :1]], dim=1)

    def _breadth_first(self, root: torch.Tensor, children: torch.Tensor,
                       probabilities: torch.Tensor) -> tuple[np.ndarray, int, int]:
        """Level by level from the first level's ``children`` and their ``probabilities``:
        ``(safe depths of the first actions, levels searched, nodes below level 1)``."""
        config, n_actions = self.config, self.n_actions
        all_actions = torch.arange(n_actions, device=self.device)
        nodes_frames = root
        levels: list[Level] = []
        first, nodes, searched = len(children), 0, config.depth
        for number in range(1, config.depth + 1):
            unsafe = probabilities >= config.threshold
            width = len(nodes_frames)
            branching = len(unsafe) // width
            levels.append(Level(unsafe=unsafe.reshape(width, branching).cpu().numpy(),
                                terminal=np.zeros((width, branching), dtype=bool)))
            if number == config.depth:
                break
            keep = ~unsafe  # children are parent-major: child i's parent is i // branching
            nodes_frames = self._child_frames(nodes_frames[keep.nonzero()[:, 0] // branching],
                                              children[keep])
            if len(nodes_frames) == 0:
                break
            if first + nodes + len(nodes_frames) * n_actions > config.node_budget:
                searched = number
                break
            children, probabilities = self.expand(nodes_frames, all_actions)
            nodes += len(children)
        return safe_depths(levels, searched), searched, nodes

    def _depth_first(self, root: torch.Tensor, children: torch.Tensor,
                     probabilities: torch.Tensor) -> tuple[np.ndarray, int, int]:
        """Per root action, depth first from the first level's ``children`` and their
        ``probabilities``: ``(safe depths of the first actions, horizon searched, nodes below
        level 1)``."""
        first_level = self._child_frames(root.expand(len(children), *root.shape[1:]), children)
        best, horizon, nodes = self._depth_first_below(
            first_level, probabilities, np.zeros(len(children), dtype=np.int64),
            np.array([len(children)]))
        return best, int(horizon[0]), int(nodes[0])

    def _depth_first_below(self, first_level: torch.Tensor, probabilities: torch.Tensor,
                           owners: np.ndarray, first_nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth first (:func:`rlgan.safety.tree.depth_first`) below the first-level nodes of
        one or more searches, the next child of every root still searching predicted in one
        generator call per round.

        Args:
            first_level: float ``(R, history, C, H, W)``, each root action's first child's
                history.
            probabilities: ``(R,)`` P(unsafe) of those first steps.
            owners: int ``(R,)``, the search (0..S-1) each root belongs to.
            first_nodes: int ``(S,)``, nodes each search spent on its first level (its budget
                counts them).

        Returns:
            ``(safe depth of every root (R,), horizon of every search (S,), nodes below level 1
            of every search (S,))``.
        """
        config = self.config
        safe = (probabilities < config.threshold).cpu().numpy()
        stacks = [[PathNode(first_level[r], 1, list(range(self.n_actions)))] if safe[r] and config.depth > 1 else []
                  for r in range(len(first_level))]
        return depth_first(stacks, safe.astype(np.int64), owners, first_nodes, config.depth,
                           config.node_budget, self.n_actions, self._predict_step)

    def _predict_step(self, parents: list[torch.Tensor], actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor]]:
        """One predicted step from each parent history with its action, for
        :func:`rlgan.safety.tree.depth_first`: ``(unsafe, ended (never), child histories)``."""
        frames = torch.stack(parents)
        children = self.predictor.predict(frames, torch.from_numpy(actions).to(self.device),
                                          self.config.samples, generator=self.generator)
        risk = self.unsafe_probability(frames[:, -1], children).amax(dim=1).cpu().numpy()
        return (risk >= self.config.threshold, np.zeros(len(parents), dtype=bool),
                list(self._child_frames(frames, children)))

    @torch.no_grad()
    def search_many(self, frames: np.ndarray, actions: Sequence[Sequence[int] | None]) -> list[SearchResult]:
        """Depth-first searches from many states at once: what :meth:`search` gives for each
        state, its generator calls shared (one call per round for every state's next child).

        Args:
            frames: uint8 ``(M, history, H, W, C)``, each state's frames, oldest first.
            actions: per state, the first actions to search (None: all).

        Returns:
            One :class:`SearchResult` per state; ``elapsed_ms`` is the shared time over ``M``.
        """
        start = time.perf_counter()
        frames = np.asarray(frames)
        if len(frames) != len(actions):
            raise ValueError(f"got {len(frames)} states and {len(actions)} action lists")
        roots = [root_actions(state_actions, self.n_actions) for state_actions in actions]
        tensors = torch.cat([frames_to_tensor(state, self.predictor.frame_shape, self.history)
                             for state in frames]).to(self.device)
        owners = np.repeat(np.arange(len(roots)), [len(state_roots) for state_roots in roots])
        parents = tensors[torch.from_numpy(owners).to(self.device)]
        first_actions = torch.from_numpy(np.concatenate(roots)).to(self.device)
        children = self.predictor.predict(parents, first_actions, self.config.samples, generator=self.generator)
        probabilities = self.unsafe_probability(parents[:, -1], children).amax(dim=1)
        first_nodes = np.array([len(state_roots) for state_roots in roots])
        best, horizons, nodes = self._depth_first_below(self._child_frames(parents, children),
                                                        probabilities, owners, first_nodes)
        elapsed = 1000.0 * (time.perf_counter() - start) / max(1, len(roots))
        risks_all = probabilities.cpu().numpy()
        results = []
        for state, state_roots in enumerate(roots):
            mine = owners == state
            risks = np.full(self.n_actions, np.nan)
            risks[state_roots] = risks_all[mine]
            results.append(SearchResult(safe_depths=scatter_depths(best[mine], state_roots, self.n_actions),
                                        depth=int(horizons[state]),
                                        nodes=int(first_nodes[state] + nodes[state]),
                                        elapsed_ms=elapsed, risks=risks))
        return results


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
