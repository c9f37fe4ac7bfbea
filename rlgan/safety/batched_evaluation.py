"""The rows of :func:`rlgan.safety.evaluation.evaluate_shield`, many episodes at a time.

Episodes run in waves on the env's vector form (``gymnasium.make_vec`` with its
``vector_entry_point``): wave ``w`` resets its roads with seeds ``seed + w * num_envs + i``, so
episode ``e`` starts from ``seed + e`` in every row, as in the one-env loop. The agent acts on
the whole wave in one forward pass, and the shield's searches of every running episode share
their calls (:meth:`rlgan.safety.search.LearnedSearch.search_many`): the learned shield's
generator then predicts many frames per call instead of one, which is what a search on a CPU
spends its time on. Decisions follow :class:`rlgan.safety.shield.Shield` (lazy: the proposed
action first, the others when it falls short). ``latency_ms`` is the wave's time per decision.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from rlgan.safety.evaluation import Tally
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.outcomes import BatchPolicy
from rlgan.safety.shield import Shield, merge_searches, other_actions
from rlgan.safety.tree import SearchResult


@dataclass
class BatchedAgent:
    """An agent on an env's vector form: ``venv`` (next-step autoreset, ``get_states``) and the
    agent's batched ``policy`` (:func:`rlgan.safety.outcomes.batch_policy`)."""

    venv: gymnasium.vector.VectorEnv
    policy: BatchPolicy

    @classmethod
    def make(cls, env_id: str, env_kwargs: dict[str, Any], agent: str, env: gymnasium.Env,
             num_envs: int) -> BatchedAgent | None:
        """``agent`` on ``num_envs`` copies of ``env_id``, or None when the env has no vector
        form that saves its states (the rows then run one episode at a time)."""
        from rlgan.safety.outcomes import batch_policy

        if gymnasium.spec(env_id).vector_entry_point is None:
            return None
        venv = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                  **env_kwargs)
        if not hasattr(venv, "get_states"):
            venv.close()
            return None
        return cls(venv, batch_policy(agent, venv, env))


def evaluate_shield_batched(name: str, venv: gymnasium.vector.VectorEnv, env: gymnasium.Env,
                            policy: BatchPolicy, episodes: int, seed: int = 0,
                            shield: Shield | None = None, probe: OracleSearch | None = None) -> dict[str, Any]:
    """The row of :func:`rlgan.safety.evaluation.evaluate_shield` from waves of
    ``venv.num_envs`` episodes.

    Args:
        venv: the env's vector form (next-step autoreset; ``get_states``).
        env: one copy of the env (the policy's preferences and the shield's checks read it).
        policy: the agent's batched policy (:func:`rlgan.safety.outcomes.batch_policy`); its
            random draws come from a generator seeded with ``seed``.
        shield: the shield whose search and rule decide (its ``policy`` breaks ties).
        probe: as in :func:`rlgan.safety.evaluation.evaluate_shield`.

    Raises:
        ValueError: ``episodes`` < 1.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    required = shield.required_depth if shield is not None else (probe.config.depth if probe else 0)
    tallies = [Tally(required=required) for _ in range(episodes)]
    rng = np.random.default_rng(seed)
    for first in range(0, episodes, venv.num_envs):
        wave = _Wave(venv, seed + first, min(venv.num_envs, episodes - first),
                     shield.search.history if shield is not None else 1)
        wave.run(policy, rng, shield, probe, env, tallies[first:first + wave.count])
    return Tally.merged(tallies).row(name, probe is not None)


class _Wave:
    """Up to ``venv.num_envs`` episodes run side by side, from seeds ``seed + i``."""

    def __init__(self, venv: gymnasium.vector.VectorEnv, seed: int, count: int, history: int) -> None:
        self.venv, self.count = venv, count
        self.observations, _ = venv.reset(seed=[seed + i for i in range(venv.num_envs)])
        self.frames = [deque([observation] * history, maxlen=history) for observation in self.observations]
        self.running = np.arange(venv.num_envs) < count

    def run(self, policy: BatchPolicy, rng: np.random.Generator, shield: Shield | None,
            probe: OracleSearch | None, env: gymnasium.Env, tallies: list[Tally]) -> None:
        """Step every running episode to its end, counting each step in its tally."""
        own_probe = probe if shield is None or shield.search is not probe else None
        while self.running.any():
            index = np.flatnonzero(self.running)
            start = time.perf_counter()
            proposed = np.asarray(policy(self.observations, rng), dtype=np.int64)
            policy_ms = 1000.0 * (time.perf_counter() - start) / len(index)
            states = self.venv.get_states() if isinstance(getattr(shield, "search", None), OracleSearch) \
                or own_probe is not None else None
            taken, infos = proposed.copy(), [{} for _ in index]
            if shield is not None:
                self._shield(shield, index, proposed, states, env, taken, infos)
            true_depths = [None] * len(index)
            if own_probe is not None:
                true_depths = [result.safe_depths for result in
                               own_probe.search_many([states[i] for i in index], [None] * len(index))]
            self.observations, rewards, terminated, truncated, step_infos = self.venv.step(taken)
            for row, i in enumerate(index):
                infos[row]["unsafe"] = bool(step_infos["unsafe"][i])
                tallies[i].step(int(proposed[i]), float(rewards[i]), infos[row], policy_ms,
                                true_depths[row], probe is not None)
                if terminated[i] or truncated[i]:
                    tallies[i].end_episode()
                    self.running[i] = False
                else:
                    self.frames[i].append(self.observations[i])

    def _shield(self, shield: Shield, index: np.ndarray, proposed: np.ndarray, states: list[Any] | None,
                env: gymnasium.Env, taken: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """The shield's decision for every running episode, written into ``taken`` and
        ``infos`` (as :class:`rlgan.safety.shield.ShieldWrapper` reports it)."""
        start = time.perf_counter()
        first = self._search(shield, index, [[int(proposed[i])] for i in index], states)
        short = [row for row, i in enumerate(index) if shield.needs_all_actions(first[row], int(proposed[i]))]
        if short:
            rest = self._search(shield, index[short], [other_actions(int(proposed[index[row]]),
                                                                      shield.search.n_actions)
                                                        for row in short], states)
            for row, result in zip(short, rest):
                first[row] = merge_searches(first[row], result, int(proposed[index[row]]))
        latency_ms = 1000.0 * (time.perf_counter() - start) / len(index)
        for row, i in enumerate(index):
            decision = shield.choose(first[row], int(proposed[i]), self.observations[i], env, latency_ms)
            taken[i] = decision.shielded_action
            infos[row].update(original_action=decision.original_action,
                              shielded_action=decision.shielded_action,
                              shield_intervened=decision.intervened,
                              safe_depths=decision.safe_depths, shield_latency_ms=latency_ms)

    def _search(self, shield: Shield, index: np.ndarray, actions: list[list[int]],
                states: list[Any] | None) -> list[SearchResult]:
        if isinstance(shield.search, OracleSearch):
            return shield.search.search_many([states[i] for i in index], actions)
        frames = np.stack([np.stack(self.frames[i]) for i in index])
        return shield.search.search_many(frames, actions)
