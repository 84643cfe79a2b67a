"""An in-process registry for unit tests, served through ``httpx.MockTransport``.

It speaks enough of the distribution API for the registry client (manifests, DELETE by digest included, blobs
with Range, uploads, mounts, tag lists, Basic and Bearer auth; with ``referrers`` on, the OCI 1.1 referrers API
and the ``OCI-Subject`` header) and can be switched into the hostile or broken behaviours a real registry
rarely shows on demand: injected 429/503/connection failures, lying ``Docker-Content-Digest`` headers,
cross-host redirects, transfers that break after K bytes, oversized or endless bodies.

Every request that reaches any simulated host is appended to ``sim.requests``; token requests also go to
``sim.token_requests``. Requests for hosts the simulator does not serve fail like an unknown host.

Upload state is kept the way distribution 2.8 keeps it: the Location carries an opaque ``_state`` query
parameter, which may rotate on every PATCH; a request whose ``_state`` is missing or stale gets
404 BLOB_UPLOAD_INVALID. The upload status (GET on the Location) answers ``Range: 0-<size-1>``, and, like
distribution, ``0-0`` for an empty upload.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import httpx

from mirror.oci import mediatypes as mt
from mirror.oci.digest import sha256_digest

_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)/(?P<rest>.*)$")
_RANGE = re.compile(r"^bytes=(\d+)-$")
_UPLOAD = "uploads/"


class SimStream(httpx.SyncByteStream):
    """A response body yielded in pieces; optionally breaks (ReadError) after `break_after` bytes, or never ends."""

    def __init__(
        self,
        data: bytes,
        *,
        piece: int = 4096,
        break_after: int | None = None,
        endless: bool = False,
    ) -> None:
        self.data = data
        self.piece = piece
        self.break_after = break_after
        self.endless = endless
        self.yielded = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        position = 0
        while True:
            if self.endless and position >= len(self.data):
                chunk = b"\0" * self.piece
            else:
                chunk = self.data[position : position + self.piece]
                if not chunk:
                    return
            if self.break_after is not None and self.yielded + len(chunk) >= self.break_after:
                chunk = chunk[: self.break_after - self.yielded]
                if chunk:
                    self.yielded += len(chunk)
                    yield chunk
                raise httpx.ReadError("connection reset by peer (simulated)")
            position += len(chunk)
            self.yielded += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


@dataclass
class Fault:
    """Fail the next `remaining` matching registry requests with a status or a transport error."""

    remaining: int
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    error: type[httpx.TransportError] | None = None
    match: Callable[[httpx.Request], bool] | None = None


@dataclass
class Upload:
    repository: str
    data: bytearray = field(default_factory=bytearray)
    state: str = ""


def _error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    body = json.dumps({"errors": [{"code": code, "message": message or code.lower(), "detail": None}]})
    return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})}, content=body)


def _subject(raw: bytes) -> str | None:
    """The digest a manifest's `subject` names, if it has one."""
    try:
        subject = json.loads(raw).get("subject")
    except (ValueError, AttributeError):
        return None
    return subject.get("digest") if isinstance(subject, dict) else None


