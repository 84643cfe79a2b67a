"""The last of the verification, overlapped with the upload: the big image blobs the trust check left unhashed go up
into upload sessions while they are hashed, and none of those sessions is finished here.

See docs/importer.md ("The transaction").
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mirror.bundle.inventory import FileRecord
from mirror.bundle.reader import opened
from mirror.bundle.verify import VerifiedBundle, check_file_hashes, hash_problem
from mirror.errors import IntegrityError, Problem
from mirror.limits import Limits
from mirror.parallel import run_parallel
from mirror.progress import Progress
from mirror.registry.client import RegistryClient, StreamedUpload


@dataclass
class Staged:
    """What the stream left for the commit: sessions holding checked bytes, blobs found on the target."""

    uploads: dict[str, StreamedUpload] = field(default_factory=dict)  # digest → its session, in its first repository
    present: set[str] = field(default_factory=set)  # digests their first repository holds already
    problems: list[Problem] = field(default_factory=list)  # files whose bytes do not hash to the inventory's sha256
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def abandon(self, client: RegistryClient) -> None:
        """Cancel every session (a registry that cannot cancel purges them: nothing of them is visible)."""
        for upload in self.uploads.values():
            client.abandon_streamed(upload)
        self.uploads.clear()


def stream_deferred(
    verified: VerifiedBundle,
    client: RegistryClient | None,
    first_repository: dict[str, str],
    *,
    jobs: int,
    limits: Limits,
    progress: Progress,
) -> Staged:
    """Hash every deferred blob, `jobs` at a time, the largest first; those the import uploads (digest → the
    repository it goes to first) are streamed into an upload session on the way, at most limits.max_open_uploads.

    client None (a dry run): everything is hashed, nothing sent. A blob whose bytes do not match is a problem and
    its session is cancelled; on any failure the caller abandons the rest (Staged.abandon), finishing nothing.
    """
    records = sorted(verified.deferred, key=lambda r: (-r.size, r.path))
    wanted = [r for r in records if client is not None and "sha256:" + r.sha256 in first_repository]
    sent = {r.path for r in wanted[: limits.max_open_uploads]}
    staged = Staged()
    progress.start("verify", sum(r.size for r in records))

    def one(record: FileRecord) -> None:
        if client is None or record.path not in sent:
            problems = check_file_hashes(verified.reader, [record], jobs=1, limits=limits, on_bytes=progress.advance)
            with staged.lock:
                staged.problems += problems
            return
        digest = "sha256:" + record.sha256
        try:
            upload = client.stream_blob(
                first_repository[digest],
                digest,
                record.size,
                lambda: opened(verified.reader, record.path),
                progress.advance,
            )
        except IntegrityError as exc:  # the file grew or shrank since its size was checked; its session cancelled
            with staged.lock:
                staged.problems.append(Problem("FILE_SIZE", f"{record.path}: changed size while read: {exc.message}"))
            return
        if upload is None:  # the registry holds it: nothing was sent, the bytes are hashed here
            problems = check_file_hashes(verified.reader, [record], jobs=1, limits=limits, on_bytes=progress.advance)
            with staged.lock:
                staged.present.add(digest)
                staged.problems += problems
            return
        problem = hash_problem(record, upload.sha256)
        if problem is not None:
            client.abandon_streamed(upload)
        with staged.lock:
            if problem is None:
                staged.uploads[digest] = upload
            else:
                staged.problems.append(problem)

    try:
        run_parallel(records, one, jobs)
    except Exception:  # an interrupt cancels nothing: the registry purges what it leaves
        if client is not None:
            staged.abandon(client)
        raise
    finally:
        progress.finish()
    return staged
