"""The README stays a first screen, and the links between the documents keep working.

The README was 945 lines once and a newcomer could not find the start; its sections moved to
docs/, and links to their old anchors broke silently in GitHub's rendering. These tests hold
the README to 200 lines and resolve every relative link and ``#anchor`` in README.md and
docs/*.md the way GitHub does (heading text, lower case, punctuation dropped, spaces as dashes).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
README_MAX_LINES = 200
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    return broken


def test_the_readme_is_at_most_200_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_every_relative_link_and_anchor_in_the_docs_resolves() -> None:
    found = {p.relative_to(REPO_ROOT).as_posix(): broken_links(p) for p in documents()}
    assert {name: links for name, links in found.items() if links} == {}


def test_the_anchor_rule_matches_githubs_for_our_heading_shapes() -> None:
    assert slug("`tdxctl host-check`") == "tdxctl-host-check"
    assert slug("QGS dialect by host") == "qgs-dialect-by-host"
    assert slug("How the CLI runs a Python pack, and what `make setup` does about it") == (
        "how-the-cli-runs-a-python-pack-and-what-make-setup-does-about-it")
