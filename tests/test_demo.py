"""``rlgan demo``: the bundled agent and shield, the from-scratch shield on a tiny budget, the report."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from PIL import Image

from rlgan.cli import main
from rlgan.demo.weights import BUNDLED, DemoWeights
from rlgan.pipeline import load_settings

SHORT = ["--episodes", "2", "--max-steps", "15", "--show-steps", "4", "--display", "video"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """The demo run from scratch on the tiny budget, exporting its weights."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--from-scratch", "--budget", "tiny", "--out", str(out),
                 "--export-weights", str(out / "bundle"), *SHORT]) == 0
    return out


def report_rows(report: str) -> list[list[str]]:
    """The cells of the report's results table (header excluded)."""
    lines = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


@pytest.mark.slow
def test_from_scratch_writes_every_file_and_a_report_of_measured_numbers(scratch):
    for name in ("report.md", "results.json", "shield.png", "predictions.png",
                 "shielded_agent.gif"):
        assert (scratch / name).stat().st_size > 0, name
    results = json.loads((scratch / "results.json").read_text())
    rows = results["rows"]
    assert [(row["map"], row["name"]) for row in rows] == [
        (m, n) for m in ("day", "night") for n in ("agent", "gan_shield", "oracle_shield")]
    for row in rows:
        assert 1 <= row["steps"] <= 30 and row["episodes"] == 2
        assert sum(row["episode_steps"]) == row["steps"]
    table = report_rows((scratch / "report.md").read_text())
    assert len(table) == len(rows)
    for cells, row in zip(table, rows):  # the report prints the measured rows, nothing else
        assert cells[1] == row["name"]
        assert cells[2] == f"{row['return']:.1f}"
        assert int(cells[3]) == row["unsafe_events"]
        assert int(cells[8]) == row["steps"]
    gif = Image.open(scratch / "shielded_agent.gif")
    assert gif.n_frames == 4 and gif.size[0] > gif.size[1]
    settings = load_settings(scratch / "runs" / "shield")
    assert settings.budget == "tiny" and settings.env_kwargs == {"map": "day"}


@pytest.mark.slow
def test_from_scratch_reuses_a_trained_shield(scratch, capsys):
    assert main(["demo", "--from-scratch", "--budget", "tiny", "--out", str(scratch),
                 "--maps", "day", *SHORT]) == 0
    output = capsys.readouterr().out
    assert "is trained already" in output and "$ rlgan shield train" not in output


@pytest.mark.slow
def test_exported_weights_are_small_and_drive_the_demo(scratch, tmp_path):
    bundle = DemoWeights(scratch / "bundle")
    assert bundle.size_bytes() < 10_000_000
    assert not (bundle.agent / "best" / "replay.npz").exists()
    assert not (bundle.shield.root / "records").exists()
    assert main(["demo", "--weights", str(bundle.root), "--out", str(tmp_path), "--maps",
                 "night", "--seed", "3", *SHORT]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["weights"] == str(bundle.root)
    assert [row["map"] for row in results["rows"]] == ["night"] * 3


def test_bundled_weights_run_the_default_demo(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), *SHORT]) == 0
    output = capsys.readouterr().out
    assert re.search(r"day: unsafe events agent \d+, GAN shield \d+, oracle \d+ \(2 episodes each\); "
                     r"GAN removed (n/a|-?\d+% \+- (\d+|0\.\d)%)", output)
    assert DemoWeights(BUNDLED).size_bytes() < 10_000_000


def test_the_bundle_was_made_by_shield_train_with_the_demo_budget():
    settings = load_settings(BUNDLED / "shield")
    assert settings.budget == "demo" and settings.env_id == "rlgan/Driving-v0"
    assert settings.agent == "agent"  # the bundled agent, relative to the bundle
    evaluation = json.loads((BUNDLED / "shield" / "evaluation.json").read_text())
    assert evaluation["rows"][0]["name"] == "agent"


def test_tracked_files_hold_no_absolute_path_of_the_machine_that_made_them():
    root = BUNDLED.parent.parent.parent
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    pattern = re.compile(r"[\"'\s(]/(work|root|home|tmp)/[\w.-]+/")
    offenders = []
    for name in tracked.stdout.split():
        if name.endswith((".png", ".gif", ".safetensors", ".npz")):
            continue
        text = (root / name).read_text(errors="replace")
        offenders += [f"{name}: {match.group(0)}" for match in pattern.finditer(text)]
    assert offenders == []


def test_missing_weights_are_named(tmp_path, capsys):
    (tmp_path / "weights" / "agent").mkdir(parents=True)
    (tmp_path / "weights" / "agent" / "config.json").write_text("{}")
    assert main(["demo", "--weights", str(tmp_path / "weights"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "no shield" in error and "rlgan demo --from-scratch" in error
