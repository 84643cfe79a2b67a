"""The documentation: every relative link resolves to a file of the repository, each docs page is linked from
the README, docs/limits.md names every field of `Limits`, the README stays short, and every YAML example loads.

How a ```yaml block of README.md or docs/*.md is checked, document by document (`---` separates them):

- `kind: MirrorSet`: loaded with `mirror.manifest.load`, `kind: TrustPolicy` with `mirror.trust.policy.load_policy`,
  from a file in an empty directory; the files they name (`key`, `keys`, `caFile`, `trustedRoot`, a local
  `spec.flux[].path`) are made there first, each key a fresh public key;
- a document whose only top-level field is `spec` is a MirrorSet's spec, loaded under a MirrorSet header; one
  without `kind`, `apiVersion`, `metadata` or `spec` is part of a TrustPolicy, loaded with the fields a policy
  needs (`collectors`, `stateFile`) added where it has none;
- any other document with `apiVersion` and `kind` (Flux and Kubernetes objects) is parsed as YAML only.

Anything else fails, and so does an example the loaders refuse: an unknown field, a wrong type, a bad value.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mirror.errors import ManifestError
from mirror.limits import Limits
from mirror.manifest.load import load_mirrorsets
from mirror.trust.policy import load_policy

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


_HEADING = re.compile(r"^#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE)


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lowercased, punctuation dropped, spaces as '-', repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def broken_links(document: Path, text: str | None = None) -> list[str]:
    """Every relative link of `document` (or of `text` as if it were there) that does not name a file inside the
    repository, or names a heading its Markdown page does not have."""
    markdown = document.read_text() if text is None else text
    broken = []
    for target in link_targets(markdown):
        if _SCHEME.match(target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors(markdown):
                broken.append(target)
            continue
        resolved = (document.parent / path).resolve()
        inside = not path.startswith("/") and resolved.is_relative_to(ROOT) and resolved.exists()
        if not inside or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text())):
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


def test_a_link_to_a_heading_the_page_does_not_have_is_broken():
    assert anchors("# The `spec.flux` field\n## Day two: prune\n## Day two: prune\n") == {
        "the-specflux-field",
        "day-two-prune",
        "day-two-prune-1",
    }
    links = "# Here\n[a](trust.md#the-lock) [b](trust.md#no-such-heading) [c](#here) [d](#nowhere)"
    assert broken_links(ROOT / "docs" / "architecture.md", links) == ["trust.md#no-such-heading", "#nowhere"]


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


def test_the_readme_stays_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the reference belongs in docs/"


def test_the_readme_names_the_two_commands_in_the_contracts_order():
    text = (ROOT / "README.md").read_text()
    assert "scripts/setup && scripts/demo" in text and "scripts/test" in text
    assert text.index("scripts/setup && scripts/demo") < text.index("scripts/test")


_PARENT_PATH = re.compile(r"(?<![\w./-])((?:\.\./)+[\w./-]*)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_names_a_file_outside_the_repository(document):
    """Links are checked above; this catches `../` paths in code spans and text too (`../shared/CONTRACT.md`):
    each must name a file or directory of the repository."""
    outside = [
        path
        for path in _PARENT_PATH.findall(document.read_text())
        if not (resolved := (document.parent / path).resolve()).is_relative_to(ROOT) or not resolved.exists()
    ]
    assert outside == []


# --- YAML examples -----------------------------------------------------------------------------------------------

_YAML_BLOCK = re.compile(r"^( *)```ya?ml[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_FILE_FIELDS = {"caFile", "trustedRoot", "valuesFiles"}
_KEY_FIELDS = {"key", "keys"}


def yaml_examples() -> list[tuple[str, str]]:
    """(where, text) of every YAML document in a ```yaml block of the README and the docs pages."""
    examples = []
    for document in DOCUMENTS:
        text = document.read_text()
        for block in _YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, block.start()) + 1
            body = textwrap.dedent(block.group(2))
            for number, part in enumerate(_DOCUMENT_SEPARATOR.split(body)):
                if part.strip():
                    examples.append((f"{document.relative_to(ROOT)}:{line}" + (f"#{number}" if number else ""), part))
    return examples


def _public_key_pem() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _named_files(node: Any, flux_entry: bool = False, files_entry: bool = False) -> tuple[set[str], set[str], set[str]]:
    """The key files, other files and directories a document names, relative to it (`spec.files[].path` too)."""
    keys: set[str] = set()
    files: set[str] = set()
    directories: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found = _named_files(item, flux_entry, files_entry)
            keys |= found[0]
            files |= found[1]
            directories |= found[2]
    elif isinstance(node, dict):
        if flux_entry and node.get("git") is None:
            directories.add(str(node.get("path", ".")))
        if files_entry and isinstance(node.get("path"), str):
            files.add(node["path"])
        for field, value in node.items():
            if field in _KEY_FIELDS:
                keys |= {value} if isinstance(value, str) else {v for v in value or [] if isinstance(v, str)}
            elif field in _FILE_FIELDS:
                files |= {value} if isinstance(value, str) else {v for v in value or [] if isinstance(v, str)}
            else:
                found = _named_files(value, flux_entry=field == "flux", files_entry=field == "files")
                keys |= found[0]
                files |= found[1]
                directories |= found[2]
    return keys, files, directories


def _make_named_files(directory: Path, document: dict[str, Any]) -> None:
    keys, files, directories = _named_files(document)
    for name in keys:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(_public_key_pem())
    for name in files:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text("{}\n")
    for name in directories:
        (directory / name).mkdir(parents=True, exist_ok=True)


_MIRRORSET_HEADER = "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: example}\n"


def _as_loadable(text: str, document: Any) -> tuple[str, str] | None:
    """(kind, text) to load with mirror's loaders; None for an object YAML alone checks; fails for anything else."""
    assert isinstance(document, dict), "an example that is not a mapping"
    kind = document.get("kind")
    if kind in ("MirrorSet", "TrustPolicy"):
        return kind, text
    if kind is None and set(document) == {"spec"}:
        return "MirrorSet", _MIRRORSET_HEADER + text
    if kind is None and not {"apiVersion", "metadata", "spec"} & set(document):
        header = "apiVersion: mirror/v1\nkind: TrustPolicy\n"
        if "collectors" not in document:
            header += "collectors: {keys: [example-collector.pub], threshold: 1}\n"
        if "stateFile" not in document:
            header += "stateFile: example-state.json\n"
        return "TrustPolicy", header + text
    assert "apiVersion" in document and kind, (
        "an example that is neither a MirrorSet, a TrustPolicy, a part of one, nor an object with apiVersion and kind"
    )
    return None


def load_example(text: str, directory: Path) -> None:
    """Load one YAML example as the module docstring says, in `directory`; raises what the loader raises."""
    loadable = _as_loadable(text, yaml.safe_load(text))
    if loadable is None:
        return
    kind, full = loadable
    _make_named_files(directory, yaml.safe_load(full))
    path = directory / "example.yaml"
    path.write_text(full)
    if kind == "MirrorSet":
        load_mirrorsets([path])
    else:
        load_policy(path)


@pytest.mark.parametrize(("where", "text"), yaml_examples(), ids=[where for where, _ in yaml_examples()])
def test_every_yaml_example_loads_with_the_real_loaders(where, text, tmp_path):
    load_example(text, tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: x}\nspec: {imagez: []}\n",
        "spec:\n  images: [registry.example/app:1]\n  imagez: []\n",
        "maxAge: 14d\nimagez: []\n",
    ],
    ids=["mirrorset", "spec-fragment", "policy-fragment"],
)
def test_an_example_with_an_unknown_field_fails(text, tmp_path):
    with pytest.raises(ManifestError, match="imagez"):
        load_example(text, tmp_path)


def test_an_example_that_is_no_known_document_fails(tmp_path):
    with pytest.raises(AssertionError, match="neither a MirrorSet"):
        load_example("metadata: {name: x}\n", tmp_path)


def test_the_docs_hold_yaml_examples_of_both_kinds():
    kinds = {(yaml.safe_load(text) or {}).get("kind") for _, text in yaml_examples()}
    assert {"MirrorSet", "TrustPolicy"} <= kinds
