"""Every relative link in the project's Markdown names a file or folder that exists.

The README, docs/ and docs/results/ link to metrics JSONs, pictures and each other; results move between
pages (session 23 moved the README's record to docs/results/history.md) and a link written relative to the
wrong folder reads fine and leads nowhere.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # [text](target) or ![alt](target), anchor dropped


def markdown_files() -> list[Path]:
    """The tracked Markdown files (git ls-files), or every one below the root outside a git checkout."""
    try:
        names = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()
        return [ROOT / name for name in names]
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", "build", "install", "log", ".colcon_ws", "out"}
        return [p for p in ROOT.rglob("*.md") if not skip & set(p.relative_to(ROOT).parts)]


def broken_links(path: Path) -> list[str]:
    """The relative link targets in `path` that do not exist, resolved from its folder."""
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8", errors="replace")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        if not (path.parent / target).exists():
            broken.append(target)
    return broken


def test_relative_links_resolve() -> None:
    files = markdown_files()
    assert any(p.name == "README.md" and p.parent == ROOT for p in files)
    broken = {str(p.relative_to(ROOT)): links for p in files if (links := broken_links(p))}
    assert not broken, f"links to missing files: {broken}"


def test_a_link_one_folder_too_high_is_caught(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "metrics.json").write_text("{}")
    page = tmp_path / "results" / "page.md"
    page.write_text("[ok](metrics.json) [too high](../metrics.json) [web](https://example.org/x) [anchor](#top)\n")
    assert broken_links(page) == ["../metrics.json"]
