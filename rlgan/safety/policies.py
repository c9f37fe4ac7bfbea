"""Anything that picks actions, seen through one small interface the shield can wrap.

A :class:`Policy` proposes ``act(observation, env)`` and, when it has them, ``preferences``
(higher is better, e.g. Q-values) that the shield uses to break ties between equally safe
actions. :func:`as_policy` adapts an SB3 model (``predict``, and ``q_values`` for rlgan's DQN),
a :class:`rlgan.agents.qlearning.QLearningAgent`, or a plain callable (a scripted driver, the
keyboard); :func:`load_policy` loads ``human``, ``random``, ``scripted`` or a run of
``rlgan train``. :func:`lookup_policy` is the one lookup of a policy by name, which the
recorder (:func:`rlgan.data.record.make_policy`), the batched agent of
:func:`rlgan.safety.outcomes.collect_outcomes` and the shield recipe's checks share.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium
import numpy as np

from rlgan.config import check_choice

#: The policies known by name; any other name is the run directory of ``rlgan train``.
AGENTS = ("human", "scripted", "random")


@runtime_checkable
class Policy(Protocol):
    """Proposes actions; optionally ranks them."""

    def act(self, observation: Any, env: gymnasium.Env | None = None) -> int:
        """The action for ``observation`` (``env`` for policies that read the simulator)."""
        ...

    def preferences(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray | None:
        """Float ``(n_actions,)`` scores, higher preferred (Q-values), or None."""
        ...


def _takes_env(function: Callable[..., Any]) -> bool:
    try:
        return "env" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


class ModelPolicy:
    """An SB3 model or Q-learning agent: greedy ``predict``, ``q_values`` as preferences."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._predict_env = _takes_env(model.predict)
        q_values = getattr(model, "q_values", None)
        self._q_values_env = q_values is not None and _takes_env(q_values)

    def act(self, observation: Any, env: gymnasium.Env | None = None) -> int:
        if self._predict_env:
            return int(self.model.predict(observation, env=env)[0])
        return int(np.asarray(self.model.predict(observation, deterministic=True)[0]).item())

    def preferences(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray | None:
        if not hasattr(self.model, "q_values"):
            return None
        if self._q_values_env:
            return np.asarray(self.model.q_values(observation, env=env), dtype=np.float64)
        return np.asarray(self.model.q_values(observation), dtype=np.float64)


class CallablePolicy:
    """A function ``f(observation)`` or ``f(observation, env)`` returning an action."""

    def __init__(self, function: Callable[..., int]) -> None:
        self.function = function
        try:
            parameters = inspect.signature(function).parameters
            self._with_env = len(parameters) >= 2
        except (TypeError, ValueError):
            self._with_env = False

    def act(self, observation: Any, env: gymnasium.Env | None = None) -> int:
        if self._with_env:
            return int(self.function(observation, env))
        return int(self.function(observation))

    def preferences(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray | None:
        return None


class ScriptedPolicy:
    """The env's built-in ``scripted_action()``."""

    def act(self, observation: Any, env: gymnasium.Env | None = None) -> int:
        if env is None or not hasattr(env.unwrapped, "scripted_action"):
            raise ValueError(f"the scripted policy needs an env with scripted_action(), got {env}")
        return int(env.unwrapped.scripted_action())

    def preferences(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray | None:
        return None


class RandomPolicy:
    """Uniform actions from a generator seeded with ``seed``."""

    def __init__(self, n_actions: int, seed: int = 0) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def act(self, observation: Any, env: gymnasium.Env | None = None) -> int:
        return int(self.rng.integers(self.n_actions))

    def preferences(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray | None:
        return None


class EpsilonPolicy:
    """``policy`` taking a uniformly random action instead with probability ``epsilon``: an
    exploring (or careless) agent, which meets more of the states a shield is for.

    Raises:
        ValueError: ``epsilon`` outside [0, 1].
    """

    def __init__(self, policy: Policy, n_actions: int, epsilon: float, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.policy, self.n_actions, self.epsilon = policy, n_actions, epsilon
        self.rng = np.random.default_rng(seed)

    def act(self, observation: Any, env: gymnasium.Env | None = None) -> int:
        action = self.policy.act(observation, env)
        return int(self.rng.integers(self.n_actions)) if self.rng.random() < self.epsilon else action

    def preferences(self, observation: Any, env: gymnasium.Env | None = None) -> np.ndarray | None:
        return self.policy.preferences(observation, env)


def as_policy(policy: Any) -> Policy:
    """Adapt ``policy`` (a :class:`Policy`, an object with ``predict``, or a callable).

    Raises:
        TypeError: none of those.
    """
    if hasattr(policy, "act") and hasattr(policy, "preferences"):
        return policy
    if hasattr(policy, "predict"):
        return ModelPolicy(policy)
    if callable(policy):
        return CallablePolicy(policy)
    raise TypeError(f"cannot use {type(policy).__name__} as a policy: expected an object with "
                    "predict() (SB3 model, QLearningAgent), act()/preferences(), or a callable")


def lookup_policy(agent: str, env: gymnasium.Env, names: Sequence[str] = AGENTS) -> str | Any:
    """The one lookup of a policy by name: ``agent`` itself when it is one of ``names``, else
    the agent of the run directory ``agent`` of ``rlgan train`` (its best checkpoint, else its
    last, loaded for inference only: an SB3 model or a Q-learning agent).

    Raises:
        ValueError: ``env`` has no Discrete actions, ``agent`` is neither one of ``names`` (with
            a did-you-mean) nor a directory, or a run trained on other spaces.
        FileNotFoundError: ``agent`` is a directory but not a run.
    """
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        raise ValueError(f"a policy needs a Discrete action space, got {env.action_space}")
    if agent in names:
        return agent
    if not Path(agent).is_dir():
        try:
            check_choice("agent", agent, names)
        except ValueError as error:
            raise ValueError(f"{error} Or the run directory of rlgan train; there is no directory "
                             f"{agent!r}.") from None
    from rlgan.agents.training import load_inference_agent

    return load_inference_agent(agent, env)[0]


def check_scripted(env: gymnasium.Env, driver: Any, method: str = "scripted_action") -> None:
    """Raise ``ValueError`` unless ``driver`` (the env, or its vector version) has the scripted
    policy ``method``."""
    if not hasattr(driver, method):
        raise ValueError(f"{env.spec.id if env.spec else env} has no scripted policy; use "
                         "random or a run directory")


def load_policy(agent: str, env: gymnasium.Env, seed: int = 0, epsilon: float = 0.0) -> Policy:
    """``"human"`` (the keyboard: the env must render in ``"human"`` mode), ``"random"``
    (uniform, seeded with ``seed``), ``"scripted"`` (the env's ``scripted_action()``) or the
    directory of a run made by ``rlgan train`` (greedy); with ``epsilon > 0`` wrapped in an
    :class:`EpsilonPolicy` (seeded with ``seed``).

    A run's best checkpoint (else its last) is loaded for inference only (the network or table,
    not the replay buffer), and the env's spaces must match the run's.

    Raises:
        ValueError / FileNotFoundError: ``epsilon`` outside [0, 1], an unknown name, an env
            without Discrete actions or without a scripted policy, not a run, or a run trained
            on other spaces.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
    found = lookup_policy(agent, env)
    policy: Policy
    if found == "human":
        from rlgan.keyboard import KeyboardPolicy

        policy = CallablePolicy(KeyboardPolicy(env))
    elif found == "random":
        policy = RandomPolicy(int(env.action_space.n), seed)
    elif found == "scripted":
        check_scripted(env, env.unwrapped)
        policy = ScriptedPolicy()
    else:
        policy = ModelPolicy(found)
    return EpsilonPolicy(policy, int(env.action_space.n), epsilon, seed) if epsilon > 0 else policy
