"""``rlgan demo``: the from-scratch pipeline on a tiny budget, the report, the bundled weights."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from rlgan.cli import main
from rlgan.demo.pipeline import BUDGETS, stage_commands
from rlgan.demo.weights import BUNDLED, DemoWeights

SHORT = ["--episodes", "1", "--max-steps", "25", "--show-steps", "4", "--display", "video"]


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


def test_from_scratch_writes_every_file_and_a_report_of_measured_numbers(scratch):
    for name in ("report.md", "results.json", "shield.png", "predictions.png",
                 "shielded_agent.gif"):
        assert (scratch / name).stat().st_size > 0, name
    results = json.loads((scratch / "results.json").read_text())
    rows = results["rows"]
    assert [(row["map"], row["name"]) for row in rows] == [
        (m, n) for m in ("day", "night") for n in ("agent", "gan_shield", "oracle_shield")]
    for row in rows:
        assert 1 <= row["steps"] <= 25 and row["episodes"] == 1
    table = report_rows((scratch / "report.md").read_text())
    assert len(table) == len(rows)
    for cells, row in zip(table, rows):  # the report prints the measured rows, nothing else
        assert cells[1] == row["name"]
        assert cells[2] == f"{row['return']:.1f}"
        assert cells[3] == f"{row['unsafe_per_1000']:.2f}"
        assert int(cells[7]) == row["steps"]
    # The oracle looks ahead in the true simulator: it never does worse than the agent alone.
    for map_name in ("day", "night"):
        by_name = {row["name"]: row for row in rows if row["map"] == map_name}
        assert by_name["oracle_shield"]["unsafe_per_1000"] <= by_name["agent"]["unsafe_per_1000"]
    gif = Image.open(scratch / "shielded_agent.gif")
    assert gif.n_frames == 4 and gif.size[0] > gif.size[1]


def test_from_scratch_resumes_after_finished_stages(scratch, capsys):
    assert main(["demo", "--from-scratch", "--budget", "tiny", "--out", str(scratch),
                 "--maps", "day", *SHORT]) == 0
    output = capsys.readouterr().out
    stages = [stage for stage, _, _ in stage_commands(scratch / "runs", BUDGETS["tiny"])]
    for stage in stages:
        assert f"{stage}: already done" in output
    assert "$ rlgan" not in output


def test_exported_weights_are_small_and_drive_the_demo(scratch, tmp_path):
    bundle = DemoWeights(scratch / "bundle")
    assert bundle.size_bytes() < 10_000_000
    assert not (bundle.agent / "best" / "replay.npz").exists()
    assert main(["demo", "--weights", str(bundle.root), "--out", str(tmp_path), "--maps",
                 "night", "--seed", "3", *SHORT]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["weights"] == str(bundle.root)
    assert [row["map"] for row in results["rows"]] == ["night"] * 3


def test_bundled_weights_run_the_default_demo(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), *SHORT]) == 0
    assert re.search(r"day: unsafe/1000 agent [\d.]+, GAN shield [\d.]+, oracle [\d.]+",
                     capsys.readouterr().out)
    assert DemoWeights(BUNDLED).size_bytes() < 10_000_000


def test_missing_weights_are_named(tmp_path, capsys):
    (tmp_path / "weights" / "worldmodel").mkdir(parents=True)
    (tmp_path / "weights" / "worldmodel" / "run.json").write_text("{}")
    assert main(["demo", "--weights", str(tmp_path / "weights"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "no safety classifier" in error and "rlgan demo --from-scratch" in error
