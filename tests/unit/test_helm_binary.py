"""Where discovery's helm comes from: MIRROR_HELM, else PATH, else none; a wrong MIRROR_HELM is refused."""

from __future__ import annotations

import pytest

from mirror.errors import UsageError
from mirror.helm.binary import find_helm


def executable(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_mirror_helm_is_used_when_set(tmp_path):
    helm = executable(tmp_path / "my-helm")
    assert find_helm({"MIRROR_HELM": helm, "PATH": ""}) == helm


def test_helm_on_path_is_used_without_mirror_helm(tmp_path):
    helm = executable(tmp_path / "helm")
    assert find_helm({"PATH": str(tmp_path)}) == helm


def test_no_helm_anywhere_is_none(tmp_path):
    assert find_helm({"PATH": str(tmp_path)}) is None


def test_a_mirror_helm_that_is_not_executable_is_refused(tmp_path):
    (tmp_path / "helm").write_text("not a program")
    with pytest.raises(UsageError, match="MIRROR_HELM") as caught:
        find_helm({"MIRROR_HELM": str(tmp_path / "helm"), "PATH": ""})
    assert caught.value.exit_code == 2


def test_a_mirror_helm_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(UsageError, match="not an executable file"):
        find_helm({"MIRROR_HELM": str(tmp_path / "absent")})


def test_a_relative_mirror_helm_is_made_absolute(tmp_path, monkeypatch):
    # helm runs in a scratch directory: a relative path would name another file there (or, without a slash,
    # whatever helm PATH finds first), not the one checked here.
    executable(tmp_path / "helm")
    monkeypatch.chdir(tmp_path)
    assert find_helm({"MIRROR_HELM": "helm", "PATH": ""}) == str(tmp_path / "helm")


def test_helm_found_through_a_relative_path_entry_is_made_absolute(tmp_path, monkeypatch):
    executable(tmp_path / "helm")
    monkeypatch.chdir(tmp_path)
    assert find_helm({"PATH": "."}) == str(tmp_path / "helm")
