"""The documentation: every relative link resolves to a file of the repository, each docs page is linked from
the README, and docs/limits.md names every field of `Limits`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mirror.limits import Limits
from mirror.manifest.load import load_mirrorsets

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [ROOT / "README.md", *PAGES]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def link_targets(markdown: str) -> list[str]:
    """The targets of the inline and reference links of a Markdown text; code blocks and code spans hold none."""
    text = _CODE.sub("", _FENCE.sub("", markdown))
    return _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)


def broken_links(document: Path) -> list[str]:
    """Every relative link of `document` that does not name a file inside the repository."""
    broken = []
    for target in link_targets(document.read_text()):
        if _SCHEME.match(target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        path = target.split("#", 1)[0]
        resolved = (document.parent / path).resolve()
        if path.startswith("/") or not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    return broken


def test_the_link_reader_finds_inline_image_and_reference_links_but_none_in_code():
    text = "[a](x.md) ![b](img/y.png) [c](z.md#part)\n\n[d]: ../w.md\n\n`[e](no.md)`\n```\n[f](no.md)\n```\n"
    assert sorted(link_targets(text)) == ["../w.md", "img/y.png", "x.md", "z.md#part"]


def test_a_link_out_of_the_repository_or_to_a_missing_file_is_broken(tmp_path):
    page = ROOT / "docs" / "architecture.md"
    assert broken_links(page) == []
    stray = tmp_path / "page.md"
    stray.write_text("[a](/etc/passwd) [b](missing.md)")
    assert broken_links(stray) == ["/etc/passwd", "missing.md"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_of_the_repository(document):
    assert broken_links(document) == []


def test_the_readme_links_every_docs_page():
    linked = {
        (ROOT / t.split("#", 1)[0]).resolve() for t in link_targets((ROOT / "README.md").read_text()) if "docs/" in t
    }
    assert PAGES, "docs/ holds no pages"
    assert [p.name for p in PAGES if p not in linked] == []


def test_the_limits_page_names_every_field_of_limits():
    page = (ROOT / "docs" / "limits.md").read_text()
    assert [f.name for f in dataclasses.fields(Limits) if f"`{f.name}`" not in page] == []


def test_the_example_mirrorset_scripts_demo_collects_loads():
    [example] = load_mirrorsets([ROOT / "manifests" / "example.yaml"])
    assert "demo/signed:1.0" in {f"{image.reference.repository}:{image.reference.tag}" for image in example.images}
