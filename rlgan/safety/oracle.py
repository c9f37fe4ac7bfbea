"""The oracle safety search: the same game tree, expanded in the true simulator.

It restores saved simulator states (``env.unwrapped.get_state()`` / ``set_state``), takes every
action and reads the env's own ``info["unsafe"]``, so it is the upper bound a learned world
model is judged against. Its steps run batched in the env's vector form when that has
``set_states`` (rlgan's driving and hide-and-seek games), else as a loop over one private copy
of the env (Atari). ``config.strategy`` orders the search as the learned one's: depth-first
(the default) follows one path per first action and backtracks past unsafe steps, breadth-first
expands the whole tree level by level; both give the same safe depths.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from rlgan.safety.search import SearchConfig, root_actions, scatter_depths
from rlgan.safety.tree import Level, PathNode, SearchResult, depth_first, safe_depths

#: The largest vector env the oracle makes; wider levels run in chunks of this size.
MAX_BATCH = 256


def env_identity(env: gymnasium.Env) -> tuple[str, dict[str, Any]]:
    """``(env_id, env_kwargs)`` an env was made with (``render_mode`` left out).

    Raises:
        ValueError: the env was not made with ``gymnasium.make`` (no spec).
    """
    spec = env.spec or env.unwrapped.spec
    if spec is None:
        raise ValueError(f"{env} has no spec; make it with gymnasium.make(id, ...) or pass the "
                         "env id and kwargs to OracleSearch yourself")
    kwargs = {key: value for key, value in spec.kwargs.items() if key != "render_mode"}
    return spec.id, kwargs


class OracleSearch:
    """Safety search in the true simulator (see the module docstring).

    A step that ends the episode without being unsafe counts as safe to the horizon. The search
    reads the current state from the ``env`` given to :meth:`search`, never changes it, and
    steps private copies made from ``env_id`` and ``env_kwargs``.

    Args:
        env_id, env_kwargs: the environment to copy (the same as the one searched).
        config: depth and node budget (``threshold`` and ``samples`` do not apply).
        batched: use the vector form when it has ``set_states`` (False forces the loop).

    Raises:
        ValueError: the env has no ``get_state``/``set_state``, no ``Discrete`` action space, or
            the node budget cannot cover depth 1.
    """

    history = 1

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None,
                 config: SearchConfig | None = None, batched: bool = True) -> None:
        from rlgan.make import make_env

        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.config = config or SearchConfig()
        self.env = make_env(env_id, **self.env_kwargs)
        unwrapped = self.env.unwrapped
        if not (hasattr(unwrapped, "get_state") and hasattr(unwrapped, "set_state")):
            raise ValueError(f"{env_id} has no get_state()/set_state(); the oracle search needs "
                             "to save and restore the simulator")
        if not isinstance(self.env.action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"the oracle search needs a Discrete action space, {env_id} has "
                             f"{self.env.action_space}")
        self.n_actions = int(self.env.action_space.n)
        self.config.check_budget(self.n_actions)
        self.env.reset(seed=0)
        self._vector_envs: dict[int, Any] = {}
        self.batched = batched and self._has_vector_form()

    @classmethod
    def for_env(cls, env: gymnasium.Env, config: SearchConfig | None = None,
                batched: bool = True) -> "OracleSearch":
        """An oracle for the env ``env`` was made as (same id and options)."""
        env_id, env_kwargs = env_identity(env)
        return cls(env_id, env_kwargs, config, batched)

    def _has_vector_form(self) -> bool:
        spec = gymnasium.spec(self.env_id)
        return spec.vector_entry_point is not None and hasattr(self._vector(1), "set_states")

    def _vector(self, size: int) -> Any:
        """A cached vector env of ``size`` copies (sizes are powers of two)."""
        if size not in self._vector_envs:
            vector = gymnasium.make_vec(self.env_id, num_envs=size,
                                        vectorization_mode="vector_entry_point", **self.env_kwargs)
            vector.reset(seed=0)
            self._vector_envs[size] = vector
        return self._vector_envs[size]

    def close(self) -> None:
        """Close the private env copies."""
        self.env.close()
        for vector in self._vector_envs.values():
            vector.close()
        self._vector_envs.clear()

    def step_all(self, states: Sequence[Any], actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """Take ``actions[i]`` from ``states[i]`` for every i in the true simulator.

        Returns:
            ``(unsafe, ended, next_states)``: bool ``(N,)`` arrays (``ended`` = terminated or
            truncated) and the N states after the steps.
        """
        if self.batched:
            return self._step_vector(states, actions)
        unsafe = np.zeros(len(states), dtype=bool)
        ended = np.zeros(len(states), dtype=bool)
        next_states = []
        for index, (state, action) in enumerate(zip(states, actions)):
            self.env.unwrapped.set_state(state)
            _, _, terminated, truncated, info = self.env.step(int(action))
            unsafe[index] = bool(info["unsafe"])
            ended[index] = terminated or truncated
            next_states.append(self.env.unwrapped.get_state())
        return unsafe, ended, next_states

    def _step_vector(self, states: Sequence[Any], actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        unsafe, ended, next_states = [], [], []
        for start in range(0, len(states), MAX_BATCH):
            chunk = list(states[start:start + MAX_BATCH])
            chunk_actions = np.asarray(actions[start:start + MAX_BATCH], dtype=np.int64)
            n = len(chunk)
            size = min(MAX_BATCH, 1 << (n - 1).bit_length())
            vector = self._vector(size)
            padded_actions = np.zeros(size, dtype=np.int64)
            padded_actions[:n] = chunk_actions
            vector.set_states(chunk + [chunk[-1]] * (size - n))
            _, _, terminated, truncated, infos = vector.step(padded_actions)
            unsafe.append(np.asarray(infos["unsafe"][:n], dtype=bool))
            ended.append(np.asarray(terminated[:n] | truncated[:n], dtype=bool))
            next_states.extend(vector.get_states()[:n])
        return np.concatenate(unsafe), np.concatenate(ended), next_states

    def search(self, frames: np.ndarray | None = None, env: gymnasium.Env | None = None,
               actions: Sequence[int] | None = None) -> SearchResult:
        """Search from the current state of ``env`` (``frames`` are not used).

        Args:
            actions: first actions to search (default: all); the others get safe depth -1.

        Raises:
            ValueError: no env given.
        """
        if env is None:
            raise ValueError("the oracle search needs the env whose state it searches from")
        return self.search_state(env.unwrapped.get_state(), actions)

    def search_many(self, states: Sequence[Any], actions: Sequence[Sequence[int] | None]) -> list[SearchResult]:
        """:meth:`search_state` from each of ``states`` with its first ``actions``."""
        return [self.search_state(state, state_actions) for state, state_actions in zip(states, actions)]

    def search_state(self, state: Any, actions: Sequence[int] | None = None) -> SearchResult:
        """Search from a saved simulator ``state`` (``actions`` as in :meth:`search`), in the
        order of ``config.strategy``."""
        start = time.perf_counter()
        roots = root_actions(actions, self.n_actions)
        expand = self._depth_first if self.config.strategy == "depth-first" else self._breadth_first
        depths, searched, nodes = expand(state, roots)
        return SearchResult(safe_depths=scatter_depths(depths, roots, self.n_actions),
                            depth=searched, nodes=nodes,
                            elapsed_ms=1000.0 * (time.perf_counter() - start))

    def _breadth_first(self, state: Any, roots: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Every node to the horizon, one batched step per level: ``(safe depths of the
        roots, levels searched, nodes)``."""
        config, n_actions = self.config, self.n_actions
        frontier: list[Any] = [state]
        levels: list[Level] = []
        nodes, searched = 0, config.depth
        for number in range(1, config.depth + 1):
            level_actions = roots if number == 1 else np.arange(n_actions)
            width, branching = len(frontier), len(level_actions)
            if width == 0:
                break
            if nodes + width * branching > config.node_budget:
                searched = number - 1
                break
            parents = [parent for parent in frontier for _ in range(branching)]
            unsafe, ended, children = self.step_all(parents, np.tile(level_actions, width))
            level = Level(unsafe=unsafe.reshape(width, branching),
                          terminal=(ended & ~unsafe).reshape(width, branching))
            levels.append(level)
            nodes += width * branching
            frontier = [child for child, keep in zip(children, level.expandable.ravel()) if keep]
        return safe_depths(levels, searched), searched, nodes

    def _depth_first(self, state: Any, roots: np.ndarray) -> tuple[np.ndarray, int, int]:
        """One path at a time per root (:func:`rlgan.safety.tree.depth_first`), the next child
        of every root still searching stepped in one batched call per round: ``(safe depths of
        the roots, horizon searched, nodes)``. The same safe depths as :meth:`_breadth_first`,
        from ``depth * len(roots)`` steps when the first paths are safe instead of the whole
        tree."""
        config = self.config
        depths, horizon, nodes = depth_first(
            [[PathNode(state, 0, [int(root)])] for root in roots], np.zeros(len(roots), dtype=np.int64),
            np.zeros(len(roots), dtype=np.int64), np.zeros(1, dtype=np.int64), config.depth,
            config.node_budget, self.n_actions, self.step_all)
        return depths, int(horizon[0]), int(nodes[0])
