"""spec.files: single files from a URL (pinned by sha256 or trusted on first use) or a local path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mirror.errors import ManifestError
from mirror.manifest.load import load_mirrorsets

DIGEST = "a" * 64


def manifest(tmp_path: Path, files: str, name: str = "set.yaml") -> Path:
    path = tmp_path / name
    text = "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata:\n  name: t\nspec:\n  files:\n"
    path.write_text(text + textwrap.indent(textwrap.dedent(files), "    "))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([path])
    assert caught.value.exit_code == 2
    return f"{caught.value} (hint: {caught.value.hint})"


def test_url_file_with_sha256_loads_named_by_its_last_path_segment(tmp_path):
    path = manifest(tmp_path, f"- url: https://get.example.com/v1/install.sh\n  sha256: {DIGEST.upper()}\n")
    [entry] = load_mirrorsets([path])[0].files
    assert (entry.name, entry.url, entry.sha256, entry.tag) == (
        "install.sh",
        "https://get.example.com/v1/install.sh",
        DIGEST,
        "latest",
    )
    assert entry.source == entry.url and entry.path is None


def test_url_file_without_sha256_is_refused_saying_how_to_pin_it(tmp_path):
    text = refusal(manifest(tmp_path, "- url: https://get.example.com/install.sh\n"))
    assert "spec.files[0].sha256" in text
    assert "sha256:" in text and "trust-on-first-use" in text


def test_trust_on_first_use_leaves_the_digest_to_the_first_download(tmp_path):
    path = manifest(tmp_path, "- url: https://get.example.com/install.sh\n  sha256: trust-on-first-use\n")
    assert load_mirrorsets([path])[0].files[0].sha256 is None


def test_local_file_is_resolved_against_the_mirrorset_and_named_by_its_basename(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    [entry] = load_mirrorsets([manifest(tmp_path, "- path: bin/tool\n")])[0].files
    assert (entry.name, entry.source, entry.path, entry.sha256) == ("tool", "bin/tool", tmp_path / "bin/tool", None)


def test_missing_local_file_is_refused(tmp_path):
    assert "spec.files[0].path" in refusal(manifest(tmp_path, "- path: bin/absent\n"))


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (f"- url: https://h.example/x\n  path: y\n  sha256: {DIGEST}\n", "spec.files[0]"),
        (f"- url: ftp://h.example/x\n  sha256: {DIGEST}\n", "spec.files[0].url"),
        (f"- url: https://user:pw@h.example/x\n  sha256: {DIGEST}\n", "spec.files[0].url"),
        ("- url: https://h.example/x\n  sha256: abc\n", "spec.files[0].sha256"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  name: ../etc/passwd\n", "spec.files[0].name"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  name: a/b\n", "spec.files[0].name"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  name: ..\n", "spec.files[0].name"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  name: 'a b'\n", "spec.files[0].name"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  name: .hidden\n", "spec.files[0].name"),
        (f"- url: https://h.example/\n  sha256: {DIGEST}\n", "spec.files[0].name"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  tag: 'a:b'\n", "spec.files[0].tag"),
        (f"- url: https://h.example/x\n  sha256: {DIGEST}\n  mode: 755\n", "spec.files[0].mode"),
        ("- path: /etc/passwd\n", "spec.files[0].path"),
        (f'- url: "https://h.example/a\\tb/x"\n  sha256: {DIGEST}\n', "spec.files[0].url"),
        (f'- url: "https://h.example/a\\nb/x"\n  sha256: {DIGEST}\n', "spec.files[0].url"),
        (f'- url: "https://h.example/a\\e[31m/x"\n  sha256: {DIGEST}\n', "spec.files[0].url"),
        (f'- url: "https://h.example/a\\u202eb/x"\n  sha256: {DIGEST}\n', "spec.files[0].url"),
    ],
    ids=[
        "url-and-path",
        "ftp",
        "credentials",
        "short-digest",
        "traversal",
        "slash",
        "dot-dot",
        "space",
        "leading-dot",
        "no-last-segment",
        "bad-tag",
        "unknown-field",
        "absolute-path",
        "tab-in-url",
        "newline-in-url",
        "escape-in-url",
        "bidi-control-in-url",
    ],
)
def test_invalid_file_entry_is_refused_naming_its_field(tmp_path, entry, field):
    assert field in refusal(manifest(tmp_path, entry))


def test_a_url_with_credentials_that_urlsplit_cannot_read_is_refused_without_echoing_them(tmp_path):
    # An unclosed [ in the password: urlsplit fails before it can say the URL carries credentials.
    shown = refusal(manifest(tmp_path, f"- url: 'https://user:files[pa55@h.example/x'\n  sha256: {DIGEST}\n"))
    assert "spec.files[0].url" in shown
    assert "pa55" not in shown


def test_two_files_with_one_name_are_refused(tmp_path):
    entries = f"- url: https://a.example/tool\n  sha256: {DIGEST}\n- url: https://b.example/tool\n  sha256: {DIGEST}\n"
    text = refusal(manifest(tmp_path, entries))
    assert "spec.files[1].name" in text and "spec.files[0]" in text


def test_names_differing_only_in_case_are_one_name(tmp_path):
    entries = f"- url: https://a.example/Tool\n  sha256: {DIGEST}\n- url: https://b.example/tool\n  sha256: {DIGEST}\n"
    assert "spec.files[1].name" in refusal(manifest(tmp_path, entries))


def test_two_mirrorsets_giving_one_name_to_different_files_are_refused(tmp_path):
    first = manifest(tmp_path, f"- url: https://a.example/tool\n  sha256: {DIGEST}\n", "a.yaml")
    second = manifest(tmp_path, f"- url: https://b.example/tool\n  sha256: {DIGEST}\n", "b.yaml")
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([first, second])
    assert "'tool'" in str(caught.value) and "a.yaml" in str(caught.value)


def test_two_mirrorsets_listing_the_same_file_are_accepted(tmp_path):
    entry = f"- url: https://a.example/tool\n  sha256: {DIGEST}\n"
    sets = load_mirrorsets([manifest(tmp_path, entry, "a.yaml"), manifest(tmp_path, entry, "b.yaml")])
    assert [len(s.files) for s in sets] == [1, 1]


def test_two_mirrorsets_naming_the_same_file_in_other_cases_are_refused(tmp_path):
    # One file lands once, under one name: "Tool" in one MirrorSet and "tool" in the other cannot both be kept
    # (collect --lock would find the second missing from the lock resolve wrote).
    first = manifest(tmp_path, f"- url: https://a.example/tool\n  sha256: {DIGEST}\n  name: Tool\n", "a.yaml")
    second = manifest(tmp_path, f"- url: https://a.example/tool\n  sha256: {DIGEST}\n  name: tool\n", "b.yaml")
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([first, second])
    assert "'tool'" in str(caught.value) and "a.yaml" in str(caught.value)


def test_two_mirrorsets_naming_different_local_files_alike_are_refused(tmp_path):
    # `path: tool` beside each MirrorSet: the same words, two files; one of them would silently be carried as both.
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "tool").write_bytes(f"{folder} tool\n".encode())
    first = manifest(tmp_path / "a", "- path: tool\n", "set.yaml")
    second = manifest(tmp_path / "b", "- path: tool\n", "set.yaml")
    with pytest.raises(ManifestError) as caught:
        load_mirrorsets([first, second])
    assert "'tool'" in str(caught.value)
