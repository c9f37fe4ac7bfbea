"""The demo's report: ``report.md`` with its plots, and ``results.json`` with the same numbers.

Every figure comes from the rows measured in this run (:func:`rlgan.demo.evaluation.evaluate_demo`)
and from predictions made in this run; nothing is a stored constant.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.demo.evaluation import DRIVING, ROW_NAMES
from rlgan.demo.weights import DemoWeights
from rlgan.io import atomic_path, write_json
from rlgan.safety.evaluation import percent_with_error


def plot_rows(rows: list[dict[str, Any]], out: Path) -> Path:
    """Bar charts of unsafe events per 1000 steps and return, per map and row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = list(dict.fromkeys(row["map"] for row in rows))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(ROW_NAMES)
    positions = np.arange(len(maps))
    colours = {"agent": "tab:gray", "gan_shield": "tab:blue", "oracle_shield": "tab:green"}
    for column, (key, label) in enumerate((("unsafe_per_1000", "unsafe events / 1000 steps"),
                                           ("return", "mean episode return"))):
        axis = axes[column]
        for index, name in enumerate(ROW_NAMES):
            values = [next(row[key] for row in rows if row["map"] == m and row["name"] == name)
                      for m in maps]
            axis.bar(positions + (index - 1) * width, values, width, label=name,
                     color=colours[name])
        axis.set_xticks(positions, [f"{m}{' (trained)' if _trained(rows, m) else ' (unseen)'}"
                                    for m in maps])
        axis.set_ylabel(label)
    axes[0].legend()
    figure.suptitle("DQN agent alone, with the SAD-GAN shield and with the oracle shield")
    figure.tight_layout()
    with atomic_path(out) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)
    return out


def _trained(rows: list[dict[str, Any]], map_name: str) -> bool:
    return any(row["train_map"] for row in rows if row["map"] == map_name)


def prediction_samples(weights: DemoWeights, map_name: str, out: Path, states: int = 4,
                       seed: int = 0, device: str | torch.device = "cpu") -> Path:
    """A PNG grid: per row a state of the scripted driver's episode; columns frame t, then for
    every action the true next frame (the simulator restored and stepped) above the world
    model's prediction."""
    from PIL import Image

    from rlgan.make import make_env
    from rlgan.safety.predictor import load_predictor

    model = load_predictor(weights.shield.worldmodel, device)
    env = make_env(DRIVING, map=map_name)
    n_actions = int(env.action_space.n)
    observation, _ = env.reset(seed=seed)
    history = deque([observation] * model.history, maxlen=model.history)
    rows = []
    try:
        for step in range(1, 40 * states + 1):
            if step % 40 == 0:
                state = env.unwrapped.get_state()
                truth = []
                for action in range(n_actions):
                    env.unwrapped.set_state(state)
                    truth.append(env.step(action)[0])
                env.unwrapped.set_state(state)
                frames = np.repeat(np.stack(history)[None], n_actions, axis=0)
                predicted = model.predict(frames, np.arange(n_actions), 1,
                                          generator=torch.Generator().manual_seed(seed))[:, 0]
                columns = [np.concatenate([observation, np.zeros_like(observation)], axis=0)]
                columns += [np.concatenate([truth[a], predicted[a]], axis=0) for a in range(n_actions)]
                rows.append(np.concatenate([_pad(c) for c in columns], axis=1))
            observation, _, terminated, truncated, _ = env.step(env.unwrapped.scripted_action())
            history.append(observation)
            if terminated or truncated:
                observation, _ = env.reset(seed=seed + step)
                history = deque([observation] * model.history, maxlen=model.history)
    finally:
        env.close()
    grid = np.concatenate([_pad(row) for row in rows], axis=0)
    if grid.shape[2] == 1:
        grid = np.repeat(grid, 3, axis=2)
    grid = np.repeat(np.repeat(grid, 2, axis=0), 2, axis=1)
    with atomic_path(out) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return out


def _pad(image: np.ndarray) -> np.ndarray:
    """A 2-pixel white border around ``image`` (H, W, C)."""
    return np.pad(image, ((2, 2), (2, 2), (0, 0)), constant_values=255)


def removed_text(row: dict[str, Any]) -> str:
    """``"63% +- 8%"``: the fraction of the agent's unsafe events a shielded row removed
    (``"n/a"`` when the agent had none)."""
    return percent_with_error(row.get("removed"), row.get("removed_stderr"))


def write_report(out: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
                 files: dict[str, Path | None]) -> Path:
    """Write ``out/results.json`` and ``out/report.md``; return the report's path."""
    write_json(out / "results.json", {"settings": settings, "rows": rows,
                                      "files": {k: str(v) for k, v in files.items() if v}})
    lines = ["# rlgan demo: a DQN driver shielded by SAD-GAN", "",
             f"Agent: `{settings['weights']}/agent` (DQN). Shield: `{settings['weights']}/shield` "
             f"(`rlgan shield train`, its `settings.json` and `report.md` say how), trained on "
             f"the **{settings['train_map']}** map, searching {settings['depth']} level(s). "
             f"{settings['episodes']} episodes per row of at most {settings['max_steps']} steps, "
             f"each starting in a hazard (`hazard_start=1`: a car close ahead or beside the "
             f"bike), seeds {settings['seed']}.. in every row.", "",
             "| map | row | return | unsafe events | unsafe / 1000 steps | removed | "
             "interventions / 1000 | decision ms | steps |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        label = f"{row['map']} ({'trained' if row['train_map'] else 'unseen'})"
        removed = "" if row["name"] == "agent" else removed_text(row)
        lines.append(f"| {label} | {row['name']} | {row['return']:.1f} | {row['unsafe_events']} | "
                     f"{row['unsafe_per_1000']:.2f} | {removed} | "
                     f"{row['interventions_per_1000']:.1f} | {row['latency_ms']:.1f} | {row['steps']} |")
    lines += ["", "Removed: the fraction of the agent's unsafe events per step the shield removed, "
              "+- its standard error (paired bootstrap over episodes); n/a where the agent had no "
              "unsafe event to remove. Unsafe means a crash into "
              "a car or leaving the road (`info[\"unsafe\"]`); the episode ends there, so a "
              "shield that avoids it also drives further (higher return).", ""]
    if files.get("plot"):
        lines += [f"![unsafe events and return]({files['plot'].name})", ""]
    if files.get("predictions"):
        lines += ["## The world model's predictions", "",
                  "Each row is a state on the training map; first column frame t, then for "
                  "every action (left, right, up) the true next frame (top, the simulator restored "
                  "and stepped) above the generator's prediction (bottom).", "",
                  f"![predicted and true next frames]({files['predictions'].name})", ""]
    lines += ["## Files", ""]
    lines += [f"- {name}: `{path}`" for name, path in files.items() if path]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return report
