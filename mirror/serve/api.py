"""The read side of the distribution API over the verified view: what to answer a request, HTTP aside.

GET and HEAD of `/v2/`, manifests by tag and digest, blobs (one byte range at most), `tags/list` and `_catalog`
(`n`/`last` pages with a `Link` to the next), and the referrers API (OCI 1.1, `artifactType` filter). Every other
method is refused (405 UNSUPPORTED); errors are `{"errors": [{"code", "message"}]}`. See docs/serve.md.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from mirror.limits import Limits
from mirror.oci import mediatypes as mt
from mirror.oci.digest import is_digest
from mirror.oci.reference import is_tag
from mirror.oci.referrers import referrers_index
from mirror.serve.content import BlobStore
from mirror.serve.routes import Endpoint, Route, parse_route
from mirror.serve.view import Repository, View

READ_METHODS = ("GET", "HEAD")
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")  # at most 19 digits: below 2**63, as HTTP servers read
_PAGE_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class BlobSlice:
    """Bytes [first, last] of a verified blob, to stream (and hash) from the bundle."""

    digest: str
    size: int
    first: int
    last: int


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    blob: BlobSlice | None = None  # streamed instead of `body`

    @property
    def length(self) -> int:
        return self.blob.last - self.blob.first + 1 if self.blob is not None else len(self.body)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return Answer(status, {"Content-Type": "application/json", **(headers or {})}, body)


def changed_on_disk(digest: str) -> Answer:
    return error(500, "UNKNOWN", f"blob {digest} changed on disk since serve verified it; it is not served")


def _json(body: object, headers: dict[str, str] | None = None) -> Answer:
    return Answer(200, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode())


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """A single `bytes=` range as (first, last) within the blob; None for no range, or one not understood (the
    whole blob is answered, as HTTP allows); False for a range that lies outside the blob (416)."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        return (max(0, size - suffix), size - 1) if suffix and size else False
    first = int(match[1])
    if first >= size:
        return False
    last = min(int(match[2]), size - 1) if match[2] else size - 1
    return (first, last) if first <= last else None


class Registry:
    """The answers of one verified view."""

    def __init__(self, view: View, limits: Limits, *, bundles: int = 1) -> None:
        self.view = view
        self.store = BlobStore(view.blobs)
        self.limits = limits
        self.bundles = bundles

    def answer(self, method: str, target: str, range_header: str | None = None) -> Answer:
        if method not in READ_METHODS:
            return error(
                405, "UNSUPPORTED", f"mirror serve is read-only: {method} is not served", {"Allow": "GET, HEAD"}
            )
        route = parse_route(target, self.limits.serve_max_path_chars)
        if route.endpoint is Endpoint.BASE:
            return _json({})
        if route.endpoint is Endpoint.CATALOG:
            return self._page(sorted(self.view.repositories), route, "/v2/_catalog", "repositories", {})
        if route.endpoint is Endpoint.UNKNOWN:
            return error(404, "UNSUPPORTED", "not an endpoint of the distribution API that mirror serve answers")
        repository = self.view.repositories.get(route.name)
        if repository is None:
            return error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if route.endpoint is Endpoint.TAGS:
            return self._page(
                sorted(repository.tags), route, f"/v2/{route.name}/tags/list", "tags", {"name": route.name}
            )
        if route.endpoint is Endpoint.MANIFEST:
            return self._manifest(repository, route.reference)
        if route.endpoint is Endpoint.BLOB:
            return self._blob(repository, route.reference, range_header)
        return self._referrers(repository, route)

    def _page(self, items: list[str], route: Route, path: str, key: str, fields: dict[str, str]) -> Answer:
        """One page of `items` (sorted): at most `n` of them after `last`, and a Link to the next when more."""
        limit = self.limits.serve_max_page_entries
        asked = route.query.get("n")
        if asked is not None and not _PAGE_NUMBER.fullmatch(asked):
            return error(400, "PAGINATION_NUMBER_INVALID", f"n must be a number of entries, at most {limit}")
        count = min(int(asked), limit) if asked is not None else limit
        last = route.query.get("last")
        start = bisect.bisect_right(items, last) if last else 0
        page = items[start : start + count]
        headers = {}
        if page and start + count < len(items):
            headers["Link"] = f'<{path}?{urlencode({"n": count, "last": page[-1]})}>; rel="next"'
        return _json({**fields, key: page}, headers)

    def _manifest(self, repository: Repository, reference: str) -> Answer:
        if is_digest(reference):
            digest = reference if reference in repository.manifests else None
        else:
            digest = repository.tags.get(reference) if is_tag(reference) else None
        if digest is None:
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown to registry")
        document = self.view.manifests[digest]
        headers = {"Content-Type": document.media_type, "Docker-Content-Digest": digest, "ETag": f'"{digest}"'}
        return Answer(200, headers, document.raw)

    def _blob(self, repository: Repository, digest: str, range_header: str | None) -> Answer:
        stored = self.store.get(digest) if digest in repository.blobs else None
        document = self.view.manifests.get(digest) if digest in repository.manifests else None
        if stored is None and document is None:
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if self.store.changed(digest):
            return changed_on_disk(digest)
        size = len(document.raw) if document is not None else stored.size if stored is not None else 0
        headers = {
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest,
            "ETag": f'"{digest}"',
            "Accept-Ranges": "bytes",
        }
        status, (first, last) = 200, (0, size - 1)
        wanted = parse_range(range_header, size)
        if wanted is False:
            return error(416, "UNSUPPORTED", "the range lies outside the blob", {"Content-Range": f"bytes */{size}"})
        if isinstance(wanted, tuple):
            status, (first, last) = 206, wanted
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        if document is not None:  # a manifest asked for as a blob: its verified bytes, from memory
            return Answer(status, headers, document.raw[first : last + 1])
        return Answer(status, headers, blob=BlobSlice(digest, size, first, last))

    def _referrers(self, repository: Repository, route: Route) -> Answer:
        if not is_digest(route.reference):
            return error(400, "DIGEST_INVALID", "not a sha256 digest")
        descriptors = repository.referrers.get(route.reference, [])
        headers = {"Content-Type": mt.OCI_INDEX}
        artifact_type = route.query.get("artifactType")
        if artifact_type:
            descriptors = [d for d in descriptors if d.get("artifactType") == artifact_type]
            headers["OCI-Filters-Applied"] = "artifactType"
        return Answer(200, headers, referrers_index(descriptors))
