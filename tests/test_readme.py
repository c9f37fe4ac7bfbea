"""The README and the docs hold: every Python snippet runs, every ``rlgan`` command parses, the
Quick start has two commands, the README and RESULTS.md stay within their size, every docs page
exists and is linked, links resolve, and no doc tells the story of the project's making."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from rlgan.cli import build_parser

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
#: One page per part of rlgan, each linked from the README.
DOCS_PAGES = ("docs/environments.md", "docs/agents.md", "docs/worldmodel.md", "docs/safety.md",
              "docs/datasets.md")
#: The documents whose snippets run and whose commands parse.
DOCUMENTS = {"README.md": README} | {page: (ROOT / page).read_text() for page in DOCS_PAGES
                                     if (ROOT / page).exists()}
PYTHON_SNIPPETS = [(name, snippet) for name, text in DOCUMENTS.items()
                   for snippet in re.findall(r"```python\n(.*?)```", text, flags=re.S)]
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_quick_start_has_exactly_two_commands():
    quick_start = README.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].endswith("rlgan demo") and "pytest" in commands[1]
    assert BASH_BLOCKS[0] == block


@pytest.mark.parametrize("name, snippet", PYTHON_SNIPPETS,
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(PYTHON_SNIPPETS)])
def test_python_snippet_runs(name, snippet, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "data/day" in snippet:  # the dataset the docs' record command writes
        from rlgan.cli import main

        assert main(["record", "--env", "rlgan/Driving-v0", "--map", "day", "--agent", "scripted",
                     "--epsilon", "0.3", "--steps", "40", "--out", "data/day"]) == 0
    exec(compile(snippet, name, "exec"), {"__name__": "readme"})


def test_every_rlgan_command_in_the_docs_parses():
    parser = build_parser()
    blocks = [block for text in DOCUMENTS.values()
              for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]
    commands = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    rlgan_commands = [c for c in commands if c.startswith("rlgan ")]
    assert len(rlgan_commands) >= 40
    for command in rlgan_commands:
        parser.parse_args(shlex.split(command)[1:])


def test_the_readme_and_results_stay_short():
    assert len(README) <= 15_000
    assert len(RESULTS.read_text()) <= 20_000


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_each_docs_page_exists_and_is_linked_from_the_readme(page):
    assert (ROOT / page).is_file()
    assert f"]({page})" in README


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _tracked(*suffixes: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.stdout.split() if name.endswith(suffixes)]


def test_relative_links_in_the_docs_resolve():
    broken = []
    for path in _tracked(".md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", linked.read_text(), flags=re.M)
                if anchor not in {_anchor(heading) for heading in headings}:
                    broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


#: A numbered stage of the project's own making ("the ninth session", "the 12th session"); the
#: dataset's recording sessions (``rlgan record``) are a feature and are not numbered this way.
STAGE = re.compile(r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh"
                   r"|twelfth|\d+(st|nd|rd|th))\s+session", flags=re.I)


def test_no_doc_tells_the_story_of_the_projects_making():
    offenders = [f"{path.relative_to(ROOT)}: {match.group(0)}"
                 for path in _tracked(".md", ".py", ".toml") if path.resolve() != Path(__file__).resolve()
                 for match in STAGE.finditer(path.read_text())]
    assert offenders == []
    assert STAGE.search("the ninth session") and STAGE.search("in the 12th session")
    assert not STAGE.search("the recording sessions of a dataset; each recording session")