class RegistrySim:
    """One registry host (plus an optional token service and redirect target), all in memory."""

    def __init__(
        self,
        host: str = "reg.test",
        *,
        scheme: str = "https",
        token_host: str = "auth.test",
        redirect_host: str = "cdn.test",
    ) -> None:
        self.host = host
        self.scheme = scheme
        self.token_host = token_host
        self.redirect_host = redirect_host
        self.blobs: dict[str, dict[str, bytes]] = defaultdict(dict)
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = defaultdict(dict)
        self.uploads: dict[str, Upload] = {}
        self.requests: list[httpx.Request] = []
        self.token_requests: list[httpx.Request] = []
        self.streams: list[SimStream] = []
        self._ids = itertools.count(1)

        # -- auth ------------------------------------------------------------------------------------------
        self.auth: str | None = None  # None, "basic" or "bearer"
        self.users: dict[str, str] = {}
        self.anonymous_pull = True
        self.token_scheme = "https"
        self.token_key = "token"  # or "access_token"
        self.token_expires_in: float | None = 300
        self.token_body: bytes | None = None  # when set, the token service answers exactly this
        self.tokens: dict[str, set[tuple[str, str]]] = {}  # token -> granted (repository, action)
        # OAuth2 refresh tokens (an auth file's identitytoken) -> user: a POSTed refresh_token grant (distribution's
        # "oauth" token spec) answers as that user would be answered.
        self.refresh_tokens: dict[str, str] = {}
        # Called first for every token request: an answer (or a raised transport error) stands for the token
        # service's own; None lets it answer as above.
        self.token_answer: Callable[[httpx.Request], httpx.Response | None] | None = None
        self.public: set[str] = set()  # repositories served without auth, whatever `auth` says

        # -- faults and lies -------------------------------------------------------------------------------
        self.faults: list[Fault] = []
        self.manifest_digest_header: str | None = None  # a lying Docker-Content-Digest on manifest answers
        self.manifest_send_digest = True  # False: no Docker-Content-Digest header at all
        self.manifest_chunked = False  # serve manifests as a stream without Content-Length
        self.manifest_piece = 4096
        # Blob GETs answered with (status, Location template); the template may use {name} and {digest}.
        # Paths /same-origin/{name}/{digest} on the registry, and /blobs/{digest} on `redirect_host`, serve blobs.
        self.redirect_blobs: tuple[int, str] | None = None
        self.redirect_uploads: tuple[int, str] | None = None  # the same for the PUT that finishes an upload
        self.break_blob_after: list[int] = []  # each blob GET breaks after the next K bytes in this list
        self.ignore_range = False  # answer 200 with the whole blob to a Range request
        self.wrong_content_range = False  # answer 206 starting at another offset than asked
        self.blob_extra = b""  # bytes appended to every blob body
        self.blob_content_length: int | None = None  # announce this Content-Length instead of the real one
        self.blob_chunked = False  # serve blobs without Content-Length
        self.blob_endless = False  # blob bodies never end
        self.blob_piece = 4096
        self.rotate_state = True  # a fresh _state on every step of an upload; stale ones are refused
        self.absolute_location = False
        self.check_content_range = False  # distribution 2.8 does not check it; OCI registries may (416)
        self.break_patch: dict[int, int] = {}  # PATCH number n (from 1) keeps only K bytes, then the connection drops
        self.patches = 0
        self.mount_allowed = True
        self.put_blob_digest_header: str | None = None  # a lying Docker-Content-Digest on blob PUT
        self.put_manifest_digest_header: str | None = None
        # OCI 1.1 referrers: off, the registry is distribution 2.8 (the referrers path answers 404 page not found,
        # a PUT names no OCI-Subject); on, the API answers an index of the manifests whose subject is the digest.
        self.referrers = False
        self.referrers_body: bytes | None = None  # when set, the referrers API answers exactly this
        self.catalog = True  # GET /v2/_catalog lists the repositories; off, it answers 404 as some registries do
        # tags/list in pages of at most this many tags, `Link: <…?n=N&last=T>; rel="next"` to the next one, as
        # distribution 3 pages them (2.8 lists every tag at once); None: one page. A client's `n` below it wins.
        self.tags_page_size: int | None = None
        self.on_request: Callable[[httpx.Request], None] | None = None  # called first for every request
        # Headers added to every answer of the registry host (e.g. Docker Hub's ratelimit-remaining), per request.
        self.answer_headers: Callable[[httpx.Request], dict[str, str]] | None = None
        # Manifest DELETE by digest (202, the tags on it go too); off, 405 UNSUPPORTED as distribution answers
        # with storage.delete disabled, checked before whether the manifest exists.
        self.deletes_enabled = True
        self.user_actions: tuple[str, ...] = ("pull", "push", "delete")  # what the token service grants a user

    # -- wiring ------------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def realm(self) -> str:
        return f"{self.token_scheme}://{self.token_host}/token"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- content -----------------------------------------------------------------------------------------------

    def add_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        self.blobs[repository][digest] = data
        return digest

    def add_manifest(
        self, repository: str, raw: bytes, media_type: str = mt.OCI_MANIFEST, tag: str | None = None
    ) -> str:
        digest = sha256_digest(raw)
        self.manifests[repository][digest] = (raw, media_type)
        if tag:
            self.manifests[repository][tag] = (raw, media_type)
        return digest

    def add_artifact(self, repository: str, manifest: bytes, blobs: Mapping[str, bytes], tag: str | None = None) -> str:
        """An OCI manifest and the blobs it names (digest → bytes), as a client pushes them."""
        for data in blobs.values():
            self.add_blob(repository, data)
        return self.add_manifest(repository, manifest, mt.OCI_MANIFEST, tag=tag)

    # -- switches ----------------------------------------------------------------------------------------------

    def fail(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: str | None = None,
        error: type[httpx.TransportError] | None = None,
        match: Callable[[httpx.Request], bool] | None = None,
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.faults.append(Fault(count, status, headers, error, match))

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    # -- inspection --------------------------------------------------------------------------------------------

    def to_host(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]

    def registry_requests(self, method: str | None = None, kind: str | None = None) -> list[httpx.Request]:
        found = [r for r in self.requests if r.url.netloc.decode() == self.host]
        if method:
            found = [r for r in found if r.method == method]
        if kind:
            found = [r for r in found if f"/{kind}/" in r.url.path]
        return found

    # -- dispatch ----------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        response = self._answer(request)
        if self.answer_headers is not None and request.url.netloc.decode() == self.host:
            response.headers.update(self.answer_headers(request))
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        netloc = request.url.netloc.decode()
        if request.url.host == self.token_host:
            return self._token(request)
        if request.url.host == self.redirect_host:
            return self._redirected_blob(request)
        if netloc != self.host:
            raise httpx.ConnectError(f"[Errno -2] Name or service not known: {netloc}", request=request)
        for fault in self.faults:
            if fault.remaining > 0 and (fault.match is None or fault.match(request)):
                fault.remaining -= 1
                if fault.error is not None:
                    raise fault.error("[Errno 111] Connection refused (simulated)", request=request)
                return _error(
                    fault.status, "TOOMANYREQUESTS" if fault.status == 429 else "UNAVAILABLE", headers=fault.headers
                )
        path = request.url.path
        if path == "/v2/":
            denied = self._authorize(request, None, ())
            return denied or httpx.Response(200, json={})
        if path == "/v2/_catalog":
            return self._catalog(request)
        if path.startswith("/same-origin/"):
            return self._serve_blob(request, path.rsplit("/", 1)[-1], None)
        m = _PATH.match(path)
        if not m:
            return _error(404, "NOT_FOUND", path)
        name, kind, rest = m["name"], m["kind"], m["rest"]
        if kind == "manifests":
            return self._manifests(request, name, rest)
        if kind == "tags" and rest == "list":
            return self._tags(request, name)
        if kind == "referrers":
            return self._referrers(request, name, rest)
        if kind != "blobs":
            return _error(404, "NOT_FOUND", path)
        if rest.startswith(_UPLOAD):
            return self._uploads(request, name, rest[len(_UPLOAD) :])
        return self._blobs(request, name, rest)

    # -- auth --------------------------------------------------------------------------------------------------

    def _authorize(
        self,
        request: httpx.Request,
        name: str | None,
        actions: tuple[str, ...],
        extra: tuple[tuple[str, str], ...] = (),
    ) -> httpx.Response | None:
        if self.auth is None or (name is not None and name in self.public and not extra):
            return None
        header = request.headers.get("authorization", "")
        if self.auth == "basic":
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "basic":
                user, _, password = base64.b64decode(value).decode().partition(":")
                if self.users.get(user) == password and user in self.users:
                    return None
            return _error(
                401,
                "UNAUTHORIZED",
                "authentication required",
                headers={"WWW-Authenticate": 'Basic realm="sim registry"'},
            )
        needed = {(name, a) for a in actions} if name else set()
        needed |= set(extra)
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token in self.tokens and needed <= self.tokens[token]:
            return None
        challenge = f'Bearer realm="{self.realm}",service="{self.host}"'
        if name:
            challenge += f',scope="repository:{name}:{",".join(actions)}"'
        return _error(401, "UNAUTHORIZED", "authentication required", headers={"WWW-Authenticate": challenge})

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        own = self.token_answer(request) if self.token_answer is not None else None
        if own is not None:
            return own
        if request.url.path != "/token":
            return httpx.Response(404)
        allowed: tuple[str, ...] = ()
        header = request.headers.get("authorization", "")
        params = request.url.params
        if request.method == "POST":
            form = httpx.QueryParams(request.content.decode())
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.refresh_tokens:
                return _error(401, "UNAUTHORIZED", "bad refresh token")
            allowed, params = self.user_actions, form
        elif header:
            scheme, _, value = header.partition(" ")
            user, _, password = base64.b64decode(value).decode().partition(":") if scheme == "Basic" else ("", "", "")
            if user not in self.users or self.users[user] != password:
                return _error(401, "UNAUTHORIZED", "bad credentials")
            allowed = self.user_actions
        elif self.anonymous_pull:
            allowed = ("pull",)
        if self.token_body is not None:
            return httpx.Response(200, content=self.token_body)
        granted: set[tuple[str, str]] = set()
        for scope in params.get_list("scope"):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository":
                granted |= {(name, a) for a in actions.split(",") if a in allowed}
        token = f"tok{next(self._ids)}"
        self.tokens[token] = granted
        answer: dict[str, object] = {self.token_key: token}
        if self.token_expires_in is not None:
            answer["expires_in"] = self.token_expires_in
        return httpx.Response(200, json=answer)

    # -- manifests ---------------------------------------------------------------------------------------------

    def _manifests(self, request: httpx.Request, name: str, reference: str) -> httpx.Response:
        if request.method in ("GET", "HEAD"):
            denied = self._authorize(request, name, ("pull",))
            if denied:
                return denied
            stored = self.manifests[name].get(reference)
            accept = request.headers.get("accept", "")
            if stored is None or stored[1] not in accept:
                return _error(404, "MANIFEST_UNKNOWN", f"{name}:{reference}")
            raw, media_type = stored
            headers = {"Content-Type": media_type}
            if self.manifest_send_digest:
                headers["Docker-Content-Digest"] = self.manifest_digest_header or sha256_digest(raw)
            if request.method == "HEAD":
                headers["Content-Length"] = str(len(raw))
                return httpx.Response(200, headers=headers)
            if not self.manifest_chunked:
                headers["Content-Length"] = str(len(raw))
            stream = SimStream(raw, piece=self.manifest_piece)
            self.streams.append(stream)
            return httpx.Response(200, headers=headers, stream=stream)
        if request.method == "PUT":
            denied = self._authorize(request, name, ("pull", "push"))
            if denied:
                return denied
            media_type = request.headers.get("content-type", "")
            if media_type not in mt.ALL_MANIFESTS:
                return _error(400, "MANIFEST_INVALID", f"unregistered Content-Type {media_type!r}")
            raw = request.content
            digest = self.add_manifest(name, raw, media_type)
            self.manifests[name][reference] = (raw, media_type)
            headers = {
                "Location": f"/v2/{name}/manifests/{digest}",
                "Docker-Content-Digest": self.put_manifest_digest_header or digest,
            }
            subject = _subject(raw)
            if self.referrers and subject:
                headers["OCI-Subject"] = subject
            return httpx.Response(201, headers=headers)
        if request.method == "DELETE":
            return self._delete_manifest(request, name, reference)
        return _error(405, "UNSUPPORTED")

    def _catalog(self, request: httpx.Request) -> httpx.Response:
        """Every repository holding a manifest, as distribution lists them (one page); 404 with `catalog` off."""
        if not self.catalog:
            return _error(404, "NOT_FOUND", "/v2/_catalog")
        denied = self._authorize(request, None, ())
        if denied:
            return denied
        return httpx.Response(200, json={"repositories": sorted(r for r, held in self.manifests.items() if held)})

    def _delete_manifest(self, request: httpx.Request, name: str, reference: str) -> httpx.Response:
        denied = self._authorize(request, name, ("delete",))
        if denied:
            return denied
        if not self.deletes_enabled:
            return _error(405, "UNSUPPORTED", "The operation is unsupported.")
        stored = self.manifests[name].get(reference)
        if not reference.startswith("sha256:") or stored is None:
            return _error(404, "MANIFEST_UNKNOWN", f"{name}@{reference}")
        for key in [k for k, (raw, _) in self.manifests[name].items() if sha256_digest(raw) == reference]:
            del self.manifests[name][key]
        return httpx.Response(202)

    def _tags(self, request: httpx.Request, name: str) -> httpx.Response:
        denied = self._authorize(request, name, ("pull",))
        if denied:
            return denied
        if not self.manifests.get(name):
            return _error(404, "NAME_UNKNOWN", name)
        tags = sorted(r for r in self.manifests[name] if not r.startswith("sha256:"))
        if self.tags_page_size is None:
            return httpx.Response(200, json={"name": name, "tags": tags})
        asked = request.url.params.get("n")
        size = min(int(asked), self.tags_page_size) if asked else self.tags_page_size
        last = request.url.params.get("last")
        page = [t for t in tags if last is None or t > last][:size]
        headers = {}
        if page and page[-1] != tags[-1]:
            headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={page[-1]}>; rel="next"'
        return httpx.Response(200, json={"name": name, "tags": page}, headers=headers)

    def _referrers(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        if not self.referrers:
            return httpx.Response(404, headers={"Content-Type": "text/plain"}, content=b"404 page not found\n")
        denied = self._authorize(request, name, ("pull",))
        if denied:
            return denied
        headers = {"Content-Type": mt.OCI_INDEX}
        if self.referrers_body is not None:
            return httpx.Response(200, headers=headers, content=self.referrers_body)
        wanted = request.url.params.get("artifactType")
        descriptors = []
        for reference, (raw, media_type) in sorted(self.manifests[name].items()):
            if not reference.startswith("sha256:") or _subject(raw) != digest:
                continue
            body = json.loads(raw)
            artifact_type = body.get("artifactType") or body.get("config", {}).get("mediaType")
            if wanted and artifact_type != wanted:
                continue
            descriptor = {"mediaType": media_type, "digest": reference, "size": len(raw)}
            if artifact_type:
                descriptor["artifactType"] = artifact_type
            if body.get("annotations"):
                descriptor["annotations"] = body["annotations"]
            descriptors.append(descriptor)
        if wanted:
            headers["OCI-Filters-Applied"] = "artifactType"
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
        return httpx.Response(200, headers=headers, content=json.dumps(index).encode())

    # -- blobs -------------------------------------------------------------------------------------------------

    def _blobs(self, request: httpx.Request, name: str, digest: str) -> httpx.Response:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED")
        denied = self._authorize(request, name, ("pull",))
        if denied:
            return denied
        if digest not in self.blobs[name]:
            return _error(404, "BLOB_UNKNOWN", digest)
        if request.method == "HEAD":
            size = len(self.blobs[name][digest])
            return httpx.Response(200, headers={"Content-Length": str(size), "Docker-Content-Digest": digest})
        if self.redirect_blobs is not None:
            status, template = self.redirect_blobs
            return httpx.Response(status, headers={"Location": template.format(name=name, digest=digest)})
        return self._serve_blob(request, digest, name)

    def _redirected_blob(self, request: httpx.Request) -> httpx.Response:
        """The redirect target: serves blob GETs, and accepts (without storing) redirected upload PUTs."""
        if request.method == "PUT":
            digest = request.url.params.get("digest", "")
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        digest = request.url.path.rsplit("/", 1)[-1]
        return self._serve_blob(request, digest, None)

    def _serve_blob(self, request: httpx.Request, digest: str, name: str | None) -> httpx.Response:
        repositories = [name] if name else list(self.blobs)
        data = next((self.blobs[r][digest] for r in repositories if digest in self.blobs[r]), None)
        if data is None:
            return _error(404, "BLOB_UNKNOWN", digest)
        data += self.blob_extra
        status, start = 200, 0
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
        wanted = _RANGE.match(request.headers.get("range", ""))
        if wanted and not self.ignore_range:
            start = int(wanted[1])
            if start >= len(data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            shown = start + 1 if self.wrong_content_range else start
            headers["Content-Range"] = f"bytes {shown}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if self.blob_content_length is not None:
            headers["Content-Length"] = str(self.blob_content_length)
        elif not (self.blob_chunked or self.blob_endless):
            headers["Content-Length"] = str(len(body))
        break_after = self.break_blob_after.pop(0) if self.break_blob_after else None
        stream = SimStream(body, piece=self.blob_piece, break_after=break_after, endless=self.blob_endless)
        self.streams.append(stream)
        return httpx.Response(status, headers=headers, stream=stream)

    # -- uploads -----------------------------------------------------------------------------------------------

    def _location(self, name: str, uuid: str, upload: Upload) -> str:
        path = f"/v2/{name}/blobs/uploads/{uuid}?_state={upload.state}"
        return f"{self.base_url}{path}" if self.absolute_location else path

    def _new_state(self, upload: Upload) -> None:
        if self.rotate_state or not upload.state:
            upload.state = f"state{next(self._ids)}"

    def _upload_headers(self, name: str, uuid: str, upload: Upload) -> dict[str, str]:
        # distribution answers 0-0 for an empty upload as well as for a one-byte one.
        return {
            "Location": self._location(name, uuid, upload),
            "Range": f"0-{max(len(upload.data) - 1, 0)}",
            "Docker-Upload-UUID": uuid,
            "Content-Length": "0",
        }

    def _uploads(self, request: httpx.Request, name: str, uuid: str) -> httpx.Response:
        params = request.url.params
        if request.method == "POST" and not uuid:
            mount, source = params.get("mount"), params.get("from")
            extra = ((source, "pull"),) if mount and source else ()
            denied = self._authorize(request, name, ("pull", "push"))
            if denied:
                return denied
            if mount and source:
                pull_ok = self.auth != "bearer" or self._authorize(request, name, ("pull", "push"), extra) is None
                if pull_ok and self.mount_allowed and mount in self.blobs[source]:
                    self.blobs[name][mount] = self.blobs[source][mount]
                    return httpx.Response(
                        201, headers={"Location": f"/v2/{name}/blobs/{mount}", "Docker-Content-Digest": mount}
                    )
            uuid = f"u{next(self._ids)}"
            upload = Upload(name)
            self._new_state(upload)
            self.uploads[uuid] = upload
            return httpx.Response(202, headers=self._upload_headers(name, uuid, upload))

        denied = self._authorize(request, name, ("pull", "push"))
        if denied:
            return denied
        upload = self.uploads.get(uuid)
        if upload is None or upload.repository != name or params.get("_state") != upload.state:
            return _error(404, "BLOB_UPLOAD_INVALID", "blob upload invalid (missing or stale _state)")
        if request.method == "GET":
            return httpx.Response(204, headers=self._upload_headers(name, uuid, upload))
        if request.method == "PATCH":
            self.patches += 1
            content_range = request.headers.get("content-range", "")
            if self.check_content_range:
                start, _, _ = content_range.partition("-")
                if not start.isdigit() or int(start) != len(upload.data):
                    return httpx.Response(416, headers=self._upload_headers(name, uuid, upload))
            body = request.content
            if self.patches in self.break_patch:
                keep = self.break_patch[self.patches]
                upload.data += body[:keep]
                raise httpx.WriteError("connection reset during the request body (simulated)", request=request)
            upload.data += body
            self._new_state(upload)
            return httpx.Response(202, headers=self._upload_headers(name, uuid, upload))
        if request.method == "PUT":
            if self.redirect_uploads is not None:
                status, template = self.redirect_uploads
                location = template.format(name=name, digest=params.get("digest", ""))
                return httpx.Response(status, headers={"Location": location})
            digest = params.get("digest")
            upload.data += request.content
            data = bytes(upload.data)
            if digest != sha256_digest(data):
                del self.uploads[uuid]
                return _error(400, "DIGEST_INVALID", f"content hashes to {sha256_digest(data)}, not {digest}")
            del self.uploads[uuid]
            self.blobs[name][digest] = data
            headers = {
                "Location": f"/v2/{name}/blobs/{digest}",
                "Docker-Content-Digest": self.put_blob_digest_header or digest,
            }
            return httpx.Response(201, headers=headers)
        if request.method == "DELETE":
            del self.uploads[uuid]
            return httpx.Response(204)
        return _error(405, "UNSUPPORTED")
