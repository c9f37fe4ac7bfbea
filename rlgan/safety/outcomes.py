"""Outcome records: the states an agent meets before its own unsafe events, with the true
outcome of every action from each.

A shield acts where the agent it guards gets into trouble, so its classifier should learn
from those states, and from every action taken there, not only the agent's.
:func:`collect_outcomes` runs the agent on ``num_envs`` copies of the env at once (the env's
vector version, which must have ``get_states()``), keeps the ``before`` states before each of
the agent's unsafe steps and a ``safe_fraction`` of its other states, and from each kept state
steps every action in the true simulator (``get_state``/``set_state``,
:func:`rlgan.data.replay.step_outcomes`): the next frame, and whether the step is unsafe or,
with a ``doom_horizon``, lands in a doomed state (:mod:`rlgan.safety.labels`).

The records' format and readers are in :mod:`rlgan.data.outcomes`; ``resume=True`` carries on
after the last finished shard, up to the (possibly larger) number of episodes asked for.
``variants`` (e.g. driving maps) take turns by shard, so one dataset spans several of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from tqdm import tqdm

from rlgan.data.outcomes import OutcomeWriter
from rlgan.data.replay import step_outcomes
from rlgan.io import DirectoryLock
from rlgan.safety.labels import check_doom_horizon, doom_oracle
from rlgan.safety.policies import check_scripted, lookup_policy

#: ``(observations (N, ...), rng) -> actions (N,)``; ``rng`` is the batch's own generator.
BatchPolicy = Callable[[np.ndarray, np.random.Generator], np.ndarray]
#: The agents a batch policy can be made of by name (else a run directory of ``rlgan train``).
BATCH_AGENTS = ("random", "scripted")


@dataclass(frozen=True)
class OutcomeConfig:
    """Settings of :func:`collect_outcomes`.

    Attributes:
        episodes: episodes to run the agent for, rounded up to a multiple of ``num_envs``.
        num_envs: episodes run at once; one shard per batch.
        before: states kept before each of the agent's unsafe steps (the last is the state it
            acted unsafely from).
        safe_fraction: probability of keeping any other state, in [0, 1].
        doom_horizon: label an action unsafe also when it lands in a state from which every
            sequence of this many actions meets an unsafe step (0..4).
        history: frames kept per record (the world model's history).
        epsilon: probability of replacing the agent's action by a uniformly random one at each
            step, in [0, 1): the agent then also meets states it would not reach alone, like
            those a shield steers it into. The records hold the action actually taken.
        seed: episode e resets with ``seed + e``.
    """

    episodes: int = 640
    num_envs: int = 64
    before: int = 6
    safe_fraction: float = 0.01
    doom_horizon: int = 2
    history: int = 2
    epsilon: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("episodes", "num_envs", "before", "history"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= self.safe_fraction <= 1.0:
            raise ValueError(f"safe_fraction must be in [0, 1], got {self.safe_fraction!r}")
        if not 0.0 <= self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {self.epsilon!r}")
        check_doom_horizon(self.doom_horizon)


@dataclass
class _Kept:
    """A state chosen for labelling, before its outcomes are read."""

    episode: int
    state: Any
    frames: np.ndarray
    action: int
    steps_to_unsafe: int


def batch_policy(agent: str, venv: gymnasium.vector.VectorEnv, env: gymnasium.Env) -> BatchPolicy:
    """The :data:`BatchPolicy` of ``agent`` (:func:`rlgan.safety.policies.lookup_policy`):
    ``"random"``, ``"scripted"`` (the vector env's ``scripted_actions()``) or the run directory
    of ``rlgan train`` (its best agent, greedy, one batched forward pass per step).

    Raises:
        ValueError / FileNotFoundError: as :func:`rlgan.safety.policies.lookup_policy`, or a
            vector env without a scripted policy.
    """
    found = lookup_policy(agent, env, BATCH_AGENTS)
    if found == "random":
        n_actions = int(env.action_space.n)
        return lambda observations, rng: rng.integers(n_actions, size=len(observations))
    if found == "scripted":
        check_scripted(env, venv, "scripted_actions")
        return lambda observations, rng: venv.scripted_actions()
    return lambda observations, rng: np.asarray(found.predict(observations, deterministic=True)[0])


def _run_batch(venv: gymnasium.vector.VectorEnv, policy: BatchPolicy, first_episode: int,
               config: OutcomeConfig, rng: np.random.Generator) -> list[_Kept]:
    """Run episodes ``first_episode ..`` (one per road) to their end; return the kept states."""
    n = venv.num_envs
    observations, _ = venv.reset(seed=config.seed + first_episode)
    states = venv.get_states()
    history = [[observation] * config.history for observation in observations]
    recent: list[list[_Kept]] = [[] for _ in range(n)]
    kept: list[_Kept] = []
    done = np.zeros(n, dtype=bool)

    def keep_at_random(candidates: list[_Kept]) -> None:
        kept.extend(item for item in candidates if rng.random() < config.safe_fraction)

    n_actions = int(venv.single_action_space.n)
    while not done.all():
        actions = policy(observations, rng)
        if config.epsilon > 0:
            explore = rng.random(n) < config.epsilon
            actions = np.where(explore, rng.integers(n_actions, size=n), actions)
        for road in np.flatnonzero(~done):
            recent[road].append(_Kept(first_episode + int(road), states[road],
                                      np.stack(history[road]), int(actions[road]), -1))
        observations, _, terminated, truncated, infos = venv.step(actions)
        states = venv.get_states()
        for road in np.flatnonzero(~done):
            window = recent[road]
            if infos["unsafe"][road]:
                last = window[-config.before:]  # oldest first
                kept.extend(dataclasses.replace(item, steps_to_unsafe=len(last) - index)
                            for index, item in enumerate(last))
                keep_at_random(window[:-config.before])
                window.clear()
            elif len(window) > config.before:
                keep_at_random(window[:1])
                del window[0]
            history[road] = history[road][1:] + [observations[road]]
            if terminated[road] or truncated[road]:
                keep_at_random(window)
                window.clear()
                done[road] = True
    return kept


def _label(env: gymnasium.Env, kept: Sequence[_Kept], oracle: Any, history: int) -> dict[str, np.ndarray]:
    """The shard arrays of ``kept``: every action's next frame and outcome from its state."""
    n_actions, frame_shape = int(env.action_space.n), env.observation_space.shape
    frames = np.zeros((len(kept), history, *frame_shape), np.uint8)
    next_frames = np.zeros((len(kept), n_actions, *frame_shape), np.uint8)
    unsafe = np.zeros((len(kept), n_actions), bool)
    for index, item in enumerate(kept):
        env.unwrapped.set_state(item.state)
        unsafe[index], next_frames[index] = step_outcomes(env, range(n_actions), oracle)
        frames[index] = item.frames
    return {
        "frames": frames, "next_frames": next_frames, "unsafe": unsafe,
        "action": np.array([item.action for item in kept], dtype=np.int64),
        "episode": np.array([item.episode for item in kept], dtype=np.int64),
        "steps_to_unsafe": np.array([item.steps_to_unsafe for item in kept], dtype=np.int64),
    }


def _settings(config: OutcomeConfig) -> dict[str, Any]:
    """What a resumed collection must share with the first run: all but ``episodes``, which
    may grow to extend the records."""
    settings = dataclasses.asdict(config)
    del settings["episodes"]
    return settings


class _Simulators:
    """The env (for labelling), its vector version (to run the agent), the doom oracle and
    the agent's batch policy for one set of env options."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], agent: str, config: OutcomeConfig) -> None:
        from rlgan.make import make_env

        self.env = make_env(env_id, **env_kwargs)
        self.venv = self.oracle = None
        try:
            if not hasattr(self.env.unwrapped, "get_state"):
                raise ValueError(f"{env_id} has no get_state()/set_state(): the outcome of actions "
                                 "the agent did not take cannot be read")
            self.venv = gymnasium.make_vec(env_id, num_envs=config.num_envs,
                                           vectorization_mode="vector_entry_point", **env_kwargs)
            if not hasattr(self.venv, "get_states"):
                raise ValueError(f"{env_id}'s vector env has no get_states(); outcomes need it")
            self.policy = batch_policy(agent, self.venv, self.env)
            self.oracle = doom_oracle(env_id, env_kwargs, config.doom_horizon)
            self.env.reset(seed=config.seed)
        except BaseException:
            self.close()
            raise

    def check_like(self, other: _Simulators) -> None:
        """Raise ``ValueError`` unless both envs have the same observation and action spaces."""
        if (self.env.observation_space != other.env.observation_space
                or self.env.action_space != other.env.action_space):
            raise ValueError("every variant must keep the observation and action spaces: "
                             f"{self.env.observation_space}, {self.env.action_space} vs "
                             f"{other.env.observation_space}, {other.env.action_space}")

    def close(self) -> None:
        for closable in (self.env, self.venv, self.oracle):
            if closable is not None:
                closable.close()


def collect_outcomes(env_id: str, env_kwargs: dict[str, Any], agent: str, out: str | Path,
                     config: OutcomeConfig | None = None, resume: bool = False,
                     progress: bool = True, variants: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Run ``agent`` and write the outcome records of its near-unsafe states to ``out``.

    Args:
        variants: env options that take turns by shard (shard k runs ``env_kwargs`` updated
            with ``variants[k % len(variants)]``), e.g. ``[{"map": "day"}, {"map": "snow"}]``
            for records of several driving maps in one dataset; empty for ``env_kwargs`` alone.

    Returns:
        The records' metadata (:mod:`rlgan.data.outcomes`; each shard lists its records and
        the agent's unsafe events).

    Raises:
        DatasetError: ``out`` holds records and ``resume`` is False, or records made with other
            settings.
        ValueError: an env without ``get_state()``/``set_state()`` or whose vector version has
            no ``get_states()``, an agent that is neither ``random``, ``scripted`` nor a
            directory, an agent trained on another env, or a variant that repeats a key of
            ``env_kwargs``.
        FileNotFoundError: ``agent`` is a directory but not a run of ``rlgan train``.
        rlgan.io.DirectoryBusyError: another process is writing ``out``.
    """
    config = config or OutcomeConfig()
    variants = [dict(variant) for variant in variants]
    for variant in variants:
        if set(variant) & set(env_kwargs):
            raise ValueError(f"variant {variant} sets {sorted(set(variant) & set(env_kwargs))}, "
                             "which env_kwargs already fix; leave them out of one of the two")
    simulators: list[_Simulators] = []
    try:
        for variant in variants or [{}]:  # all made before anything is written
            simulators.append(_Simulators(env_id, {**env_kwargs, **variant}, agent, config))
            simulators[-1].check_like(simulators[0])
        env = simulators[0].env
        settings = {"env_id": env_id, "env_kwargs": dict(env_kwargs), "agent": str(agent),
                    "obs_shape": list(env.observation_space.shape),
                    "n_actions": int(env.action_space.n), "config": _settings(config)}
        if variants:
            settings["variants"] = variants
        with DirectoryLock(out):
            writer = OutcomeWriter(out, settings, resume)
            n_shards = -(-config.episodes // config.num_envs)
            for shard in tqdm(range(writer.finished_shards, n_shards), desc="outcomes",
                              unit="shard", disable=not progress):
                sim = simulators[shard % len(simulators)]
                rng = np.random.default_rng([config.seed, shard])
                kept = _run_batch(sim.venv, sim.policy, shard * config.num_envs, config, rng)
                writer.write(_label(sim.env, kept, sim.oracle, config.history))
    finally:
        for sim in simulators:
            sim.close()
    return writer.metadata
