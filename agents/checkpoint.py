"""Exact, pickle-free checkpoints of an SB3 DQN training run.

A checkpoint directory holds:

- ``policy.safetensors``: online and target network weights;
- ``optimizer.pt``: the optimiser state (loaded with ``torch.load(weights_only=True)``);
- ``replay.npz``: the filled part of the replay buffer and the last observation;
- ``torch_rng.safetensors`` and ``state.json``: counters (``num_timesteps``, updates,
  exploration rate, progress), the Python, NumPy, torch and action-space random states, and
  the training envs' simulator states where they offer ``get_state`` (every rlgan env) or,
  batched, ``get_states`` (rlgan's vector forms), with the episode statistics of SB3's
  monitors.

Together they make a resumed run continue the same curve: same step count, same epsilon,
same buffer, same random numbers, and for rlgan's envs the same episodes in progress. Envs
without saveable states continue from fresh episodes.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rlgan.io import atomic_path, write_json

COUNTERS = ("num_timesteps", "_n_updates", "_n_calls", "_episode_num", "exploration_rate",
            "_current_progress_remaining")


def _encode(value: Any) -> Any:
    """JSON-encode a simulator-state field (arrays, bytes, tuples, dicts of plain values)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": base64.b64encode(value.tobytes()).decode(), "dtype": str(value.dtype),
                "shape": list(value.shape)}
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.frombuffer(base64.b64decode(value["__ndarray__"]),
                                 dtype=value["dtype"]).reshape(value["shape"]).copy()
        if "__bytes__" in value:
            return base64.b64decode(value["__bytes__"])
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def env_state_to_json(state: Any) -> dict[str, Any]:
    """A dataclass simulator state (``env.unwrapped.get_state()``) as JSON."""
    return {"class": type(state).__name__,
            "fields": {f.name: _encode(getattr(state, f.name)) for f in dataclasses.fields(state)}}


def env_state_from_json(data: dict[str, Any], state_class: type) -> Any:
    """Rebuild a simulator state written by :func:`env_state_to_json`."""
    if data["class"] != state_class.__name__:
        raise ValueError(f"checkpoint holds a {data['class']}, the env uses {state_class.__name__}")
    return state_class(**{k: _decode(v) for k, v in data["fields"].items()})


def _single_env(model: Any) -> Any | None:
    """The single training env (inside SB3's DummyVecEnv and Monitor), if there is one."""
    envs = getattr(model.get_env(), "envs", None)
    return envs[0] if envs and len(envs) == 1 else None


def _batched_env(model: Any) -> Any | None:
    """The Gymnasium vector env under SB3's ``VecMonitor`` and rlgan's ``GymnasiumVecEnv``,
    if it can save its states (see :mod:`rlgan.agents.vec_adapter`)."""
    vector = getattr(getattr(model.get_env(), "venv", None), "env", None)
    return vector if hasattr(vector, "get_states") else None


def _vec_monitor_state(model: Any) -> dict[str, Any] | None:
    from stable_baselines3.common.vec_env import VecMonitor

    monitor = model.get_env()
    if isinstance(monitor, VecMonitor):
        return {"returns": monitor.episode_returns.tolist(),
                "lengths": monitor.episode_lengths.tolist(), "count": int(monitor.episode_count)}
    return None


