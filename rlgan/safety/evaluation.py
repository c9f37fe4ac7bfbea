"""Evaluate a policy alone and under shields: the rows of ``rlgan shield eval``.

Per row: mean episode ``return``, ``unsafe_per_1000`` (unsafe steps per 1000 steps),
``safe_depth`` (mean safe depth of the actions actually taken, measured by the oracle search
in the true simulator when the env can save its state, else by the row's own search, else
None), ``interventions_per_1000`` (steps where the shield changed the action, per 1000 steps)
``latency_ms`` (mean time to decide an action: the policy plus the shield's search), and,
with the true safe depths, how the row's decisions compare with the oracle's:
``false_alarms_per_1000`` (interventions although the proposed action reached the required
depth) and ``misses_per_1000`` (steps whose action fell short of the required depth while
another action was truly safer). Episode ``e`` resets with ``seed + e`` in every row, so rows
see the same roads, and :func:`evaluate_shields` gives each shielded row the fraction of the agent's
unsafe events it removed and the fraction of its return it kept (:func:`removed_fraction`,
:func:`return_kept`), each with a standard error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from rlgan.safety.metrics import bootstrap_stderr
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.policies import Policy
from rlgan.safety.shield import Shield, ShieldWrapper

if TYPE_CHECKING:
    from rlgan.safety.batched_evaluation import BatchedAgent

ROW_KEYS = ("name", "return", "unsafe_per_1000", "safe_depth", "interventions_per_1000", "latency_ms",
            "false_alarms_per_1000", "misses_per_1000")


def evaluate_shield(name: str, env: gymnasium.Env, policy: Policy, episodes: int, seed: int = 0,
                    shield: Shield | None = None, probe: OracleSearch | None = None) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``policy`` on ``env`` (shielded when ``shield`` is given).

    Args:
        name: the row's name.
        probe: oracle search that measures the true safe depth of each action taken (without
            it, ``safe_depth`` comes from the shield's own search and the false alarms and
            misses are None).

    Returns:
        A dict with the keys of :data:`ROW_KEYS`, plus ``steps``, ``episodes``,
        ``unsafe_events``, the median and 90th percentile of the latency, and per episode
        ``episode_returns``, ``episode_unsafe`` and ``episode_steps`` (for standard errors).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    run_env = env if shield is None else ShieldWrapper(env, shield)
    tally = Tally(required=shield.required_depth if shield is not None
                   else (probe.config.depth if probe else 0))
    own_probe = probe if shield is None or shield.search is not probe else None
    for episode in range(episodes):
        observation, _ = run_env.reset(seed=seed + episode)
        done = False
        while not done:
            true_depths = own_probe.search(env=env).safe_depths if own_probe is not None else None
            start = time.perf_counter()
            action = policy.act(observation, env)
            policy_ms = 1000.0 * (time.perf_counter() - start)
            observation, reward, terminated, truncated, info = run_env.step(action)
            tally.step(action, float(reward), info, policy_ms, true_depths, probe is not None)
            done = terminated or truncated
        tally.end_episode()
    return tally.row(name, probe is not None)


@dataclass
class Tally:
    """The counts of :func:`evaluate_shield` as its episodes run."""

    required: int
    returns: list[float] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    episode_unsafe: list[int] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    steps: int = 0
    unsafe: int = 0
    interventions: int = 0
    false_alarms: int = 0
    misses: int = 0
    episode_return: float = 0.0

    def step(self, action: int, reward: float, info: dict[str, Any], policy_ms: float,
             true_depths: np.ndarray | None, probed: bool) -> None:
        """Count one step: the policy proposed ``action``; ``info`` is the (shield wrapper's)
        step info; ``true_depths`` the oracle's safe depth of every action, when probed
        before the step (else the shield's own, read from ``info``, if any)."""
        taken = int(info.get("shielded_action", action))
        intervened = bool(info.get("shield_intervened", False))
        if true_depths is None and "safe_depths" in info:
            true_depths = info["safe_depths"]
        if true_depths is not None:
            self.depths.append(int(true_depths[taken]))
        if true_depths is not None and probed:
            proposed = int(info.get("original_action", action))
            self.false_alarms += intervened and true_depths[proposed] >= self.required
            self.misses += true_depths[taken] < min(self.required, true_depths.max())
        self.latencies.append(policy_ms + float(info.get("shield_latency_ms", 0.0)))
        self.interventions += intervened
        self.unsafe += bool(info.get("unsafe", False))
        self.episode_return += reward
        self.steps += 1

    def end_episode(self) -> None:
        self.returns.append(self.episode_return)
        self.episode_unsafe.append(self.unsafe - sum(self.episode_unsafe))
        self.episode_steps.append(self.steps - sum(self.episode_steps))
        self.episode_return = 0.0

    @classmethod
    def merged(cls, tallies: list[Tally]) -> Tally:
        """One tally of the finished episodes of ``tallies``, in their order."""
        total = cls(required=tallies[0].required)
        for tally in tallies:
            for name in ("returns", "depths", "latencies", "episode_unsafe", "episode_steps"):
                getattr(total, name).extend(getattr(tally, name))
            for name in ("steps", "unsafe", "interventions", "false_alarms", "misses"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
        return total

    def row(self, name: str, probed: bool) -> dict[str, Any]:
        """The row of :func:`evaluate_shield`."""
        steps, latencies = self.steps, self.latencies
        return {
            "name": name, "return": float(np.mean(self.returns)),
            "unsafe_per_1000": 1000.0 * self.unsafe / steps,
            "safe_depth": float(np.mean(self.depths)) if self.depths else None,
            "interventions_per_1000": 1000.0 * self.interventions / steps,
            "latency_ms": float(np.mean(latencies)),
            "latency_p50_ms": float(np.percentile(latencies, 50)),
            "latency_p90_ms": float(np.percentile(latencies, 90)),
            "false_alarms_per_1000": 1000.0 * self.false_alarms / steps if probed else None,
            "misses_per_1000": 1000.0 * self.misses / steps if probed else None,
            "steps": steps, "episodes": len(self.returns), "unsafe_events": self.unsafe,
            "episode_returns": self.returns, "episode_unsafe": self.episode_unsafe,
            "episode_steps": self.episode_steps,
        }


def evaluate_shields(env: gymnasium.Env, make_policy: Callable[[], Policy], shields: dict[str, Shield],
            episodes: int, seed: int = 0, probe: OracleSearch | None = None,
            progress: Callable[[str], None] | None = None,
            finished: dict[str, dict[str, Any]] | None = None,
            on_row: Callable[[dict[str, Any]], None] | None = None,
            batched: BatchedAgent | None = None) -> list[dict[str, Any]]:
    """The row ``agent`` (the policy alone), then one row per named shield, each with the
    ``removed`` fraction of the agent's unsafe events and the fraction of its return kept
    (``return_kept``), and their standard errors (``removed_stderr``, ``return_kept_stderr``).

    Args:
        make_policy: returns a fresh policy for each row (so random policies replay).
        shields: row name -> shield (the shield's own policy is replaced by the fresh one).
        progress: called with each row's name before it runs.
        finished: rows measured before (by name), taken as they are: every row drives the
            same seeds, so a comparison interrupted between rows resumes exactly.
        on_row: called with each newly measured row (e.g. to save it).
        batched: the env's vector form and the agent's batched policy: the rows run many
            episodes at a time (:func:`rlgan.safety.batched_evaluation.evaluate_shield_batched`),
            ``make_policy``'s policy only breaking the shields' ties.

    Raises:
        ValueError: ``episodes`` < 1.
    """
    from rlgan.safety.batched_evaluation import evaluate_shield_batched

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    rows = []
    for name, shield in {"agent": None, **shields}.items():
        if finished and name in finished:
            rows.append(finished[name])
            continue
        if progress is not None:
            progress(name)
        policy = make_policy()
        if shield is not None:
            shield.policy = policy
        if batched is None:
            rows.append(evaluate_shield(name, env, policy, episodes, seed, shield, probe))
        else:
            rows.append(evaluate_shield_batched(name, batched.venv, env, batched.policy, episodes,
                                                seed, shield, probe))
        if on_row is not None:
            on_row(rows[-1])
    for row in rows[1:]:
        row["removed"], row["removed_stderr"] = removed_fraction(rows[0], row)
        row["return_kept"], row["return_kept_stderr"] = return_kept(rows[0], row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    header = ("row", "return", "unsafe/1000", "safe depth", "interventions/1000", "latency ms",
              "false alarms/1000", "misses/1000")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def number(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    for row in rows:
        lines.append(f"| {row['name']} | {row['return']:.2f} | {row['unsafe_per_1000']:.2f} | "
                     f"{number(row['safe_depth'], 2)} | {row['interventions_per_1000']:.1f} | "
                     f"{row['latency_ms']:.1f} | {number(row['false_alarms_per_1000'], 1)} | "
                     f"{number(row['misses_per_1000'], 1)} |")
    return "\n".join(lines)


def percent_with_error(value: float | None, error: float | None) -> str:
    """``"81% +- 6%"``: a fraction (``removed``, ``return_kept``) and its standard error in
    percent, an error under 1% with one decimal (``"82% +- 0.4%"``); ``"n/a"`` for a fraction
    that is undefined (the agent had no unsafe event, or a mean return of 0 or less) and for a
    missing error."""
    if value is None:
        return "n/a"
    if error is None:
        return f"{100 * value:.0f}% +- n/a"
    return f"{100 * value:.0f}% +- {100 * error:.{1 if 0 < error < 0.01 else 0}f}%"


def removed_fraction(agent: dict[str, Any], shielded: dict[str, Any], resamples: int = 1000,
                     seed: int = 0) -> tuple[float | None, float | None]:
    """Fraction of the agent's unsafe events per step that a shielded row removed, and its
    standard error (paired bootstrap over the episodes both rows drove from the same seeds).

    Returns:
        ``(None, None)`` when the agent had no unsafe event.
    """
    a_unsafe, a_steps = np.asarray(agent["episode_unsafe"]), np.asarray(agent["episode_steps"])
    s_unsafe, s_steps = np.asarray(shielded["episode_unsafe"]), np.asarray(shielded["episode_steps"])

    def removed(index: np.ndarray) -> float:
        agent_rate = a_unsafe[index].sum() / a_steps[index].sum()
        return 1.0 - (s_unsafe[index].sum() / s_steps[index].sum()) / agent_rate if agent_rate else np.nan

    return paired_fraction(removed, len(a_unsafe), resamples, seed)


def return_kept(agent: dict[str, Any], shielded: dict[str, Any], resamples: int = 1000,
                seed: int = 0) -> tuple[float | None, float | None]:
    """The shielded row's mean return as a fraction of the agent's, and its standard error
    (paired bootstrap over episodes); ``(None, None)`` when the agent's mean return is 0 or
    less, where a ratio would rank a better return lower (compare the returns instead)."""
    a_returns, s_returns = np.asarray(agent["episode_returns"]), np.asarray(shielded["episode_returns"])

    def kept(index: np.ndarray) -> float:
        base = a_returns[index].mean()
        return s_returns[index].mean() / base if base > 0 else np.nan

    return paired_fraction(kept, len(a_returns), resamples, seed)


def paired_fraction(fraction: Callable[[np.ndarray], float], episodes: int, resamples: int,
                    seed: int) -> tuple[float | None, float | None]:
    """``fraction`` over all ``episodes`` and its paired-bootstrap standard error;
    ``(None, None)`` where it is undefined (``nan``) over all of them."""
    value = fraction(np.arange(episodes))
    if np.isnan(value):
        return None, None
    return float(value), bootstrap_stderr(fraction, episodes, resamples, seed)
