"""Image references, parsed by the distribution grammar and normalised the way docker and containerd do.

`nginx` → `docker.io/library/nginx:latest`; `index.docker.io/x/y` → `docker.io/x/y`. A reference with both a
tag and a digest is pinned by the digest; the tag is kept as the name it lands under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mirror.errors import ReferenceError_

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io"}

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_NAME = 255


@dataclass(frozen=True, order=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def pinned(self, digest: str) -> ImageReference:
        return replace(self, digest=digest)

    def without_digest(self) -> ImageReference:
        return replace(self, digest=None)


def _fail(text: str, problem: str) -> ReferenceError_:
    return ReferenceError_(
        f"invalid image reference {text!r}: {problem}",
        hint="references look like registry.example.com/team/app:1.2 or …/app@sha256:<64 hex>",
    )


def parse_reference(text: str) -> ImageReference:
    if not isinstance(text, str) or not text:
        raise _fail(str(text), "empty")
    if text.split() != [text]:  # whitespace anywhere (str.split splits where str.isspace is true), in C
        raise _fail(text, "contains whitespace")
    if "://" in text:
        raise _fail(text, "a reference has no scheme; write host/path:tag")

    remainder, digest = text, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise _fail(text, f"digest {digest!r} is not sha256:<64 lowercase hex>")

    tag = None
    colon, slash = remainder.rfind(":"), remainder.rfind("/")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _fail(text, f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")

    first, _, rest = remainder.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry, path = first, rest
        if not _DOMAIN.fullmatch(registry):
            raise _fail(text, f"registry host {registry!r} is not a valid host[:port]")
    else:
        registry, path = DOCKER_HUB, remainder
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"

    if not _PATH.fullmatch(path):
        raise _fail(
            text,
            f"repository {path!r} must be lowercase components of [a-z0-9] joined by '.', '_', '__' or '-'",
        )
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise _fail(text, f"name is longer than {_MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)


def is_repository_path(path: str) -> bool:
    """A repository path by the distribution grammar: lowercase components joined by '.', '_', '__' or '-'."""
    return _PATH.fullmatch(path) is not None


def is_repository_name(path: str) -> bool:
    """A repository path a registry accepts as a name: the grammar, and at most 255 characters."""
    return len(path) <= _MAX_NAME and is_repository_path(path)


def is_tag(tag: str) -> bool:
    """A tag by the distribution grammar: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`."""
    return _TAG.fullmatch(tag) is not None


def check_repository_path(path: str, where: str) -> str:
    if not is_repository_path(path):
        raise ReferenceError_(f"{where}: {path!r} is not a valid repository path")
    return path