def save_dqn(model: Any, directory: Path) -> None:
    """Write an exact checkpoint of ``model`` (an SB3 DQN) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()}
    with atomic_path(directory / "policy.safetensors") as tmp:
        save_file(weights, str(tmp))
    buffer = io.BytesIO()
    torch.save(model.policy.optimizer.state_dict(), buffer)
    with atomic_path(directory / "optimizer.pt") as tmp:
        tmp.write_bytes(buffer.getvalue())
    rb = model.replay_buffer
    size = rb.buffer_size if rb.full else rb.pos
    arrays = {"observations": rb.observations[:size], "actions": rb.actions[:size],
              "rewards": rb.rewards[:size], "dones": rb.dones[:size], "timeouts": rb.timeouts[:size],
              "last_obs": np.asarray(model._last_obs),
              "last_episode_starts": np.asarray(model._last_episode_starts)}
    if not rb.optimize_memory_usage:
        arrays["next_observations"] = rb.next_observations[:size]
    with atomic_path(directory / "replay.npz") as tmp:
        with open(tmp, "wb") as file:
            np.savez(file, **arrays)
    with atomic_path(directory / "torch_rng.safetensors") as tmp:
        save_file({"cpu": torch.get_rng_state()}, str(tmp))
    np_state = np.random.get_state()
    python_state = random.getstate()
    env = _single_env(model)
    env_state = None
    if env is not None and hasattr(env.unwrapped, "get_state"):
        env_state = env_state_to_json(env.unwrapped.get_state())
    batched = _batched_env(model)
    write_json(directory / "state.json", {
        "counters": {name: getattr(model, name) for name in COUNTERS},
        "buffer": {"pos": int(rb.pos), "full": bool(rb.full)},
        "numpy_rng": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python_rng": [python_state[0], list(python_state[1]), python_state[2]],
        "action_space_rng": model.action_space.np_random.bit_generator.state,
        "env_state": env_state,
        "env_states": None if batched is None else [env_state_to_json(state)
                                                     for state in batched.get_states()],
        "monitor": _monitor_state(env),
        "vec_monitor": _vec_monitor_state(model),
    })


def _monitor_state(env: Any) -> dict[str, Any] | None:
    from stable_baselines3.common.monitor import Monitor

    if isinstance(env, Monitor):
        return {"rewards": [float(r) for r in env.rewards], "needs_reset": bool(env.needs_reset),
                "total_steps": int(env.total_steps)}
    return None


def load_dqn(model: Any, directory: Path) -> None:
    """Restore a checkpoint written by :func:`save_dqn` into a freshly built ``model``.

    Raises:
        ValueError: a file is missing or corrupt, or the networks do not match.
    """
    try:
        weights = load_file(str(directory / "policy.safetensors"))
        optimizer = torch.load(directory / "optimizer.pt", weights_only=True)
        state = json.loads((directory / "state.json").read_text())
        with np.load(directory / "replay.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        torch_rng = load_file(str(directory / "torch_rng.safetensors"))["cpu"]
    except Exception as error:  # safetensors, torch and numpy raise many types on bad bytes
        raise ValueError(f"checkpoint {directory} is missing or corrupt: {error}") from error
    try:
        model.policy.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"checkpoint {directory} does not fit this model (different env or "
                         f"network): {str(error).splitlines()[0]}") from error
    model.policy.optimizer.load_state_dict(optimizer)
    rb = model.replay_buffer
    size = len(arrays["actions"])
    if arrays["observations"].shape[1:] != rb.observations.shape[1:] or size > rb.buffer_size:
        raise ValueError(f"replay buffer in {directory} has observations "
                         f"{arrays['observations'].shape[1:]}, this model {rb.observations.shape[1:]}")
    for name in ("observations", "actions", "rewards", "dones", "timeouts", "next_observations"):
        if name in arrays:
            getattr(rb, name)[:size] = arrays[name]
    rb.pos, rb.full = state["buffer"]["pos"], state["buffer"]["full"]
    for name, value in state["counters"].items():
        setattr(model, name, value)
    fresh_observation = model.get_env().reset()  # envs refuse to step before a reset
    model._last_obs = arrays["last_obs"]
    model._last_episode_starts = arrays["last_episode_starts"]
    torch.set_rng_state(torch_rng)
    kind, keys, pos, has_gauss, cached = state["numpy_rng"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]
    if not _restore_envs(model, state):  # no simulator state: continue from fresh episodes
        model._last_obs = fresh_observation
        model._last_episode_starts = np.ones_like(model._last_episode_starts)


def _restore_envs(model: Any, state: dict[str, Any]) -> bool:
    """Put the training envs and their monitors back as saved; False when there was no
    simulator state to restore."""
    env, batched = _single_env(model), _batched_env(model)
    if env is not None and state["monitor"] is not None:
        env.rewards = list(state["monitor"]["rewards"])
        env.needs_reset = state["monitor"]["needs_reset"]
        env.total_steps = state["monitor"]["total_steps"]
    if state.get("vec_monitor") is not None:
        monitor = model.get_env()
        monitor.episode_returns = np.array(state["vec_monitor"]["returns"], dtype=np.float32)
        monitor.episode_lengths = np.array(state["vec_monitor"]["lengths"], dtype=np.int32)
        monitor.episode_count = state["vec_monitor"]["count"]
    if env is not None and state["env_state"] is not None:
        current = env.unwrapped.get_state()
        env.unwrapped.set_state(env_state_from_json(state["env_state"], type(current)))
        return True
    if batched is not None and state.get("env_states") is not None:
        kind = type(batched.get_states()[0])
        batched.set_states([env_state_from_json(saved, kind) for saved in state["env_states"]])
        return True
    return False
