"""`--report FILE`: one JSON summary of a collect or import run, written whether the run succeeded or not.

See docs/architecture.md ("Output") and the README ("Unattended runs").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mirror.errors import Interrupted, MirrorError, UsageError
from mirror.fsutil import atomic_write
from mirror.progress import Progress

API_VERSION = "mirror/v1"
KIND = "RunReport"


def redact_url(url: str) -> str:
    """The URL without user:password@, which never belongs in a report."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _as_mirror_error(error: BaseException) -> MirrorError | None:
    if isinstance(error, KeyboardInterrupt):
        return Interrupted("interrupted")
    return error if isinstance(error, MirrorError) else None


def exit_code_of(error: BaseException) -> int:
    known = _as_mirror_error(error)
    if known is not None:
        return known.exit_code
    code = getattr(error, "exit_code", None)  # typer.Exit / click.exceptions.Exit
    return code if isinstance(code, int) else 1


def failure_entry(error: BaseException) -> dict[str, object]:
    """What failed, as the user saw it on stderr: message, hint, exit code and, for refusals, every problem."""
    known = _as_mirror_error(error)
    if known is not None:
        entry = known.to_json()
        written = getattr(error, "written", None)  # an import that failed after its first write says what it did
        if isinstance(written, dict):
            entry["written"] = written
        return entry
    return {"exitCode": exit_code_of(error), "error": "InternalError", "message": f"{type(error).__name__}: {error}"}


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_report(
    command: str,
    *,
    started: dt.datetime,
    finished: dt.datetime,
    durations: Mapping[str, float],
    transfer: Mapping[str, int],
    context: Mapping[str, object] | None = None,
    result: Mapping[str, object] | None = None,
    changes: Mapping[str, object] | None = None,
    skipped: list[dict[str, object]] | None = None,
    failed: list[dict[str, object]] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, object]:
    """The report document. `result` (the command's --json output) comes first so run fields win a clash."""
    failures = failed or []
    exit_code = max((int(f.get("exitCode", 1)) for f in failures), default=0)  # type: ignore[call-overload]
    total = round((finished - started).total_seconds(), 3)
    return {
        **(context or {}),
        **(result or {}),
        "apiVersion": API_VERSION,
        "kind": KIND,
        "command": command,
        "ok": not failures,
        "exitCode": exit_code,
        "started": _time(started),
        "finished": _time(finished),
        "durations": {**durations, "total": total},
        "transfer": dict(transfer),
        "changes": dict(changes) if changes is not None else None,
        "skipped": skipped or [],
        "failed": failures,
        "warnings": warnings or [],
    }


def write_json_atomically(path: Path, data: object) -> None:
    """Readers never see half a report: write beside it, then rename over it."""
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to a new file beside `path` (never through a link planted there), then rename it over `path`."""
    atomic_write(path, text, durable=False)


def check_report_path(path: Path) -> None:
    """Refuse before any work a report that could not be written afterwards."""
    if path.is_dir():
        raise UsageError(f"--report {path}: is a directory", hint="give a file name, e.g. --report run.json")
    if not path.absolute().parent.is_dir():
        raise UsageError(f"--report {path}: directory {path.absolute().parent} does not exist")


@dataclass
class RunReport:
    """Filled while a command runs; `reporting` writes it when the command ends, however it ends."""

    command: str
    progress: Progress
    context: dict[str, object] = field(default_factory=dict)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    result: dict[str, object] | None = None
    transfer: dict[str, int] = field(default_factory=dict)
    changes: dict[str, object] | None = None
    skipped: list[dict[str, object]] = field(default_factory=list)
    failed: list[dict[str, object]] = field(default_factory=list)

    def to_json(self, finished: dt.datetime | None = None) -> dict[str, object]:
        return build_report(
            self.command,
            started=self.started,
            finished=finished or dt.datetime.now(dt.UTC),
            durations=self.progress.durations(),
            transfer=self.transfer,
            context=self.context,
            result=self.result,
            changes=self.changes,
            skipped=self.skipped,
            failed=self.failed,
            warnings=list(self.progress.warnings),
        )


@contextmanager
def reporting(
    path: Path | None, command: str, progress: Progress, context: dict[str, object] | None = None
) -> Iterator[RunReport]:
    """Run the block, then write the report to `path` (if given), also when the block raises."""
    if path is not None:
        check_report_path(path)
    run = RunReport(command, progress, context or {})
    try:
        yield run
    except BaseException as error:
        if exit_code_of(error) != 0:
            run.failed.append(failure_entry(error))
        if path is not None:
            write_json_atomically(path, run.to_json())
        raise
    if path is not None:
        write_json_atomically(path, run.to_json())


def collect_fields(run: RunReport, result: Any, cache_use: Any | None) -> None:
    """Fill a collect report from its CollectResult and the cache's use."""
    run.result = result.summary()
    run.transfer = {
        "downloaded": result.downloaded_bytes,
        "reusedFromCache": cache_use.reused_bytes if cache_use else 0,
        "resumed": sum(result.resumed.values()),  # kept from the partial tar a killed collect to .tar left
        "written": result.inventory.total_size,
    }
    if result.base is not None:
        run.changes = collect_changes(result)
    if cache_use:
        run.skipped += [
            {"kind": "blob", "digest": digest, "size": size, "reason": "cached"}
            for digest, size in sorted(cache_use.reused_blobs.items())
        ]
    run.skipped += [
        {"kind": "blob", "digest": digest, "size": size, "reason": "resumed"}
        for digest, size in sorted(result.resumed.items())
    ]


def collect_changes(result: Any) -> dict[str, object]:
    """What changed since the --since base, from the two inventories alone (the review's diff, without commits)."""
    from mirror.review.diff import diff_sources, summary_counts
    from mirror.review.source import Source

    chain = result.base
    old = Source("base", chain.inventory, chain.record.inventory.removeprefix("sha256:"), None)
    new_sha256 = hashlib.sha256(result.inventory.to_bytes()).hexdigest()
    diff = diff_sources(old, Source(str(result.out), result.inventory, new_sha256, None), commits=False)
    body = diff.to_json()
    return {
        "base": chain.record.to_json(),
        "summary": summary_counts(diff),
        **{key: body[key] for key in ("added", "removed", "changed", "unchanged", "newBlobs")},
        "movedTags": [m.to_json() for m in result.moved],
        "movedRefs": [{"source": r.source, "ref": r.ref, "old": r.old, "new": r.new} for r in diff.refs],
    }


def import_fields(run: RunReport, result: Any) -> None:
    """Fill an import report from its ImportReport: what it changed on the target, and what it found there."""
    run.result = result.to_json()
    run.transfer = {
        "verified": run.progress.phase_bytes.get("verify", 0),
        "uploaded": 0 if result.dry_run else result.counts.bytes_uploaded,
    }
    if result.dry_run:  # its counts are what the import would do
        run.transfer["wouldUpload"] = result.counts.bytes_uploaded
    added = [i.target for i in result.images if i.status in ("pushed", "would-push") and not i.previous_tag_digest]
    moved = [
        {"target": i.target, "from": i.previous_tag_digest, "to": i.digest}
        for i in result.images
        if i.status in ("pushed", "would-push") and i.previous_tag_digest
    ]
    run.changes = {"added": added, "changed": moved, "removed": []}
    run.skipped += [
        {"kind": "image", "target": i.target, "digest": i.digest, "reason": "unchanged"}
        for i in result.images
        if i.status == "unchanged"
    ]
    run.skipped += [
        {"kind": "blob", "repository": repository, "digest": digest, "reason": "present"}
        for repository, digest in sorted(result.present_blobs)
    ]
