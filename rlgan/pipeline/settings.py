"""Every setting of ``rlgan shield train``, its budgets, and the readable settings file.

A :class:`ShieldSettings` holds one section per stage, each a dataclass the stage's library
function takes, so ``DIR/settings.json`` lists every setting the stages used. The budgets
(:data:`BUDGETS`) size the stages; the per-env recipe (:data:`ENV_RECIPES`) holds the env
options each env family is collected and evaluated with. ``--set section.key=value`` overrides
any of them (:func:`apply_overrides`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlgan.config import build_config, check_choice, config_to_dict, did_you_mean
from rlgan.envs.registration import DRIVING_ID
from rlgan.io import read_json, write_json
from rlgan.safety.outcomes import OutcomeConfig
from rlgan.safety.training import ClassifierConfig
from rlgan.worldmodel.config import EARLIER_VALUES, FRAME_OPTIONS, WorldModelConfig

SETTINGS_FILE = "settings.json"
SETTINGS_VERSION = 1
STAGES = ("collect", "worldmodel", "classifier", "calibrate", "evaluate")


@dataclass(frozen=True)
class CollectSettings:
    """Outcome records of the agent's near-unsafe states (:mod:`rlgan.safety.outcomes`).

    Attributes:
        outcomes: the collection's settings (episodes, exploration, doom horizon, ...).
        env_kwargs: env options used only while collecting, on top of the shield's env options
            (e.g. ``show_unsafe`` for the driving env, so a crash is visible in the frame the
            world model learns to predict).
        variants: env options that take turns by shard (shard k adds ``variants[k % len]``),
            e.g. random palettes of the driving map; empty for none.
    """

    outcomes: OutcomeConfig = OutcomeConfig()
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    variants: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CalibrateSettings:
    """The choice of search depth and threshold on held-out records (:mod:`.calibration`).

    Attributes:
        depths: search depths tried (each with every threshold).
        thresholds: P(unsafe) thresholds tried.
        intervention_cost: unsafe events one needless intervention is worth; the chosen
            (depth, threshold) minimises ``unsafe + intervention_cost * interventions`` per step.
        max_states: most held-out states searched (the first ones of the held-out episodes).
    """

    depths: tuple[int, ...] = (1, 2, 3)
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    intervention_cost: float = 0.05
    max_states: int = 2000

    def __post_init__(self) -> None:
        if not self.depths or any(not 1 <= depth <= 8 for depth in self.depths):
            raise ValueError(f"depths must be in 1..8, got {self.depths!r}")
        if not self.thresholds or any(not 0.0 < t < 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be in (0, 1), got {self.thresholds!r}")
        if self.intervention_cost < 0:
            raise ValueError(f"intervention_cost must be >= 0, got {self.intervention_cost!r}")
        if self.max_states < 1:
            raise ValueError(f"max_states must be >= 1, got {self.max_states!r}")


@dataclass(frozen=True)
class EvaluateSettings:
    """The closed-loop comparison of ``rlgan shield eval`` on fresh episodes.

    Attributes:
        episodes: episodes per row (every row drives the same seeds).
        seed: episode e resets with ``seed + e``; far from the collection's seeds.
        env_kwargs: env options of the evaluation on top of the shield's env options.
        depths: the learned shield's rows, one per search depth (each at its calibrated
            threshold), so the depths are compared on the same episodes.
        probe: also search every step in the true simulator, for the false-alarm and miss
            columns (slower).
    """

    episodes: int = 20
    seed: int = 1_000_000
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    depths: tuple[int, ...] = (1, 2, 3)
    probe: bool = True

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes!r}")
        if not self.depths or any(not 1 <= depth <= 8 for depth in self.depths):
            raise ValueError(f"depths must be in 1..8, got {self.depths!r}")


@dataclass(frozen=True)
class ShieldSettings:
    """Everything ``rlgan shield train`` does, in one place (saved as ``DIR/settings.json``).

    Attributes:
        env_id: the env to shield (it must save and restore its state and observe pixels).
        env_kwargs: its options, used by every stage.
        agent: the policy to shield: ``scripted``, ``random`` or a run directory of
            ``rlgan train``.
        budget: the budget the stage sizes came from (``tiny``, ``demo`` or ``full``).
        seed: seeds the world model, the classifier and the split of held-out episodes.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``.
        collect, worldmodel, classifier, calibrate, evaluate: the stages' settings;
            ``worldmodel`` holds :class:`rlgan.worldmodel.config.WorldModelConfig` options
            (frame size and actions come from the records).
    """

    env_id: str
    env_kwargs: dict[str, Any]
    agent: str
    budget: str
    seed: int = 0
    device: str = "auto"
    collect: CollectSettings = CollectSettings()
    worldmodel: dict[str, Any] = field(default_factory=dict)
    classifier: ClassifierConfig = ClassifierConfig()
    calibrate: CalibrateSettings = CalibrateSettings()
    evaluate: EvaluateSettings = EvaluateSettings()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShieldSettings:
        """Inverse of :meth:`to_dict`.

        Raises:
            TypeError / ValueError: unknown keys or bad values (named).
        """
        data = dict(data)
        _check_keys(cls, data, "settings")
        collect = dict(data.pop("collect", {}))
        _check_keys(CollectSettings, collect, "collect")
        sections = {
            "collect": CollectSettings(outcomes=_build(OutcomeConfig, collect.get("outcomes", {}), "collect.outcomes"),
                                       env_kwargs=dict(collect.get("env_kwargs", {})),
                                       variants=tuple(dict(v) for v in collect.get("variants", ()))),
            "classifier": _build(ClassifierConfig, data.pop("classifier", {}), "classifier"),
            "calibrate": _build(CalibrateSettings, data.pop("calibrate", {}), "calibrate"),
            "evaluate": _build(EvaluateSettings, data.pop("evaluate", {}), "evaluate"),
        }
        return cls(**data, **sections)


def _check_keys(cls: type, data: dict[str, Any], where: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise TypeError(f"{where} has no setting {key!r}.{did_you_mean(key, names)} "
                            f"Valid: {', '.join(names)}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls`` from JSON values: names and types checked, lists read back as tuples."""
    _check_keys(cls, values, where)
    tuples = {f.name for f in dataclasses.fields(cls) if str(f.type).startswith("tuple")}
    return build_config(cls, {key: tuple(value) if key in tuples else value
                              for key, value in values.items()})


