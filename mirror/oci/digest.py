"""Digest strings, checked before they are ever used in a path or a URL."""

from __future__ import annotations

import hashlib
import re
from typing import TypeGuard

from mirror.errors import DigestMismatchError, InvalidDocumentError, MirrorError

_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")


def is_digest(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def check_digest(value: object, where: str) -> str:
    """Return `value` if it is a lowercase sha256 digest; anything else (other algorithms included) is refused."""
    if not is_digest(value):
        raise InvalidDocumentError(f"{where}: {value!r} is not a digest of the form sha256:<64 lowercase hex>")
    return value


def hex_of(digest: str) -> str:
    return check_digest(digest, "digest")[len("sha256:") :]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class DigestingCounter:
    """Hashes and counts bytes as they stream, and checks the totals against a descriptor at the end."""

    def __init__(
        self, expected_digest: str, expected_size: int, what: str, error: type[MirrorError] = DigestMismatchError
    ) -> None:
        self.error = error
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self.what = what
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.size > self.expected_size:
            # Stop at the first byte past the declared size, before the excess is written anywhere.
            raise self.error(f"{self.what}: more than the declared {self.expected_size} bytes")
        self._hash.update(chunk)

    def reset(self) -> None:
        self.size = 0
        self._hash = hashlib.sha256()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def verify(self) -> None:
        if self.size != self.expected_size:
            raise self.error(f"{self.what}: got {self.size} bytes, expected {self.expected_size}")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.expected_digest:
            raise self.error(f"{self.what}: content hashes to {actual}, expected {self.expected_digest}")
