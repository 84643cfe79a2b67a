"""Collect refuses a MirrorSet Git URL whose path hides something from a check on its text: an encoded dot,
slash, backslash or percent sign, or a control character (exit 2, naming the file and field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.errors import ManifestError
from mirror.manifest.load import load_mirrorset_file
from mirror.urlpath import source_path_problem


def _manifest(tmp_path: Path, url: str) -> Path:
    document = {
        "apiVersion": "mirror/v1",
        "kind": "MirrorSet",
        "metadata": {"name": "m"},
        "spec": {"git": [{"name": "fleet", "url": url, "ref": {"branch": "main"}}]},
    }
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://git.example.com/a/%2e%2e/%2e%2e/escape.git", "'%2e'"),
        ("https://git.example.com/a/.%2E/x.git", "'%2E'"),
        ("https://git.example.com/a%2fb.git", "'%2f'"),
        ("https://git.example.com/a%5C..%5Cb.git", "'%5C'"),
        ("https://git.example.com/a\\b.git", "'\\\\'"),
        ("https://git.example.com/a/%252e%252e/x.git", "'%25'"),
        ("https://git.example.com/a/%0a/x.git", "control character U+000A"),
        ("https://git.example.com/a/%00.git", "control character U+0000"),
    ],
)
def test_a_git_url_whose_path_hides_something_is_refused_naming_file_and_field(tmp_path, url, why):
    path = _manifest(tmp_path, url)
    with pytest.raises(ManifestError) as refused:
        load_mirrorset_file(path)
    assert refused.value.path == str(path) and refused.value.field == "spec.git[0].url"
    assert why in refused.value.problem
    assert refused.value.exit_code == 2


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/fleet/infra.git",
        "https://git.example.com/fleet/infra",
        "https://git.example.com/team%20a/caf%C3%A9.git",
        "http://127.0.0.1:8080/t1/v1.2..3.git",
    ],
)
def test_an_honest_git_url_loads(tmp_path, url):
    [mirrorset] = load_mirrorset_file(_manifest(tmp_path, url))
    assert mirrorset.git[0].url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://h/fleet.git", None),
        ("https://h/a/%2e%2e/x.git", "its path holds '%2e', an encoded dot, slash, backslash or percent sign"),
        ("https://h/a/%c2%85/x.git", "its path decodes to the control character U+0085"),
        ("https://h/a/%ff.git", "its path decodes to bytes that are not UTF-8"),
    ],
)
def test_source_path_problems_are_named(url, problem):
    assert source_path_problem(url) == problem
