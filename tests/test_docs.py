"""What the docs and unit files point at exists: files named in the docs are in
the repository, and the wizctl commands named in the unit files' comments are
real commands with those options."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from wizctl.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
UNITS = [*sorted((ROOT / "systemd").iterdir()), *sorted((ROOT / "wizctl" / "units").iterdir())]


def relative_paths(text: str) -> set[str]:
    """Repository-relative paths in backticks or link targets (``docs/x.md``)."""
    tokens = set(re.findall(r"`([^`\s]+)`", text)) | set(re.findall(r"\]\(([^)\s]+)\)", text))
    return {t for t in tokens if re.fullmatch(r"[\w.-]+(/[\w.-]+)+/?", t)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_files_the_docs_name_are_in_the_repository(doc: Path) -> None:
    missing = [p for p in sorted(relative_paths(doc.read_text()))
               if not (ROOT / p).exists() and not (doc.parent / p).exists()]
    assert missing == []


def command(words: list[str]) -> tuple[Any, list[str]]:
    """The (click) command the leading ``words`` name, and the words left over."""
    cmd = typer.main.get_command(app)
    while words and words[0] in getattr(cmd, "commands", {}):
        cmd = cmd.commands[words.pop(0)]
    return cmd, words


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_wizctl_commands_in_unit_comments_exist(unit: Path) -> None:
    comments = " ".join(line.lstrip("# ") for line in unit.read_text().splitlines()
                        if line.startswith("#"))
    named = re.findall(r"wizctl((?: [\w-]+)+)", comments)
    for words in named:
        cmd, rest = command(words.split())
        assert not hasattr(cmd, "commands"), f"no command `wizctl{words}`"
        options = {o for p in cmd.params for o in p.opts}
        assert [w for w in rest if w.startswith("--") and w not in options] == [], words