@dataclass(frozen=True)
class Budget:
    """Sizes of the stages. ``tiny`` checks the pipeline end to end (tests, under 2 minutes),
    ``demo`` trains the demo's bundled shield (about 20 minutes on 2 CPU cores), ``full``
    gives the best figures (hours on 2 CPU cores; its wall time is in ``report.md``).

    Attributes:
        episodes: episodes of the agent collected (rounded up to ``num_envs``).
        num_envs: episodes collected at once.
        worldmodel_steps: generator updates.
        classifier_steps: classifier optimiser steps.
        max_generated: most generated pairs the classifier trains on.
        calibrate_states: most held-out states the calibration searches.
        eval_episodes: episodes per row of the evaluation.
        eval_probe: search every evaluation step in the true simulator too.
    """

    episodes: int
    num_envs: int
    worldmodel_steps: int
    classifier_steps: int
    max_generated: int
    calibrate_states: int
    eval_episodes: int
    eval_probe: bool


BUDGETS: dict[str, Budget] = {
    "tiny": Budget(episodes=16, num_envs=8, worldmodel_steps=4, classifier_steps=4,
                   max_generated=64, calibrate_states=16, eval_episodes=1, eval_probe=True),
    "demo": Budget(episodes=1536, num_envs=64, worldmodel_steps=4000, classifier_steps=1500,
                   max_generated=4096, calibrate_states=600, eval_episodes=200, eval_probe=False),
    "full": Budget(episodes=6400, num_envs=64, worldmodel_steps=12000, classifier_steps=5000,
                   max_generated=16384, calibrate_states=3000, eval_episodes=200, eval_probe=True),
}


