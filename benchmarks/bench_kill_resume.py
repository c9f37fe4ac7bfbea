"""Kill and resume: ``rlgan train``, ``worldmodel train``, ``safety collect`` and ``record``
killed with SIGKILL at random points, then resumed with ``--resume``.

    python benchmarks/bench_kill_resume.py [--trials 20] [--jobs 2] [--seed 0] [--commands ...]

Each command runs once uninterrupted: its duration D (start-up included) and the time F its
first checkpoint or shard appeared. Then it runs ``--trials`` times, killed at a random point
and resumed to the end: half the kill points are drawn uniformly from [0, D] after the start
(many fall before anything is finished), half from [0, D - F] after the first checkpoint or
shard appears (all fall while finished work is on disk). A run counts as
resumed complete when the resumed run exits 0 and its output is whole and readable (every
checkpoint, shard and checksum) and holds at least what was finished when it was killed; it
counts as lost otherwise. When the kill came before anything resumable was written (``--resume``
answers that there is nothing to resume), the original command is run again, as a user would:
those runs are counted apart ("started again"). Exits 1 when any run is lost.

The tests (tests/test_kill_resume.py) use :func:`trial` with a kill shortly after a checkpoint
or shard file appears.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common import machine, table

TINY_DRIVING = ["--env", "rlgan/Driving-v0", "--env-kwargs", "obs_height=32", "obs_width=32",
                "max_steps=30", "hazard_start=1.0"]


@dataclass(frozen=True)
class Command:
    """A command killed and resumed in a trial.

    Attributes:
        name: as in the table.
        argv: the arguments after ``rlgan`` of the first run, writing to ``out``, reading ``data``.
        resume_argv: those of the resumed run.
        finished: what of the output is finished (checkpoint step, shards, transitions); 0 for
            nothing. A complete resumed run must keep at least as much.
        check: ``None`` when the output of the whole (resumed) run is complete and readable,
            else what is wrong. Gets ``finished`` as it was right after the kill.
        progress_file: a file whose appearance means something resumable was finished (the
            tests kill shortly after it appears).
    """

    name: str
    argv: Callable[[Path, Path], list[str]]
    resume_argv: Callable[[Path, Path], list[str]]
    finished: Callable[[Path], int]
    check: Callable[[Path, int], str | None]
    progress_file: str


def _run_steps(out: Path) -> int:
    from rlgan.agents.training import Run

    run = Run(out)
    return int(run.last_checkpoint().name.split("_")[1]) if run.has_checkpoint() else 0


def _check_run(out: Path, before: int, steps: int = 3000, eval_freq: int = 500) -> str | None:
    from rlgan.agents.training import Run, load_trained

    run = Run(out)
    last = _run_steps(out)
    if last < steps:
        return f"last checkpoint at step {last}, not {steps}"
    evaluated = [int(row["step"]) for row in run.evaluations()]
    # one per eval_freq steps (DQN ends a chunk on its train_freq, so a few steps past it)
    if len(evaluated) != steps // eval_freq or evaluated != sorted(set(evaluated)) or evaluated[-1] != last:
        return f"evaluations at steps {evaluated}, the last checkpoint at {last}"
    load_trained(out)
    load_trained(out, which="last")
    return None


def _worldmodel_steps(out: Path) -> int:
    from rlgan.worldmodel.run import has_checkpoint, load_progress

    return int(load_progress(out)["step"]) if has_checkpoint(out) else 0


def _check_worldmodel(out: Path, before: int, steps: int = 60) -> str | None:
    from rlgan.worldmodel import WorldModel

    if _worldmodel_steps(out) != steps:
        return f"checkpoint at step {_worldmodel_steps(out)}, not {steps}"
    WorldModel.load(out, "cpu")
    return None


def _shards(out: Path) -> int:
    from rlgan.data.outcomes import load_outcome_metadata

    return len(load_outcome_metadata(out)["shards"]) if (out / "metadata.json").is_file() else 0


def _check_outcomes(out: Path, before: int, shards: int = 10) -> str | None:
    from rlgan.data.outcomes import load_outcomes

    if _shards(out) != shards:
        return f"{_shards(out)} shards, not {shards}"
    load_outcomes(out)  # every shard, checksums checked
    return None


def _transitions(out: Path) -> int:
    from rlgan.data import load_metadata

    return int(load_metadata(out)["transitions"]) if (out / "metadata.json").is_file() else 0


def _check_dataset(out: Path, before: int, resumed_steps: int = 200) -> str | None:
    from rlgan.data import TransitionDataset
    from rlgan.data.record import dataset_summary

    summary = dataset_summary(out)  # every shard, checksums checked
    if summary["transitions"] != before + resumed_steps:
        return f"{summary['transitions']} transitions, not {before} + {resumed_steps}"
    if len(TransitionDataset(out)) != summary["transitions"]:
        return "the dataset reads fewer transitions than its metadata lists"
    return None


def _train_argv(data: Path, out: Path) -> list[str]:
    return ["train", "--algo", "dqn", "--env", "CartPole-v1", "--steps", "3000", "--eval-freq",
            "500", "--eval-episodes", "2", "--hp", "learning_starts=200", "buffer_size=2000",
            "train_freq=4", "gradient_steps=1", "--device", "cpu", "--run", str(out),
            "--no-progress"]


def _worldmodel_argv(data: Path, out: Path) -> list[str]:
    return ["worldmodel", "train", "--data", str(data), "--run", str(out), "--steps", "60",
            "--batch-size", "8", "--device", "cpu", "--set", "base_width=8", "checkpoint_every=3",
            "log_every=3", "sample_every=6", "--no-progress"]


def _collect_argv(data: Path, out: Path) -> list[str]:
    return ["safety", "collect", *TINY_DRIVING, "--agent", "scripted", "--episodes", "10",
            "--num-envs", "1", "--doom-horizon", "0", "--safe-fraction", "0.2", "--out", str(out),
            "--no-progress"]


def _record_argv(data: Path, out: Path, steps: int = 1200) -> list[str]:
    return ["record", *TINY_DRIVING, "--agent", "random", "--steps", str(steps), "--shard-size",
            "20", "--out", str(out)]


COMMANDS = {
    "train": Command("rlgan train", _train_argv,
                     lambda data, out: ["train", "--resume", "--run", str(out), "--no-progress"],
                     _run_steps, _check_run, "checkpoints/last.json"),
    "worldmodel": Command("rlgan worldmodel train", _worldmodel_argv,
                          lambda data, out: [*_worldmodel_argv(data, out), "--resume"],
                          _worldmodel_steps, _check_worldmodel, "checkpoint/progress.json"),
    "collect": Command("rlgan safety collect", _collect_argv,
                       lambda data, out: [*_collect_argv(data, out), "--resume"],
                       _shards, _check_outcomes, "shard_00000.npz"),
    "record": Command("rlgan record", _record_argv,
                      lambda data, out: [*_record_argv(data, out, steps=200), "--resume"],
                      _transitions, _check_dataset, "shard_00001.npz"),
}


def rlgan(argv: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``python -m rlgan ARGV`` in ``cwd`` (headless, one thread), output to ``cwd/log``."""
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
           "OMP_NUM_THREADS": "1"}
    log = open(cwd / "log", "a")
    return subprocess.Popen([sys.executable, "-m", "rlgan", *argv], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def finish(argv: list[str], cwd: Path, timeout: float = 600) -> int:
    """Run ``rlgan ARGV`` to its end; return its exit code."""
    process = rlgan(argv, cwd)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -1


@dataclass
class Trial:
    """What happened in one trial."""

    killed: bool  # False: the run ended before the kill
    finished_at_kill: int
    started_again: bool
    problem: str | None  # None: resumed complete

    @property
    def lost(self) -> bool:
        return self.problem is not None


def trial(command: Command, data: Path, directory: Path, delay: float,
          after_progress_file: bool = False) -> Trial:
    """Run ``command`` into ``directory/out``, SIGKILL it ``delay`` seconds after its start (or,
    with ``after_progress_file``, after its progress file appears), resume it and check it."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "out"
    process = rlgan(command.argv(data, out), directory)
    began = time.perf_counter()
    marker = out / command.progress_file
    while process.poll() is None:
        if after_progress_file and not marker.exists():
            began = time.perf_counter()
        elif time.perf_counter() - began >= delay:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    killed = process.wait() == -signal.SIGKILL
    try:
        before = command.finished(out)
    except (OSError, ValueError) as error:
        return Trial(killed, 0, False, f"unreadable after the kill: {error}")
    code = finish(command.resume_argv(data, out), directory)
    started_again = code == 2 and before == 0  # nothing to resume: run it again
    if started_again:
        code = finish(command.argv(data, out), directory)
    if code != 0:
        return Trial(killed, before, started_again,
                     f"exit {code} on resume: {_last_line(directory)}")
    try:
        if command.finished(out) < before:
            return Trial(killed, before, started_again, "lost finished work")
        return Trial(killed, before, started_again, command.check(out, before))
    except (OSError, ValueError) as error:
        return Trial(killed, before, started_again, f"unreadable: {error}")


def _last_line(directory: Path) -> str:
    lines = (directory / "log").read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def reference(command: Command, data: Path, directory: Path) -> tuple[float, float]:
    """Run ``command`` uninterrupted; return its duration and when its progress file appeared
    (seconds after the start)."""
    directory.mkdir(parents=True)
    out = directory / "out"
    process = rlgan(command.argv(data, out), directory)
    began, first = time.perf_counter(), None
    while process.poll() is None:
        if first is None and (out / command.progress_file).exists():
            first = time.perf_counter() - began
        time.sleep(0.02)
    duration = time.perf_counter() - began
    if process.returncode != 0:
        raise RuntimeError(f"{command.name} failed uninterrupted: {_last_line(directory)}")
    return duration, duration if first is None else first


def make_data(directory: Path) -> Path:
    """The world model's training data: 160 driving transitions."""
    data = directory / "data"
    if finish(_record_argv(directory, data, steps=160), directory) != 0:
        raise RuntimeError(f"recording the data failed: {_last_line(directory)}")
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="kill points per command")
    parser.add_argument("--jobs", type=int, default=2, help="trials run at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commands", nargs="+", choices=sorted(COMMANDS), default=list(COMMANDS))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill_resume."))
    data = make_data(root)
    rows, lost = [], 0
    for key in args.commands:
        command = COMMANDS[key]
        duration, first = reference(command, data, root / key / "reference")
        points = [(rng.uniform(0, duration), False) if number % 2 == 0
                  else (rng.uniform(0, duration - first), True) for number in range(args.trials)]
        with ThreadPoolExecutor(args.jobs) as pool:
            trials = list(pool.map(
                lambda item: trial(command, data, root / key / str(item[0]), *item[1]),
                enumerate(points)))
        for number, result in enumerate(trials):
            if result.lost:
                delay, after_progress_file = points[number]
                since = "its first checkpoint or shard" if after_progress_file else "the start"
                print(f"{command.name}, kill {number} {delay:.2f} s after {since}: "
                      f"{result.problem}", file=sys.stderr)
        lost += sum(result.lost for result in trials)
        rows.append((command.name, str(len(trials)), str(sum(result.killed for result in trials)),
                     str(sum(result.finished_at_kill > 0 for result in trials)),
                     str(sum(result.lost for result in trials)),
                     str(sum(not result.lost for result in trials)),
                     str(sum(result.started_again for result in trials)),
                     f"{first:.1f} / {duration:.1f}"))
    print(table(rows, ("command", "kill points tried", "killed before the end",
                       "killed with finished work on disk", "runs lost", "runs resumed complete",
                       "of which started again", "uninterrupted: first save / end [s]")))
    print(f"\n{machine()}; python benchmarks/bench_kill_resume.py --trials {args.trials} "
          f"--jobs {args.jobs} --seed {args.seed}")
    shutil.rmtree(root)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
