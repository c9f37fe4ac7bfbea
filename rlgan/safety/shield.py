"""The shield: keep a policy's action when a safety search finds it safe enough, else swap it.

Rule (:func:`choose_action`): keep the proposed action when its safe depth reaches the
required depth (default: the search depth); otherwise take the action with the greatest safe
depth, ties broken by the policy's own preference: its action if it is among the best, else
the best by its Q-values when it has them, else the first in a fixed order. When even the
greatest safe depth falls short of the required depth and the search reports risks (the
learned search: each action's first-step P(unsafe)), the least risky of the tied actions are
kept before the policy's preference decides: with every action predicted unsafe, the one the
model finds least likely to be unsafe beats the policy's own, which is often the doomed one.

:class:`Shield` wraps a policy (SB3 model, Q-learning agent, scripted driver, keyboard) and
keeps the frame history the search needs; :class:`ShieldWrapper` puts a shield around a
Gymnasium env so every action stepped through it is corrected, and reports what it did in
``info``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium
import numpy as np

from rlgan.config import check_int_range
from rlgan.safety.policies import Policy, as_policy
from rlgan.safety.search import SearchConfig
from rlgan.safety.tree import SearchResult


class SafetySearch(Protocol):
    """A search the shield can use: :class:`rlgan.safety.search.LearnedSearch` (reads the
    frames) or :class:`rlgan.safety.oracle.OracleSearch` (reads the env's state)."""

    history: int
    n_actions: int
    config: SearchConfig

    def search(self, frames: np.ndarray | None, env: gymnasium.Env | None,
               actions: Sequence[int] | None = None) -> SearchResult: ...


def choose_action(safe_depths: np.ndarray, proposed: int, required: int,
                  preferences: np.ndarray | None = None, order: Sequence[int] | None = None,
                  risks: np.ndarray | None = None) -> int:
    """The shielded action (see the module docstring).

    Args:
        safe_depths: int ``(A,)`` safe depth of every action.
        proposed: the policy's action.
        required: safe depth at which the proposed action is kept.
        preferences: float ``(A,)`` policy scores (higher preferred), or None.
        order: fallback order of actions (default ``0, 1, ...``).
        risks: float ``(A,)`` P(unsafe) of each action's first step, or None; breaks ties
            when no action reaches ``required``.
    """
    safe_depths = np.asarray(safe_depths)
    if safe_depths[proposed] >= required:
        return int(proposed)
    best = safe_depths.max()
    candidates = np.flatnonzero(safe_depths == best)
    if risks is not None and best < required:
        candidate_risks = np.asarray(risks, dtype=np.float64)[candidates]
        candidates = candidates[candidate_risks == np.nanmin(candidate_risks)]
    if proposed in candidates:
        return int(proposed)
    if preferences is not None:
        scores = np.asarray(preferences, dtype=np.float64)[candidates]
        return int(candidates[int(np.argmax(scores))])
    for action in (order if order is not None else range(len(safe_depths))):
        if action in candidates:
            return int(action)
    return int(candidates[0])


def other_actions(action: int, n_actions: int) -> list[int]:
    """Every action but ``action``."""
    return [other for other in range(n_actions) if other != action]


def merge_searches(first: SearchResult, rest: SearchResult, action: int) -> SearchResult:
    """One result from a search of only ``action`` (``first``) and one of the other actions
    (``rest``), up to the horizon both reached."""
    searched = min(first.depth, rest.depth)
    proposed = np.arange(len(first.safe_depths)) == action
    depths = np.minimum(np.where(proposed, first.safe_depths, rest.safe_depths), searched)
    risks = None
    if first.risks is not None and rest.risks is not None:
        risks = np.where(proposed, first.risks, rest.risks)
    return SearchResult(safe_depths=depths, depth=searched, nodes=first.nodes + rest.nodes,
                        elapsed_ms=first.elapsed_ms + rest.elapsed_ms, risks=risks)


@dataclass(frozen=True)
class ShieldDecision:
    """One decision of the shield.

    Attributes:
        original_action: what the policy (or person) proposed.
        shielded_action: what the shield lets through.
        intervened: ``shielded_action != original_action``.
        safe_depths: int ``(A,)`` safe depth of every action from the search.
        required_depth: the depth the proposed action had to reach (capped at the levels the
            search completed).
        latency_ms: wall-clock time of the search and the decision, milliseconds.
    """

    original_action: int
    shielded_action: int
    intervened: bool
    safe_depths: np.ndarray
    required_depth: int
    latency_ms: float


class Shield:
    """Corrects a policy's actions with a safety search.

    Args:
        search: the safety search (learned or oracle).
        policy: optional policy to shield (anything :func:`rlgan.safety.policies.as_policy`
            takes); needed by :meth:`act`, and its Q-values break ties.
        required_depth: safe depth at which the policy's action is kept, 1..search depth
            (default: the search depth).
        action_order: fallback tie-break order of actions (default ``0, 1, ...``).
        lazy: first search only the proposed action's subtree and search the other actions
            only when it falls short (most steps then cost a third of the tree for 3
            actions); the decision is the same (when the node budget covers the tree), but
            ``safe_depths`` holds -1 for actions that were not searched.

    Call :meth:`reset` at the start of every episode (:class:`ShieldWrapper` does it). Each
    :meth:`decide` / :meth:`act` appends the observation it is given to the frame history.

    Raises:
        ValueError: ``required_depth`` out of range or a bad ``action_order``.
    """

    def __init__(self, search: SafetySearch, policy: Any = None, required_depth: int | None = None,
                 action_order: Sequence[int] | None = None, lazy: bool = True) -> None:
        self.search = search
        self.lazy = lazy
        self.policy: Policy | None = None if policy is None else as_policy(policy)
        depth = search.config.depth
        self.required_depth = depth if required_depth is None else required_depth
        check_int_range("required_depth", self.required_depth, 1, depth)
        n_actions = int(search.n_actions)
        if action_order is not None and sorted(action_order) != list(range(n_actions)):
            raise ValueError(f"action_order must list each of the {n_actions} actions once, got "
                             f"{list(action_order)}")
        self.action_order = list(action_order) if action_order is not None else list(range(n_actions))
        self.history: deque[np.ndarray] = deque(maxlen=max(1, int(search.history)))
        self.last_decision: ShieldDecision | None = None

    def reset(self) -> None:
        """Forget the frame history (a new episode starts)."""
        self.history.clear()
        self.last_decision = None

    def _push(self, observation: np.ndarray) -> np.ndarray:
        frame = np.asarray(observation)
        if not self.history:
            self.history.extend([frame] * self.history.maxlen)
        else:
            self.history.append(frame)
        return np.stack(self.history)

    def decide(self, observation: np.ndarray, action: int, env: gymnasium.Env | None = None) -> ShieldDecision:
        """Shield ``action`` proposed at ``observation`` (the env's current observation;
        ``env`` is needed by the oracle search)."""
        start = time.perf_counter()
        action = int(action)
        result = self._search(self._push(observation), action, env)
        decision = self.choose(result, action, observation, env,
                               latency_ms=1000.0 * (time.perf_counter() - start))
        self.last_decision = decision
        return decision

    def choose(self, result: SearchResult, action: int, observation: np.ndarray,
               env: gymnasium.Env | None = None, latency_ms: float = 0.0) -> ShieldDecision:
        """The decision on the proposed ``action`` given the search ``result`` from the
        current state (:func:`choose_action`; the policy's preferences break ties)."""
        depths, required = result.safe_depths, min(self.required_depth, result.depth)
        preferences = None
        if self.policy is not None and depths[action] < required:
            preferences = self.policy.preferences(observation, env)
        shielded = choose_action(depths, action, required, preferences, self.action_order,
                                 result.risks)
        return ShieldDecision(original_action=action, shielded_action=shielded,
                              intervened=shielded != action, safe_depths=depths,
                              required_depth=required, latency_ms=latency_ms)

    def needs_all_actions(self, first: SearchResult, action: int) -> bool:
        """Whether a lazy search of only ``action`` (``first``) falls short, so that the
        other actions must be searched too."""
        return first.safe_depths[action] < min(self.required_depth, first.depth)

    def _search(self, frames: np.ndarray, action: int, env: gymnasium.Env | None) -> SearchResult:
        """The search result for this decision (safe depths -1 where not searched)."""
        if not self.lazy:
            return self.search.search(frames, env)
        first = self.search.search(frames, env, actions=[action])
        if not self.needs_all_actions(first, action):
            return first
        return merge_searches(first, self.search.search(frames, env, actions=other_actions(
            action, int(self.search.n_actions))), action)

    def act(self, observation: np.ndarray, env: gymnasium.Env | None = None) -> int:
        """The policy's action at ``observation``, shielded.

        Raises:
            ValueError: the shield has no policy.
        """
        if self.policy is None:
            raise ValueError("this Shield has no policy; pass policy=... or use decide()")
        return self.decide(observation, self.policy.act(observation, env), env).shielded_action


class ShieldWrapper(gymnasium.Wrapper):
    """A Gymnasium wrapper that shields every action stepped through it.

    ``info`` gains ``shield_intervened`` (bool), ``original_action``, ``shielded_action`` (int),
    ``safe_depths`` (int64 ``(A,)``, -1 for actions a lazy shield did not search) and
    ``shield_latency_ms`` (float).

    Args:
        env: the env to shield (for the oracle search, made with ``gymnasium.make``).
        shield: the :class:`Shield` (its policy, if any, breaks ties).
    """

    def __init__(self, env: gymnasium.Env, shield: Shield) -> None:
        super().__init__(env)
        if int(env.action_space.n) != int(shield.search.n_actions):
            raise ValueError(f"the env has {env.action_space} but the shield's search knows "
                             f"{shield.search.n_actions} actions")
        self.shield = shield
        self._observation: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        observation, info = self.env.reset(seed=seed, options=options)
        self.shield.reset()
        self._observation = observation
        return observation, info

    def step(self, action):
        if self._observation is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; the action space is {self.action_space}")
        decision = self.shield.decide(self._observation, int(action), self.env)
        observation, reward, terminated, truncated, info = self.env.step(decision.shielded_action)
        self._observation = observation
        info = {**info, "shield_intervened": decision.intervened,
                "original_action": decision.original_action,
                "shielded_action": decision.shielded_action,
                "safe_depths": decision.safe_depths.copy(),
                "shield_latency_ms": decision.latency_ms}
        return observation, reward, terminated, truncated, info