@dataclass(frozen=True)
class EnvRecipe:
    """What an env family needs beyond its defaults.

    Attributes:
        collect_env_kwargs: env options while collecting records, every budget.
        collect_budget_env_kwargs: per budget, env options while collecting on top of those.
        collect_variants: env options that take turns by shard while collecting.
        collect_budget_variants: per budget, variants in place of ``collect_variants``.
        eval_env_kwargs: per budget, env options of the evaluation (e.g. short episodes for
            the tiny budget).
    """

    collect_env_kwargs: dict[str, Any] = field(default_factory=dict)
    collect_budget_env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    collect_variants: tuple[dict[str, Any], ...] = ()
    collect_budget_variants: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    eval_env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)


def palette_variants(palettes: int = 34, own_colours_every: int = 3) -> tuple[dict[str, Any], ...]:
    """Driving palettes by shard: every ``own_colours_every``-th shard in the map's own colours
    (``palette_seed`` None), the others in ``palettes`` random ones, each once. With 3:
    None, 0, 1, None, 2, 3, ... (a third of the records in the map's own colours); with 2:
    None, 0, None, 1, ... (half)."""
    if own_colours_every < 2:
        raise ValueError(f"own_colours_every must be >= 2, got {own_colours_every!r}")
    seeds = iter(range(palettes))
    shards = palettes * own_colours_every // (own_colours_every - 1)
    return tuple({"palette_seed": None if index % own_colours_every == 0 else next(seeds)}
                 for index in range(shards))


#: Env families the recipe was measured on; other envs use ``EnvRecipe()``.
ENV_RECIPES: dict[str, EnvRecipe] = {
    # A crash shows as a yellow burst in the frame it happens in (64x64 shows a car's
    # contact as a pixel or two), so the world model can paint it and the classifier see it.
    DRIVING_ID: EnvRecipe(
        collect_env_kwargs={"show_unsafe": True},
        # The small budgets collect half their episodes from hazard starts (a car close ahead
        # or beside), 200 steps long: the states where a shield must act, many per CPU second,
        # as in the demo's hazard episodes (docs/findings.md). The full budget records whole
        # episodes of ordinary driving, the states its evaluation meets.
        collect_budget_env_kwargs={"tiny": {"hazard_start": 0.5, "max_steps": 200},
                                   "demo": {"hazard_start": 0.5, "max_steps": 200}},
        # Random palettes of the map (domain randomisation) teach the models the road, not
        # one map's colours: what carries the shield to a map it never saw.
        collect_variants=palette_variants(),
        # The full budget keeps half of its (twice as many) records in the map's own colours:
        # with a third, the shield removed 73% on the trained map; with all, 40% on an unseen
        # one (docs/findings.md).
        collect_budget_variants={"full": palette_variants(own_colours_every=2)},
        eval_env_kwargs={"tiny": {"max_steps": 20},
                         # Episodes that start in a hazard (a car close ahead or beside),
                         # where most unsafe events come within a few seconds: many events
                         # from few steps.
                         "demo": {"hazard_start": 1.0, "max_steps": 30}}),
}

#: The world model's recipe on top of WorldModelConfig's defaults (which are the rest of it):
#: an eighth of every batch from unsafe transitions, which are rare.
WORLDMODEL_RECIPE: dict[str, Any] = {"unsafe_fraction": 0.125}


def worldmodel_settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """Every :class:`WorldModelConfig` option with ``overrides``, except those the records
    give (frame size, channels, actions)."""
    config = config_to_dict(build_config(WorldModelConfig, overrides))
    return {key: value for key, value in config.items() if key not in FRAME_OPTIONS}


