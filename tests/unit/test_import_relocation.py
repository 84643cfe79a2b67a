"""Relocation in the import's plan: refusals found before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import UsageError
from mirror.flux.bootstrap import EndpointAccess
from mirror.flux.relocate import Relocation
from mirror.flux.rewrite import InternalEndpoints
from mirror.git.bundles import StagedRepo
from mirror.importer.git import GitPlan
from mirror.importer.relocation import relocate_staged
from mirror.limits import DEFAULT_LIMITS

TARGET = "https://git.internal/mirror/org/fleet.git"


def test_an_upstream_branch_named_like_a_relocation_branch_is_refused_in_a_relocated_source(tmp_path: Path):
    artifact = ArtifactRecord("git", "https://github.com/org/fleet.git", "sha256:" + "0" * 64, "git-bundle", 1)
    staged = StagedRepo(tmp_path, {"refs/heads/main": "a" * 40, "refs/heads/mirror/main": "b" * 40}, [])
    relocation = Relocation(
        InternalEndpoints("registry.internal/mirror", "https://git.internal/mirror"),
        EndpointAccess(),
        {TARGET: frozenset({"main"})},
    )
    with pytest.raises(UsageError, match="refs/heads/mirror/main"):
        relocate_staged([GitPlan(artifact, TARGET, staged)], relocation, DEFAULT_LIMITS, lambda _: None)
    assert staged.owned == set()
