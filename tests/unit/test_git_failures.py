"""A git failure mirror does not recognise still gets an exit code that says what kind of step failed.

A command that talks to an upstream falls back to a transfer failure (exit 4), a check of local files (a bundle,
a quarantine) to a verification failure (exit 3): never the "internal error" exit 1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mirror.collector.run import collect
from mirror.errors import BundleFormatError, MirrorError, TransferError, VerificationError
from mirror.git.runner import git_error
from mirror.progress import Progress
from tests.support.hostile import Answer, HostileServer, Request, Route
from tests.support.hostile.dumbgit import bare_repository, dumb_git

UNRECOGNISED = "error: something git says that mirror has never seen\nfatal: and gave up"


def test_an_unrecognised_failure_of_a_network_command_is_a_transfer_failure() -> None:
    error = git_error("fetch https://git.example/repo.git", UNRECOGNISED)
    assert isinstance(error, TransferError)
    assert error.exit_code == 4


def test_an_unrecognised_failure_of_a_local_check_is_a_verification_failure() -> None:
    error = git_error("git bundle verify b.bundle", UNRECOGNISED, network=False)
    assert isinstance(error, VerificationError)
    assert error.exit_code == 3


def test_a_failure_class_the_caller_names_is_kept() -> None:
    assert type(git_error("read b.bundle", UNRECOGNISED, network=False, failure=BundleFormatError)) is BundleFormatError


def with_a_bogus_pack_index(route: Route) -> Route:
    """The upstream's pack index replaced by bytes that are not one."""

    def bogus(request: Request) -> Answer:
        if request.path.endswith(".idx"):
            return Answer(200, {"Content-Type": "application/octet-stream"}, b"not a pack index" * 64)
        return route(request)

    return bogus


def test_a_bogus_pack_index_from_a_dumb_http_upstream_is_a_transfer_failure(tmp_path: Path) -> None:
    bare = bare_repository(tmp_path)
    subprocess.run(["git", "-C", str(bare), "repack", "-a", "-d", "-q"], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    with HostileServer(with_a_bogus_pack_index(dumb_git(bare))) as server:
        manifest = tmp_path / "m.yaml"
        manifest.write_text(
            "apiVersion: mirror/v1\nkind: MirrorSet\nmetadata: {name: t}\nspec:\n  git:\n"
            f'    - {{name: r, url: "{server.url}/repo.git", ref: {{branch: main}}}}\n'
        )
        with pytest.raises(MirrorError) as caught:
            collect([manifest], tmp_path / "out", progress=Progress(quiet=True))
    assert caught.value.exit_code == 4, caught.value
