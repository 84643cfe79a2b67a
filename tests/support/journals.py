"""Import journals built in-process: the fields of an import entry, and a journal of N entries beside a state file.

`import_fields(n)` is a valid `import` entry's fields for a bundle numbered n; `write_journal(dir, n)` appends n
of them through the real writer, under the lock, and returns the state file. Tests then damage the files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.trust.journal import journal_file_for
from mirror.trust.journal_write import open_journal
from mirror.trust.keys import Signer
from mirror.trust.lock import state_lock
from mirror.trust.policy import Importers

REGISTRY = "https://registry.test/mirror"


def hexdigest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def import_fields(n: int, *, result: str = "imported", tag: str | None = None) -> dict[str, Any]:
    """Bundle number n imported: one image `mirror/team/app:<tag or n>` and one Git ref."""
    image = f"sha256:{hexdigest(f'image {n}')}"
    child = f"sha256:{hexdigest(f'child {n}')}"
    written = {
        "images": [
            {
                "repository": "mirror/team/app",
                "tag": tag or f"{n}.0",
                "digest": image,
                "manifests": sorted([image, child]),
                "status": "pushed",
                "previous": None,
            }
        ],
        "attached": [{"repository": "mirror/team/app", "tag": None, "digest": f"sha256:{hexdigest(f'sig {n}')}"}],
        "git": [
            {
                "repository": "https://git.test/base/fleet.git",
                "ref": "refs/heads/main",
                "old": None if n == 1 else hexdigest(f"commit {n - 1}")[:40],
                "new": hexdigest(f"commit {n}")[:40],
                "outcome": "created" if n == 1 else "updated",
            }
        ],
        "fluxFiles": 0,
        "mirrorConfigFiles": 0,
    }
    return {
        "result": result,
        "exitCode": {"imported": 0, "partial": 4}.get(result, 3),
        "bundleId": f"night-{n}",
        "inventory": f"sha256:{hexdigest(f'inventory {n}')}",
        "sequence": n,
        "collectors": [hexdigest("collector")],
        "approvers": [],
        "registry": REGISTRY,
        "git": "https://git.test/base",
        "written": written if result != "refused" else None,
        "progress": None if result != "partial" else {"stateRecorded": True, "registryWriteRequests": 1},
        "problems": [] if result != "refused" else ["ROLLBACK"],
        "message": None if result != "refused" else "refused, 1 problem(s)",
    }


def write_journal(
    directory: Path,
    count: int,
    *,
    signer: Signer | None = None,
    importers: Importers | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Path:
    """`count` import entries appended under the lock to DIR/state.json.journal; returns the state file."""
    state_file = directory / "state.json"
    with state_lock(state_file):
        writer = open_journal(state_file, limits=limits, importers=importers, signer=signer)
        for n in range(1, count + 1):
            writer.append("import", import_fields(n))
    return state_file


def append_entry(state_file: Path, n: int, *, signer: Signer | None = None, warnings: list[str] | None = None) -> None:
    """One more import entry (bundle number n), under the lock, through a writer opened for it alone."""
    warn = warnings.append if warnings is not None else None
    with state_lock(state_file):
        open_journal(state_file, limits=DEFAULT_LIMITS, importers=None, signer=signer, warn=warn).append(
            "import", import_fields(n)
        )


def lines(state_file: Path) -> list[bytes]:
    return journal_file_for(state_file).read_bytes().splitlines(keepends=True)


def rewrite(state_file: Path, new_lines: list[bytes]) -> None:
    journal_file_for(state_file).write_bytes(b"".join(new_lines))


def rollback_record(state_file: Path) -> dict[str, Any] | None:
    """The trust state file without the journal's head: what a refusal leaves exactly as it was (None: it records
    no import). A refusal after the lock still moves the head: it is journaled (docs/journal.md)."""
    if not state_file.exists():
        return None
    body = json.loads(state_file.read_bytes())
    body.pop("journal", None)
    return body if body.get("collectors") or body.get("latestCreated") else None


def last_entry(state_file: Path) -> dict[str, Any] | None:
    journal = journal_file_for(state_file)
    if not journal.exists() or not journal.read_bytes():
        return None
    return json.loads(lines(state_file)[-1])  # type: ignore[no-any-return]
