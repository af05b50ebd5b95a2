"""The user docs point at things that exist: relative links, their anchors, and `make` targets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [REPO_ROOT / "README.md", REPO_ROOT / "bench" / "README.md"]
    + list((REPO_ROOT / "docs").glob("*.md"))
)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make ([a-z][a-z0-9_-]*)", re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            anchors.add(slug if count == 0 else f"{slug}-{count}")
            seen[slug] = count + 1
    return anchors


def _makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", text, re.M))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert broken == [], f"{doc.relative_to(REPO_ROOT)}: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_make_targets_exist(doc):
    text = doc.read_text()
    code = FENCE.findall(text) + CODE_SPAN.findall(FENCE.sub("", text))
    named = {target for snippet in code for target in MAKE.findall(snippet)}
    assert named - _makefile_targets() == set(), f"{doc.relative_to(REPO_ROOT)} names them"


def test_the_readme_links_to_every_doc_and_package_readme():
    readme = (REPO_ROOT / "README.md").read_text()
    linked = {(REPO_ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(readme)}
    wanted = {*(REPO_ROOT / "docs").glob("*.md"), *REPO_ROOT.glob("[!.]*/README.md")}
    assert {p.resolve() for p in wanted} - linked == set()


def test_the_checks_catch_what_they_look_for(tmp_path):
    assert _slug("Access: the restricted schema, roles and the analysts' copy") == (
        "access-the-restricted-schema-roles-and-the-analysts-copy"
    )
    assert MAKE.findall("make bench SIZES=1 && make down") == ["bench", "down"]
    assert "help" in _makefile_targets()
    assert "no-such-target" not in _makefile_targets()
