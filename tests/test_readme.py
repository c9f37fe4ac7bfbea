"""The README's code works: every Python snippet runs, and the Quick start has two commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rlgan.cli import build_parser

README = (Path(__file__).parents[1] / "README.md").read_text()
PYTHON_SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_quick_start_has_exactly_two_commands():
    quick_start = README.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("rlgan demo") and "pytest" in commands[1]
    assert BASH_BLOCKS[0] == block


@pytest.mark.parametrize("snippet", PYTHON_SNIPPETS, ids=[f"snippet{i}" for i in range(len(PYTHON_SNIPPETS))])
def test_python_snippet_runs(snippet, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "data/day" in snippet:  # the dataset the README's record command writes
        from rlgan.cli import main

        assert main(["record", "--env", "rlgan/Driving-v0", "--map", "day", "--agent", "scripted",
                     "--epsilon", "0.3", "--steps", "40", "--out", "data/day"]) == 0
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})


def test_every_rlgan_command_in_the_readme_parses():
    parser = build_parser()
    commands = [line.split("#")[0].strip() for block in BASH_BLOCKS for line in block.splitlines()]
    rlgan_commands = [c for c in commands if c.startswith("rlgan ")]
    assert len(rlgan_commands) >= 10
    for command in rlgan_commands:
        parser.parse_args(shlex.split(command)[1:])
