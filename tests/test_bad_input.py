"""A bad-input sweep of the whole command line: every command, given a missing path, the wrong
kind of file or folder, a run or dataset of another env or frame size, a zero or negative
size, an unknown choice or an output it cannot write, exits with code 2 and one line on
stderr that names the problem, without a traceback and without losing anything written.

Paths in the cases: ``{data}`` a driving dataset (32x32), ``{data16}`` one at 16x16, ``{wm}``
a world-model run and ``{safety}`` a safety run on ``{data}``, ``{lake}`` a Q-learning run on
FrozenLake, ``{outcomes}`` outcome records, ``{weights}`` the marker files of demo weights,
``{file}`` a regular file, ``{missing}`` a path that does not exist, ``{tmp}`` the case's own
empty directory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rlgan.cli import main
from rlgan.io import DirectoryLock

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DRIVING = "rlgan/Driving-v0"
NP = "--no-progress"

#: (argv, text the error line must contain)
CASES = [
    # demo
    (["demo", "--episodes", "0", "--out", "{tmp}/d"], "--episodes and --max-steps must be >= 1"),
    (["demo", "--max-steps", "-1", "--out", "{tmp}/d"], "--episodes and --max-steps must be >= 1"),
    (["demo", "--show-steps", "-3", "--out", "{tmp}/d"], "--show-steps >= 0"),
    (["demo", "--display", "tv"], "invalid choice: 'tv'"),
    (["demo", "--budget", "huge"], "invalid choice: 'huge'"),
    (["demo", "--maps", "mars", "--out", "{tmp}/d"], "unknown map 'mars'"),
    (["demo", "--weights", "{missing}", "--out", "{tmp}/d"], "{missing}"),
    (["demo", "--weights", "{data}", "--out", "{tmp}/d"], "{data}"),
    (["demo", "--out", "{file}/demo"], "{file}"),
    (["demo", "--weights", "{weights}", "--export-weights", "{data}", "--out", "{tmp}/d"],
     "holds no demo weights"),
    # play
    (["play", "pong"], "invalid choice: 'pong'"),
    (["play", "driving", "--steps", "0"], "--steps must be >= 1, got 0"),
    (["play", "driving", "--map", "mars"], "unknown map 'mars'"),
    (["play", "driving", "--record", "{data}", "--steps", "2"], "already holds a dataset"),
    (["play", "driving", "--record", "{wm}", "--steps", "2"], "holds no dataset"),
    (["play", "driving", "--record", "{file}/x", "--steps", "2"], "{file}"),
    (["play", "driving", "--shield", "{missing}", "--steps", "2"], "{missing}"),
    (["play", "driving", "--shield", "{data}", "--steps", "2"], "{data}"),
    # record
    (["record", "--steps", "0", "--out", "{tmp}/r"], "--steps must be >= 1, got 0"),
    (["record", "--steps", "-4", "--out", "{tmp}/r"], "--steps must be >= 1, got -4"),
    (["record", "--shard-size", "0", "--out", "{tmp}/r"], "shard_size must be >= 1, got 0"),
    (["record", "--epsilon", "1.5", "--out", "{tmp}/r"], "epsilon must be in [0, 1], got 1.5"),
    (["record", "--agent", "greedy", "--out", "{tmp}/r"], "unknown agent 'greedy'"),
    (["record", "--agent", "{missing}", "--out", "{tmp}/r"], "{missing}"),
    (["record", "--agent", "{data}", "--out", "{tmp}/r"], "run config not found"),
    (["record", "--agent", "{lake}", "--out", "{tmp}/r"], "was trained on"),
    (["record", "--env", "rlgan/Drving-v0", "--out", "{tmp}/r"], "unknown environment id"),
    (["record", "--out", "{file}/r", "--steps", "2"], "{file}"),
    (["record", "--out", "{data}", "--steps", "2"], "already holds a dataset"),
    (["record", "--out", "{wm}", "--steps", "2"], "holds no dataset"),
    (["record", "--out", "{data}", "--resume", "--steps", "2"], "cannot resume"),
    (["record", "--out", "{data}", "--resume", "--steps", "2", "--env-kwargs", "obs_height=16",
      "obs_width=16", "max_steps=30", "hazard_start=1.0"], "cannot resume"),
    (["record", "--out", "{tmp}/r", "--steps", "2", "--video", "{file}/v.gif"], "{file}"),
    (["record", "--out", "{tmp}/r", "--steps", "2", "--video", "{tmp}/v.avi"],
     "unsupported video file 'v.avi'"),
    # train
    (["train", "--algo", "dqn", "--env", DRIVING, "--steps", "0", "--run", "{tmp}/t"],
     "steps, eval_freq, eval_episodes and n_envs must be >= 1"),
    (["train", "--algo", "dqn", "--env", DRIVING, "--steps", "-10", "--run", "{tmp}/t"],
     "steps, eval_freq, eval_episodes and n_envs must be >= 1"),
    (["train", "--algo", "dqn", "--env", DRIVING, "--steps", "10", "--eval-freq", "0",
      "--run", "{tmp}/t"], "must be >= 1"),
    (["train", "--algo", "dqn", "--env", DRIVING, "--steps", "10", "--n-envs", "-1",
      "--run", "{tmp}/t"], "must be >= 1"),
    (["train", "--algo", "ppo", "--env", DRIVING, "--steps", "10", "--run", "{tmp}/t"],
     "--algo ppo trains hide-and-seek teams; pass --teams hider,seeker"),
    (["train", "--teams", "hider,seeker", "--env", DRIVING, "--steps", "10", "--run", "{tmp}/t"],
     "teams train on rlgan/HideAndSeek-v0 only, got rlgan/Driving-v0"),
    (["train", "--algo", "dqn", "--env", "rlgan/Drving-v0", "--steps", "10", "--run", "{tmp}/t"],
     "unknown environment id"),
    (["train", "--algo", "dqn", "--env", DRIVING, "--steps", "10", "--hp", "gama=0.9",
      "--run", "{tmp}/t"], "gama"),
    (["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "--steps", "10",
      "--run", "{file}/t"], "{file}"),
    (["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "--steps", "10",
      "--run", "{data}"], "holds no run"),
    (["train", "--algo", "qlearning", "--env", "FrozenLake-v1", "--steps", "10",
      "--run", "{lake}"], "already holds a run"),
    (["train", "--resume", "--run", "{missing}"], "run config not found"),
    (["train", "--resume", "--run", "{data}"], "run config not found"),
    (["train", "--resume", "--run", "{safety}"], "not a run of rlgan train"),
    (["train", "--run", "{tmp}/t"], "a new run needs --algo, --env and --steps"),
    # eval
    (["eval", "--agent", "{missing}"], "run config not found"),
    (["eval", "--agent", "{data}"], "run config not found"),
    (["eval", "--agent", "{wm}"], "run config not found"),
    (["eval", "--agent", "{lake}", "--env", DRIVING], "was trained on"),
    (["eval", "--agent", "{lake}", "--episodes", "0"], "episodes must be >= 1, got 0"),
    (["eval", "--agent", "random", "--env", DRIVING, "--episodes", "-1"],
     "episodes must be >= 1, got -1"),
    (["eval", "--agent", "greedy", "--env", DRIVING], "run config not found"),
    (["eval", "--agent", "random", "--env", DRIVING, "--render", "tv"], "invalid choice: 'tv'"),
    (["eval", "--agent", "random", "--env", DRIVING, "--episodes", "1", "--video",
      "{file}/v.gif"], "{file}"),
    (["eval", "--agent", "random"], "--agent needs --env"),
    # plot
    (["plot", "--run", "{missing}"], "{missing}"),
    (["plot", "--run", "{data}"], "{data}"),
    (["plot", "--run", "{lake}", "--out", "{file}/curve.png"], "{file}"),
    (["plot", "--worldmodel-eval", "{missing}"], "{missing}"),
    (["plot", "--worldmodel-eval", "{file}"], "{file}"),
    (["plot", "--run", "{lake}", "--worldmodel-eval", "{file}"], "not allowed with argument"),
    # worldmodel train
    (["worldmodel", "train", "--data", "{missing}", "--run", "{tmp}/w", NP], "not found"),
    (["worldmodel", "train", "--data", "{lake}", "--run", "{tmp}/w", NP], "{lake}"),
    (["worldmodel", "train", "--data", "{wm}", "--run", "{tmp}/w", NP], "{wm}"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--steps", "0", NP],
     "steps"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--batch-size", "-2", NP],
     "batch_size"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--history", "0", NP],
     "history"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--discriminator",
      "pixel", NP], "invalid choice: 'pixel'"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--set", "z_dimm=2", NP],
     "z_dimm"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{file}/w", NP], "{file}"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{data}", NP],
     "is not a world-model run"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{data}", "--overwrite", NP],
     "is not a world-model run"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{wm}", NP],
     "already holds a world-model run"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--resume", NP],
     "is not a world-model run"),
    (["worldmodel", "train", "--data", "{data16}", "--run", "{wm}", "--resume", NP],
     "(16, 16, 3)"),
    (["worldmodel", "train", "--data", "{data16}", "--run", "{tmp}/w", "--init-from", "{wm}",
      NP], "(16, 16, 3)"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--init-from",
      "{missing}", NP], "{missing}"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--model", "vae",
      "--lambda-adv", "0.1", NP], "apply to the GAN only"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--model", "diffusion", NP],
     "invalid choice: 'diffusion'"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--lambda-adv", "0", "--set",
      "feature_matching=1", NP], "compares the discriminator's features"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--model", "vae", "--set",
      "feature_matching=1", NP], "feature_matching apply to the GAN only"),
    (["worldmodel", "train", "--data", "{data}", "--run", "{tmp}/w", "--discriminator", "sequence",
      NP], "it needs unroll >= 2"),
    # worldmodel eval
    (["worldmodel", "eval", "--run", "{missing}", "--data", "{data}"], "{missing}"),
    (["worldmodel", "eval", "--run", "{data}", "--data", "{data}"], "{data}"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{missing}"], "{missing}"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{wm}"], "{wm}"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data16}"], "(16, 16, 3)"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--mirror-average"],
     "--mirror-average scores the classifier's foresight: give --classifier RUN"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--samples", "0"],
     "samples"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--states", "-1"], "states"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--depth", "0"], "depth"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--baseline-run",
      "{missing}"], "{missing}"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--env", "FrozenLake-v1"],
     "FrozenLake-v1"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--rollouts", "0"], "rollouts"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--classifier", "{missing}"],
     "{missing}"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--classifier", "{wm}"], "{wm}"),
    (["worldmodel", "eval", "--run", "{wm}", "--data", "{data}", "--classifier", "{safety}",
      "--foresight-starts", "0"], "--foresight-starts must be >= 1"),
    # worldmodel dream
    (["worldmodel", "dream", "--run", "{missing}"], "{missing}"),
    (["worldmodel", "dream", "--run", "{data}"], "{data}"),
    (["worldmodel", "dream", "--run", "{wm}", "--steps", "0", "--agent", "random"], "steps"),
    (["worldmodel", "dream", "--run", "{wm}", "--scale", "0", "--agent", "random"], "scale"),
    (["worldmodel", "dream", "--run", "{wm}", "--sync-every", "-1", "--agent", "random"],
     "sync"),
    (["worldmodel", "dream", "--run", "{wm}", "--agent", "greedy"], "unknown agent 'greedy'"),
    (["worldmodel", "dream", "--run", "{wm}", "--env", "FrozenLake-v1", "--agent", "random",
      "--steps", "2"], "FrozenLake-v1"),
    (["worldmodel", "dream", "--run", "{wm}", "--agent", "random", "--steps", "2",
      "--video", "{file}/v.gif"], "{file}"),
    # safety collect
    (["safety", "collect", "--agent", "{missing}", "--out", "{tmp}/c", NP], "{missing}"),
    (["safety", "collect", "--agent", "{data}", "--out", "{tmp}/c", NP], "run config not found"),
    (["safety", "collect", "--agent", "{lake}", "--out", "{tmp}/c", NP], "was trained on"),
    (["safety", "collect", "--episodes", "0", "--out", "{tmp}/c", NP], "episodes"),
    (["safety", "collect", "--num-envs", "-1", "--out", "{tmp}/c", NP], "num_envs"),
    (["safety", "collect", "--doom-horizon", "9", "--out", "{tmp}/c", NP], "doom"),
    (["safety", "collect", "--safe-fraction", "2", "--out", "{tmp}/c", NP], "safe_fraction"),
    (["safety", "collect", "--map", "mars", "--out", "{tmp}/c", NP], "unknown map 'mars'"),
    (["safety", "collect", "--env", "FrozenLake-v1", "--agent", "random", "--out", "{tmp}/c",
      NP], "get_state"),
    (["safety", "collect", "--out", "{file}/c", "--episodes", "1", "--num-envs", "1", NP],
     "{file}"),
    (["safety", "collect", "--out", "{data}", "--episodes", "1", "--num-envs", "1", NP],
     "holds no outcome records"),
    (["safety", "collect", "--out", "{outcomes}", "--episodes", "1", "--num-envs", "1", NP],
     "already holds outcome records"),
    (["safety", "collect", "--out", "{outcomes}", "--resume", "--episodes", "4", "--num-envs",
      "1", NP], "cannot resume"),
    # safety train
    (["safety", "train", "--data", "{missing}", "--run", "{tmp}/s", NP], "not found"),
    (["safety", "train", "--data", "{lake}", "--run", "{tmp}/s", NP], "{lake}"),
    (["safety", "train", "--data", "{data}", "--run", "{data}", NP], "holds no safety run"),
    (["safety", "train", "--data", "{data}", "--run", "{lake}", "--overwrite", NP],
     "is not a safety run"),
    (["safety", "train", "--data", "{data}", "--run", "{safety}", NP],
     "already holds a safety run"),
    (["safety", "train", "--data", "{data}", "--run", "{tmp}/s", "--steps", "0", NP], "steps"),
    (["safety", "train", "--data", "{data}", "--run", "{tmp}/s", "--batch-size", "-1", NP],
     "batch_size"),
    (["safety", "train", "--data", "{data}", "--run", "{tmp}/s", "--threshold", "2", NP],
     "threshold"),
    (["safety", "train", "--data", "{data}", "--run", "{tmp}/s", "--set", "flipp=true", NP],
     "flipp"),
    (["safety", "train", "--data", "{data}", "--run", "{tmp}/s", "--worldmodel", "{missing}",
      NP], "{missing}"),
    (["safety", "train", "--data", "{data}", "--run", "{tmp}/s", "--worldmodel", "{data}",
      NP], "{data}"),
    (["safety", "train", "--data", "{data16}", "--run", "{tmp}/s", "--worldmodel", "{wm}",
      "--set", "generated_fraction=0.5", NP], "(16, 16, 3)"),
    (["safety", "train", "--data", "{data}", "--run", "{file}/s", NP], "{file}"),
    # safety eval
    (["safety", "eval", "--run", "{missing}", "--data", "{data}"], "{missing}"),
    (["safety", "eval", "--run", "{wm}", "--data", "{data}"], "{wm}"),
    (["safety", "eval", "--run", "{safety}", "--data", "{missing}"], "{missing}"),
    (["safety", "eval", "--run", "{safety}", "--data", "{safety}"], "{safety}"),
    (["safety", "eval", "--run", "{safety}", "--data", "{data16}"], "(16, 16, 3)"),
    (["safety", "eval", "--run", "{safety}", "--data", "{data}", "--threshold", "2"],
     "threshold must be in [0, 1], got 2.0"),
    (["safety", "eval", "--run", "{safety}", "--data", "{data}", "--max-generated", "0",
      "--worldmodel", "{wm}"], "max"),
    (["safety", "eval", "--run", "{safety}", "--data", "{data}", "--worldmodel", "{data}"],
     "{data}"),
    # shield train
    (["shield", "train", "--env", "rlgan/Drving-v0", "--out", "{tmp}/sh", NP],
     "unknown environment id"),
    (["shield", "train", "--env", DRIVING, "--agent", "{missing}", "--out", "{tmp}/sh", NP],
     "{missing}"),
    (["shield", "train", "--env", DRIVING, "--agent", "{lake}", "--out", "{tmp}/sh", NP],
     "trained on FrozenLake-v1"),
    (["shield", "train", "--env", "FrozenLake-v1", "--agent", "random", "--out", "{tmp}/sh",
      NP], "FrozenLake-v1"),
    (["shield", "train", "--env", DRIVING, "--budget", "huge", "--out", "{tmp}/sh"],
     "invalid choice: 'huge'"),
    (["shield", "train", "--env", DRIVING, "--set", "collect.nope=1", "--out", "{tmp}/sh", NP],
     "nope"),
    (["shield", "train", "--env", DRIVING, "--set", "evaluate.episodes=0", "--out", "{tmp}/sh",
      NP], "episodes"),
    (["shield", "train", "--env", DRIVING, "--out", "{file}/sh", NP], "{file}"),
    (["shield", "train", "--env", DRIVING, "--out", "{data}", NP], "holds no shield run"),
    (["shield", "train", "--env", DRIVING, "--out", "{data}", "--overwrite", NP],
     "holds no shield run"),
    (["shield", "train", "--out", "{tmp}/sh", "--resume", NP], "{tmp}/sh"),
    (["shield", "train", "--out", "{tmp}/sh", NP], "--env is required"),
    # shield eval
    (["shield", "eval", "--shield", "{missing}"], "{missing}"),
    (["shield", "eval", "--shield", "{data}"], "{data}"),
    (["shield", "eval", "--shield", "{wm}"], "{wm}"),
    (["shield", "eval", "--shield", "{safety}", "--worldmodel", "{missing}"], "{missing}"),
    (["shield", "eval", "--shield", "oracle"], "--shield oracle needs --env"),
    (["shield", "eval", "--shield", "oracle", "--env", "FrozenLake-v1", "--agent", "random"],
     "get_state"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--agent", "{missing}"],
     "{missing}"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--agent", "{lake}"],
     "was trained on"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--episodes", "0"], "episodes"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--depth", "0"], "depth"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--depth", "99"], "depth"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--samples", "0"], "samples"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--node-budget", "-5"], "budget"),
    (["shield", "eval", "--shield", "oracle", "--env", DRIVING, "--strategy", "random"],
     "invalid choice: 'random'"),
    (["shield", "eval", "--shield", "{safety}", "--worldmodel", "{wm}", "--env", DRIVING,
      "--no-oracle", "--env-kwargs", "obs_height=16", "obs_width=16"], "(16, 16, 3)"),
]


@pytest.fixture(scope="module")
def paths(tiny_dataset, tiny_dataset_16, tiny_worldmodel_run, tiny_safety_run, tiny_agent_run,
          tiny_outcomes, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_input")
    (root / "file").write_text("a regular file\n")
    weights = root / "weights"  # what DemoWeights.check() looks for, nothing more
    for marker in ("agent/config.json", "shield/shield.json", "shield/worldmodel/run.json",
                   "shield/classifier/config.json"):
        (weights / marker).parent.mkdir(parents=True, exist_ok=True)
        (weights / marker).write_text("{}\n")
    return {"weights": weights, "data": tiny_dataset, "data16": tiny_dataset_16, "wm": tiny_worldmodel_run,
            "safety": tiny_safety_run, "lake": tiny_agent_run, "outcomes": tiny_outcomes,
            "file": root / "file", "missing": root / "missing"}


def snapshot(paths: dict[str, Path]) -> dict[str, str]:
    """SHA-256 of every file under the fixtures (lock files aside: a refused writer may take
    one)."""
    files = {}
    for root in paths.values():
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and path.name != DirectoryLock.FILE:
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def case_id(case: tuple[list[str], str]) -> str:
    argv = case[0]
    words = argv[:2] if argv[0] in ("worldmodel", "safety", "shield") else argv[:1]
    rest = [word.replace("{", "").replace("}", "").lstrip("-") for word in argv[len(words):]]
    return "-".join(words + [word for word in rest if word != NP.lstrip("-")])


@pytest.mark.parametrize("argv, message", CASES, ids=[case_id(case) for case in CASES])
def test_bad_input_is_one_line_exit_2_and_loses_nothing(argv, message, paths, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    names = {**{key: str(path) for key, path in paths.items()}, "tmp": str(tmp_path)}
    argv = [word.format(**names) for word in argv]
    message = message.format(**names)
    before = snapshot(paths)
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert code == 2, error
    assert error.count("\n") == 1 and ": error: " in error, error
    assert message in error, error
    assert snapshot(paths) == before
