"""`mirror serve`: check the flags, verify every bundle, merge them into one view, then listen until stopped.

Nothing listens before every bundle was verified and the view built; a refusal exits 3 (2 for usage) with every
problem listed. See docs/serve.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror.errors import UsageError
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.progress import Progress
from mirror.serve.api import Registry
from mirror.serve.chain import verify_chain
from mirror.serve.server import RegistryServer, RequestLog, parse_listen, tls_context
from mirror.serve.view import build_view


@dataclass(frozen=True)
class Listening:
    """What the server serves, and where: for the command to tell its operator."""

    url: str
    bundles: int
    repositories: int
    tags: int
    blobs: int
    signed: bool

    def to_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "bundles": self.bundles,
            "repositories": self.repositories,
            "tags": self.tags,
            "blobs": self.blobs,
            "signed": self.signed,
        }


def prepare(
    bundles: Sequence[Path],
    *,
    trust: Path | None,
    allow_unsigned: bool = False,
    jobs: int,
    progress: Progress,
    limits: Limits = DEFAULT_LIMITS,
    clock: dt.datetime | None = None,
) -> Registry:
    """Every bundle verified (by the policy, or on checksums alone with allow_unsigned) and merged in order."""
    if trust is not None and allow_unsigned:
        raise UsageError("give --trust POLICY or --allow-unsigned, not both")
    if trust is None and not allow_unsigned:
        raise UsageError(
            "serve needs --trust POLICY",
            hint="for a lab without signatures, --allow-unsigned serves on checksums alone",
        )
    if not bundles:
        raise UsageError("serve needs at least one bundle")
    if allow_unsigned:
        progress.warn("--allow-unsigned: serving on checksums alone; no signature or approval is checked")
    chain = verify_chain(bundles, trust=trust, jobs=jobs, progress=progress, limits=limits, clock=clock)
    return Registry(build_view(chain), limits, bundles=len(chain))


def serve_bundles(
    bundles: Sequence[Path],
    *,
    trust: Path | None,
    allow_unsigned: bool,
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    jobs: int,
    progress: Progress,
    log: RequestLog,
    on_ready: Callable[[Listening], None],
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Serve until interrupted (KeyboardInterrupt, which the command turns into its exit code)."""
    address = parse_listen(listen)
    tls = tls_context(tls_cert, tls_key)  # the flags are checked before any bundle is hashed
    registry = prepare(bundles, trust=trust, allow_unsigned=allow_unsigned, jobs=jobs, progress=progress, limits=limits)
    try:
        server = RegistryServer(registry, address, limits=limits, log=log, tls=tls)
    except OSError as exc:
        raise UsageError(f"--listen {listen}: cannot listen there: {exc.strerror or exc}") from None
    with server:
        view = registry.view
        on_ready(
            Listening(
                server.url, registry.bundles, len(view.repositories), view.tag_count, len(view.blobs), trust is not None
            )
        )
        server.serve_forever()