def default_settings(env_id: str, env_kwargs: dict[str, Any], agent: str, budget: str = "demo",
                     seed: int = 0, device: str = "auto") -> ShieldSettings:
    """The recipe's settings for ``env_id`` sized by ``budget``.

    Raises:
        ValueError: an unknown budget.
    """
    check_choice("budget", budget, BUDGETS)
    size = BUDGETS[budget]
    recipe = ENV_RECIPES.get(env_id, EnvRecipe())
    outcomes = OutcomeConfig(episodes=size.episodes, num_envs=size.num_envs, epsilon=0.05,
                             safe_fraction=0.02, seed=seed)
    return ShieldSettings(
        env_id=env_id, env_kwargs=dict(env_kwargs), agent=str(agent), budget=budget, seed=seed,
        device=device,
        collect=CollectSettings(outcomes=outcomes, env_kwargs={**recipe.collect_env_kwargs,
                                                             **recipe.collect_budget_env_kwargs.get(budget, {})},
                                variants=recipe.collect_budget_variants.get(budget, recipe.collect_variants)),
        worldmodel=worldmodel_settings({**WORLDMODEL_RECIPE, "steps": size.worldmodel_steps,
                                        "seed": seed,
                                        "checkpoint_every": max(1, min(500, size.worldmodel_steps))}),
        classifier=ClassifierConfig(steps=size.classifier_steps, max_generated=size.max_generated,
                                    seed=seed, checkpoint_every=max(1, min(500, size.classifier_steps))),
        calibrate=CalibrateSettings(max_states=size.calibrate_states),
        evaluate=EvaluateSettings(episodes=size.eval_episodes, probe=size.eval_probe,
                                  env_kwargs=dict(recipe.eval_env_kwargs.get(budget, {}))),
    )


#: Sections whose keys are free (env options, world-model options): checked by their readers.
FREE_SECTIONS = {("env_kwargs",), ("worldmodel",), ("collect", "env_kwargs"), ("evaluate", "env_kwargs")}


def apply_overrides(settings: ShieldSettings, overrides: dict[str, Any]) -> ShieldSettings:
    """``settings`` with ``{"section.key": value}`` overrides (``collect.outcomes.epsilon``,
    ``classifier.steps``, ``worldmodel.base_width``, ``evaluate.episodes``, ``seed``...).

    Raises:
        TypeError: a key names no setting (with the closest valid one).
        ValueError: a value out of its range.
    """
    data = settings.to_dict()
    for dotted, value in overrides.items():
        *path, last = dotted.split(".")
        node = data
        for depth, part in enumerate(path):
            sections = [key for key, item in node.items() if isinstance(item, dict)]
            if part not in sections:
                raise TypeError(f"no settings section {'.'.join(path[:depth + 1])!r}."
                                f"{did_you_mean(part, sections)} Sections: {', '.join(sections)}")
            node = node[part]
        if tuple(path) not in FREE_SECTIONS and (last not in node or isinstance(node[last], dict)):
            raise TypeError(f"no setting {dotted!r}.{did_you_mean(last, list(node))} "
                            f"Settings here: {', '.join(node)}")
        node[last] = value
    result = ShieldSettings.from_dict(data)
    build_config(WorldModelConfig, result.worldmodel)  # its names and values, checked now
    return result


def save_settings(directory: str | Path, settings: ShieldSettings) -> None:
    """Write ``DIR/settings.json`` atomically."""
    write_json(Path(directory) / SETTINGS_FILE, {"version": SETTINGS_VERSION, **settings.to_dict()})


def load_settings(directory: str | Path) -> ShieldSettings:
    """Read ``DIR/settings.json``.

    Raises:
        FileNotFoundError / ValueError / TypeError: missing, corrupt or unknown settings.
    """
    data = read_json(Path(directory) / SETTINGS_FILE, "shield settings")
    if not isinstance(data, dict) or data.pop("version", None) != SETTINGS_VERSION:
        raise ValueError(f"{Path(directory) / SETTINGS_FILE} is not a version-{SETTINGS_VERSION} "
                         "settings file of rlgan shield train")
    if isinstance(data.get("worldmodel"), dict):
        data["worldmodel"] = {**EARLIER_VALUES, **data["worldmodel"]}
    return ShieldSettings.from_dict(data)
