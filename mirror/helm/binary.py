"""Which `helm` renders charts for image discovery: MIRROR_HELM when set, else the first on PATH, else none.

See docs/collector.md ("Helm charts").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from mirror.errors import UsageError


def find_helm(environ: Mapping[str, str] | None = None) -> str | None:
    """The helm binary's path, or None (discovery then walks annotations and values only).

    A MIRROR_HELM that names no executable file is refused: the operator asked for that helm. The path is made
    absolute: helm runs in a scratch directory, where a relative one would name another file (and one without a
    slash would be looked up on PATH), not the one checked here."""
    environ = os.environ if environ is None else environ
    given = environ.get("MIRROR_HELM")
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise UsageError(
                f"MIRROR_HELM={given!r} is not an executable file",
                hint="point MIRROR_HELM at a helm binary, or unset it to use the helm on PATH",
            )
        return os.path.abspath(given)
    found = shutil.which("helm", path=environ.get("PATH"))
    return os.path.abspath(found) if found is not None else None
