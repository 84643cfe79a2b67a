"""Journals of nightly imports crafted for `mirror prune` and `mirror restore`: each night's images (with their
child manifests), attached manifests and tags chosen by the test, appended through the real writer.

`digest("app 1")` names a made-up manifest; `image(...)` and `attached(...)` are the `written` lists' items;
`night(n, images, attached)` is an `import` entry's fields; `write_nights(dir, [...])` appends them in order
and returns the state file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mirror.trust.journal import journal_file_for
from mirror.trust.journal_read import iter_entries
from mirror.trust.journal_write import open_journal
from mirror.trust.lock import state_lock

TARGET = "https://registry.test/mirror"


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def image(repository: str, tag: str | None, top: str, children: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "repository": repository,
        "tag": tag,
        "digest": top,
        "manifests": sorted({top, *children}),
        "status": "pushed",
        "previous": None,
    }


def attached(repository: str, tag: str | None, manifest: str) -> dict[str, Any]:
    return {"repository": repository, "tag": tag, "digest": manifest}


def night(
    n: int,
    images: Iterable[dict[str, Any]],
    attached_manifests: Iterable[dict[str, Any]] = (),
    *,
    registry: str = TARGET,
    result: str = "imported",
) -> dict[str, Any]:
    """Night n's import entry: bundle `night-n`, inventory digest("inventory n"), sequence n."""
    written = {
        "images": list(images),
        "attached": list(attached_manifests),
        "git": [],
        "fluxFiles": 0,
        "mirrorConfigFiles": 0,
    }
    return {
        "result": result,
        "exitCode": {"imported": 0, "partial": 4}.get(result, 3),
        "bundleId": f"night-{n}",
        "inventory": digest(f"inventory {n}"),
        "sequence": n,
        "collectors": [hashlib.sha256(b"collector").hexdigest()],
        "approvers": [],
        "registry": registry,
        "git": None,
        "written": None if result in ("refused", "failed") else written,
        "progress": {"stateRecorded": True, "registryWriteRequests": 1} if result == "partial" else None,
        "problems": [] if result in ("imported", "partial") else ["ROLLBACK"],
        "message": None if result == "imported" else "it stopped",
    }


def write_nights(directory: Path, nights: Iterable[dict[str, Any]], *, kind: str = "import") -> Path:
    """Each night's fields appended, in order, under the lock, to DIR/state.json.journal; returns the state file."""
    state_file = directory / "state.json"
    with state_lock(state_file):
        writer = open_journal(state_file)
        for fields in nights:
            writer.append(kind, fields)
    return state_file


def entries(state_file: Path) -> list[Any]:
    return list(iter_entries(journal_file_for(state_file)))
