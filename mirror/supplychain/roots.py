"""Trusted roots for keyless upstream signatures (`trusted_root.json`), and how a bundle carries them.

The collector carries the trusted root of every keyless rule as a blob with an inventory artifact of kind
`trusted-root`; at import the policy's own `trustedRoot` wins, else those carried are used (the bundle is signed
by its collector and approved). See docs/supply-chain.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.bundle.inventory import ArtifactRecord
from mirror.errors import UsageError
from mirror.fsutil import require_regular_file
from mirror.limits import Limits
from mirror.oci.digest import sha256_digest
from mirror.supplychain.attached import TRUSTED_ROOT

if TYPE_CHECKING:
    from mirror.supplychain.keyless_types import TrustedRootHandle

TRUSTED_ROOT_KIND = "trusted-root"


def judged_sources(artifacts: Iterable[ArtifactRecord]) -> list[str]:
    """The sources a trust policy's allowedSources judges: every artifact's, but a carried trusted root's, which
    names a file given to the collector, not a place anything was fetched from."""
    return [a.source for a in artifacts if a.kind != TRUSTED_ROOT_KIND]


def trusted_root_record(name: str, raw: bytes) -> ArtifactRecord:
    """The inventory record of a carried trusted root; `name` is the file name it was given as, for people."""
    return ArtifactRecord(TRUSTED_ROOT_KIND, name, sha256_digest(raw), TRUSTED_ROOT, len(raw))


def load_trusted_root(raw: bytes, where: str) -> TrustedRootHandle:
    """A trusted root ready for mirror.supplychain.keyless; one that does not load is a UsageError naming `where`."""
    from mirror.supplychain import keyless  # sigstore's imports, only when a keyless rule needs them

    return keyless.load_trusted_root(raw, where)


def read_trusted_root_file(path: Path, limits: Limits) -> bytes:
    """A trusted_root.json named by a MirrorSet or a trust policy, read within max_trusted_root_bytes."""
    require_regular_file(path, "trusted root")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limits.max_trusted_root_bytes + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the trusted root: {exc.strerror}") from exc
    if len(raw) > limits.max_trusted_root_bytes:
        raise UsageError(f"{path}: larger than max_trusted_root_bytes ({limits.max_trusted_root_bytes})")
    return raw
