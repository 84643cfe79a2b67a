"""One difference between the targets and the journal: a stable code, what it concerns, and the two sides.

See docs/audit.md ("Drift codes").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

TAG_MOVED = "TAG_MOVED"
TAG_MISSING = "TAG_MISSING"
TAG_UNEXPECTED = "TAG_UNEXPECTED"
MANIFEST_MISSING = "MANIFEST_MISSING"
MANIFEST_CORRUPT = "MANIFEST_CORRUPT"
BLOB_MISSING = "BLOB_MISSING"
BLOB_SIZE_MISMATCH = "BLOB_SIZE_MISMATCH"
REPOSITORY_UNEXPECTED = "REPOSITORY_UNEXPECTED"
REF_MOVED = "REF_MOVED"
REF_MISSING = "REF_MISSING"
REF_UNEXPECTED = "REF_UNEXPECTED"

CODES = (
    TAG_MOVED,
    TAG_MISSING,
    TAG_UNEXPECTED,
    MANIFEST_MISSING,
    MANIFEST_CORRUPT,
    BLOB_MISSING,
    BLOB_SIZE_MISMATCH,
    REPOSITORY_UNEXPECTED,
    REF_MOVED,
    REF_MISSING,
    REF_UNEXPECTED,
)


@dataclass(frozen=True, order=True)
class Drift:
    """`subject`: `REPOSITORY:TAG`, `REPOSITORY@DIGEST`, `REPOSITORY` or `URL REF` (registry paths without the
    host); `expected` what the journal says, `found` what the target holds (None: nothing)."""

    subject: str
    code: str
    expected: str | None = None
    found: str | None = None
    detail: str = ""

    @property
    def message(self) -> str:
        text = f"{self.subject}: {_WHAT[self.code]}"
        if self.expected is not None:
            text += f"; the journal says {self.expected}"
        if self.found is not None:
            text += f", the target holds {self.found}"
        return text + (f" ({self.detail})" if self.detail else "")

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "subject": self.subject,
            "expected": self.expected,
            "found": self.found,
            "message": self.message,
        }


_WHAT = {
    TAG_MOVED: "the tag points at another manifest",
    TAG_MISSING: "the tag is gone",
    TAG_UNEXPECTED: "a tag no import wrote",
    MANIFEST_MISSING: "a manifest the journal lists is gone",
    MANIFEST_CORRUPT: "the registry answers something else under this digest",
    BLOB_MISSING: "a blob a manifest names is gone",
    BLOB_SIZE_MISMATCH: "the blob's size is not the one its manifest gives",
    REPOSITORY_UNEXPECTED: "a repository no import wrote",
    REF_MOVED: "the ref points at another object",
    REF_MISSING: "the ref is gone",
    REF_UNEXPECTED: "a ref no import pushed",
}


@dataclass
class DriftList:
    """Drift as it is found: the first `limit` kept (sorted when read), every one counted by code."""

    limit: int
    listed: list[Drift] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, found: Iterable[Drift]) -> None:
        for drift in found:
            self.counts[drift.code] += 1
            if len(self.listed) < self.limit:
                self.listed.append(drift)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def omitted(self) -> int:
        return self.total - len(self.listed)

    def sorted(self) -> list[Drift]:
        return sorted(self.listed)
