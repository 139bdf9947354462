"""The README is a front page and the manual under docs/ builds: MkDocs in strict mode (mkdocs.yml),
where a link to a missing page or heading, or a page left out of the navigation, fails the build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 150
# [text](target) outside code; the target up to the first space or closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def build_manual(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(root / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True)


def headings(page: Path) -> set[str]:
    """The anchors MkDocs gives the headings of ``page`` (its default slugify, that of Markdown's toc)."""
    text = FENCE.sub("", page.read_text())
    return {slugify(m.group(1).strip(), "-") for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


def test_the_manual_builds_strictly(tmp_path):
    result = build_manual(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    with (copy / "docs" / "concepts.md").open("a") as page:
        page.write("\nSee [nowhere](no-such-page.md).\n")
    result = build_manual(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def test_readme_is_a_front_page_that_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move the rest to docs/"
    first_block = FENCE.search(README.read_text()).group(0).splitlines()[1:-1]
    commands = [line.split("#")[0].strip() for line in first_block]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    # CI runs exactly the README's test command.
    assert "exec ./scripts/test.sh" in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_relative_link_in_the_readme_points_at_a_file_and_heading():
    text = FENCE.sub("", README.read_text())
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    assert targets, "the README links to the manual"
    broken = []
    for target in targets:
        path, _, anchor = target.partition("#")
        page = ROOT / path if path else README
        if not page.exists():
            broken.append(target)
        elif anchor and (page.suffix != ".md" or anchor not in headings(page)):
            broken.append(target)
    assert broken == []
