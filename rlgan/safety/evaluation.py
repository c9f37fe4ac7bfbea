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
see the same roads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

from rlgan.safety.oracle import OracleSearch
from rlgan.safety.policies import Policy
from rlgan.safety.shield import Shield, ShieldWrapper

ROW_KEYS = ("name", "return", "unsafe_per_1000", "safe_depth", "interventions_per_1000", "latency_ms",
            "false_alarms_per_1000", "misses_per_1000")


def evaluate_row(name: str, env: gymnasium.Env, policy: Policy, episodes: int, seed: int = 0,
                 shield: Shield | None = None, probe: OracleSearch | None = None) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``policy`` on ``env`` (shielded when ``shield`` is given).

    Args:
        name: the row's name.
        probe: oracle search that measures the true safe depth of each action taken (without
            it, ``safe_depth`` comes from the shield's own search and the false alarms and
            misses are None).

    Returns:
        A dict with the keys of :data:`ROW_KEYS` (plus ``steps`` and ``episodes``).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    run_env = env if shield is None else ShieldWrapper(env, shield)
    reuse_shield_depths = shield is not None and shield.search is probe
    required = shield.required_depth if shield is not None else (probe.config.depth if probe else 0)
    returns, depths, latencies = [], [], []
    steps = unsafe = interventions = false_alarms = misses = 0
    for episode in range(episodes):
        observation, _ = run_env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            true_depths = None
            if probe is not None and not reuse_shield_depths:
                true_depths = probe.search(env=env).safe_depths
            start = time.perf_counter()
            action = policy.act(observation, env)
            policy_ms = 1000.0 * (time.perf_counter() - start)
            observation, reward, terminated, truncated, info = run_env.step(action)
            taken = int(info.get("shielded_action", action))
            intervened = bool(info.get("shield_intervened", False))
            if true_depths is None and "safe_depths" in info:
                true_depths = info["safe_depths"]
            if true_depths is not None:
                depths.append(int(true_depths[taken]))
            if true_depths is not None and probe is not None:
                proposed = int(info.get("original_action", action))
                false_alarms += intervened and true_depths[proposed] >= required
                misses += true_depths[taken] < min(required, true_depths.max())
            latencies.append(policy_ms + float(info.get("shield_latency_ms", 0.0)))
            interventions += intervened
            unsafe += bool(info.get("unsafe", False))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
    return {
        "name": name, "return": float(np.mean(returns)),
        "unsafe_per_1000": 1000.0 * unsafe / steps,
        "safe_depth": float(np.mean(depths)) if depths else None,
        "interventions_per_1000": 1000.0 * interventions / steps,
        "latency_ms": float(np.mean(latencies)),
        "false_alarms_per_1000": 1000.0 * false_alarms / steps if probe is not None else None,
        "misses_per_1000": 1000.0 * misses / steps if probe is not None else None,
        "steps": steps, "episodes": episodes,
    }


def compare(env: gymnasium.Env, make_policy: Callable[[], Policy], shields: dict[str, Shield],
            episodes: int, seed: int = 0, probe: OracleSearch | None = None,
            progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The row ``agent`` (the policy alone), then one row per named shield.

    Args:
        make_policy: returns a fresh policy for each row (so random policies replay).
        shields: row name -> shield (the shield's own policy is replaced by the fresh one).
        progress: called with each row's name before it runs.
    """
    rows = []
    for name, shield in {"agent": None, **shields}.items():
        if progress is not None:
            progress(name)
        policy = make_policy()
        if shield is not None:
            shield.policy = policy
        rows.append(evaluate_row(name, env, policy, episodes, seed, shield, probe))
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
