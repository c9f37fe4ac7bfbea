"""``rlgan shield train``: the whole learned-shield recipe as resumable stages.

:func:`train_shield` checks the env and the agent before anything is written, takes the
directory's lock (one writer at a time), writes ``settings.json`` and runs every stage of
:mod:`rlgan.pipeline.stages` that has not finished, recording each in ``progress.json``; a
finished stage's outputs are checked against their SHA-256 before a later stage reads them.
An interrupted run resumes after its last finished stage (``resume=True``; the collection and
the world model also carry on inside their stage); a finished run is refused unless
``overwrite=True``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from rlgan.io import DirectoryLock, clear_directory, written_entries
from rlgan.pipeline.report import write_report
from rlgan.pipeline.settings import SETTINGS_FILE, STAGES, ShieldSettings, load_settings, save_settings
from rlgan.pipeline.shield_dir import ShieldDir
from rlgan.pipeline.stages import STAGES as STAGE_FUNCTIONS

def check_target(settings: ShieldSettings) -> None:
    """Raise a clear error unless the env can be shielded by a learned shield and the agent
    can play it: a registered id, ``get_state``/``set_state``, pixel frames, discrete actions,
    and an agent run made on this env and observation shape.

    Raises:
        ValueError / FileNotFoundError: the first problem found, named.
    """
    from rlgan.make import make_env

    env = make_env(settings.env_id, **settings.env_kwargs)
    try:
        name = settings.env_id
        if not (hasattr(env.unwrapped, "get_state") and hasattr(env.unwrapped, "set_state")):
            raise ValueError(f"{name} cannot save and restore its state (no get_state()/set_state()); "
                             "the shield's records need every action's true outcome from the agent's states")
        space = env.observation_space
        if not (isinstance(space, gymnasium.spaces.Box) and space.dtype == np.uint8
                and len(space.shape) == 3 and space.shape[2] in (1, 3)
                and space.shape[0] % 16 == 0 and space.shape[1] % 16 == 0):
            raise ValueError(f"{name} observes {space}, not pixel frames: the world model needs "
                             "uint8 (H, W, C) images, C 1 or 3, H and W multiples of 16")
        if not isinstance(env.action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"{name} has actions {env.action_space}; the shield needs Discrete actions")
        _check_agent(settings.agent, settings.env_id, env)
    finally:
        env.close()


def _check_agent(agent: str, env_id: str, env: gymnasium.Env) -> None:
    """Raise unless ``agent`` (:func:`rlgan.safety.policies.lookup_policy`) can act in ``env``:
    ``random``, ``scripted`` where the env has a scripted policy, or a run of ``rlgan train`` on
    ``env_id`` whose spaces fit."""
    from rlgan.agents.training import Run
    from rlgan.safety.outcomes import BATCH_AGENTS
    from rlgan.safety.policies import check_scripted, lookup_policy

    if agent == "scripted":
        check_scripted(env, env.unwrapped)
    if agent not in BATCH_AGENTS and Path(agent).is_dir():
        trained_on = Run(agent).config()["env_id"]
        if trained_on != env_id:
            raise ValueError(f"agent {agent} was trained on {trained_on}, not {env_id}")
    lookup_policy(agent, env, BATCH_AGENTS)  # a run's observation and action spaces must fit


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key} ({a!r} there, {b!r} now)")
    return found


def _with_worldmodel_defaults(*settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The settings dicts, each world-model option one of them lacks set to its default.

    A run written before an option existed trained with the option's default, so resuming it
    with that default is no change of settings.
    """
    import dataclasses

    from rlgan.worldmodel.config import WorldModelConfig

    defaults = {f.name: f.default for f in dataclasses.fields(WorldModelConfig)
                if f.default is not dataclasses.MISSING}
    named = set().union(*(data["worldmodel"] for data in settings)) & set(defaults)
    return [{**data, "worldmodel": {**{key: defaults[key] for key in named}, **data["worldmodel"]}}
            for data in settings]


def _prepare(shield: ShieldDir, settings: ShieldSettings, resume: bool, overwrite: bool) -> None:
    """Start, resume or replace the run in the locked directory, or refuse (see the module)."""
    root = shield.root
    holds_run = (root / SETTINGS_FILE).is_file()
    if written_entries(root) and not holds_run:
        raise FileExistsError(f"{root} is not empty and holds no shield run; choose another directory")
    if overwrite:
        clear_directory(root)
    elif holds_run:
        finished = [stage for stage in STAGES if stage in shield.progress()]
        if len(finished) == len(STAGES):
            raise FileExistsError(f"{root} holds a finished shield; pass --overwrite to train it again")
        if not resume:
            raise FileExistsError(f"{root} holds an unfinished shield (finished: "
                                  f"{', '.join(finished) or 'none'}); pass --resume to go on or "
                                  "--overwrite to start again")
        different = _differences(*_with_worldmodel_defaults(load_settings(root).to_dict(), settings.to_dict()))
        if different:
            raise ValueError(f"cannot resume {root} with other settings: {'; '.join(different)}")
    elif resume:
        raise FileNotFoundError(f"nothing to resume: {root} holds no shield run")
    save_settings(root, settings)


def train_shield(out: str | Path, settings: ShieldSettings, resume: bool = False,
                 overwrite: bool = False, progress: bool = True) -> ShieldDir:
    """Run every unfinished stage of the recipe into ``out``; return the shield directory.

    Raises:
        ValueError / FileNotFoundError: a bad env, agent or stage output (nothing is written).
        FileExistsError: ``out`` holds a finished shield (without ``overwrite``), an unfinished
            one (without ``resume``) or something else.
        rlgan.io.DirectoryBusyError: another process is writing ``out``.
    """
    if resume and overwrite:
        raise ValueError("resume continues the run in the directory and overwrite deletes it: pass one")
    check_target(settings)
    shield = ShieldDir(out)
    with DirectoryLock(shield.root):
        _prepare(shield, settings, resume, overwrite)
        for stage in STAGES:
            if stage in shield.progress():
                shield.check_outputs(stage)
                continue
            if progress:
                print(f"[shield] stage {stage}", flush=True)
            began = time.perf_counter()
            summary, outputs = STAGE_FUNCTIONS[stage](shield, settings, progress)
            shield.finish_stage(stage, summary, outputs, time.perf_counter() - began)
        write_report(shield, settings)
    return shield


def resume_settings(out: str | Path) -> ShieldSettings:
    """The settings a run in ``out`` was started with (to resume it without restating them).

    Raises:
        FileNotFoundError: ``out`` holds no shield run.
    """
    if not (Path(out) / SETTINGS_FILE).is_file():
        raise FileNotFoundError(f"nothing to resume: {out} holds no shield run")
    return load_settings(out)
