"""The real `helm` for tests: MIRROR_HELM, else the one scripts/setup installs in .venv/tools/bin, else PATH.

Tests that need it skip when it is absent on a developer's machine, and fail in CI (where scripts/setup has run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def helm_binary() -> str | None:
    given = os.environ.get("MIRROR_HELM")
    if given:
        return given
    installed = REPO_ROOT / ".venv" / "tools" / "bin" / "helm"
    if installed.is_file() and os.access(installed, os.X_OK):
        return str(installed)
    return shutil.which("helm")


def real_helm() -> str:
    """The helm binary; skips the test without one (fails it in CI: scripts/setup installs helm there)."""
    binary = helm_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("helm is missing: scripts/setup installs it in .venv/tools/bin")
        pytest.skip("no helm: scripts/setup installs it in .venv/tools/bin")
    return binary
