"""Registry authentication: the WWW-Authenticate challenge, Basic, and Bearer tokens cached per scope (an auth
file's identity token exchanged in an OAuth2 refresh-token grant), a new scope's token asked for before its first
request once the registry has named its realm (docs/collector.md, "The registry client")."""

from __future__ import annotations

import base64
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx

from mirror.credentials import Credentials
from mirror.egress import EgressPolicy
from mirror.errors import MirrorError, RegistryHTTPError
from mirror.limits import Limits
from mirror.netguard import Pace, paced
from mirror.oci.document import bounded_json
from mirror.proxy import CARRIES_CREDENTIALS
from mirror.registry.endpoint import Endpoint
from mirror.registry.retry import transport_failure
from mirror.terminal import escape

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
# Tokens are renewed this long before they expire, so a long upload does not start with a dying token.
_EXPIRY_MARGIN_S = 10.0
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _lifetime(expires_in: object) -> float:
    """A token's `expires_in` in seconds (60 when absent); a ValueError when it is not a finite number.

    JSON gives `1e400` as inf and `NaN` as nan, and an integer of 400 digits does not fit a float: an infinite
    lifetime would keep a token forever, and the overflow escaped as an uncaught OverflowError.
    """
    if expires_in is None:
        return 60.0
    try:
        seconds = float(expires_in)  # type: ignore[arg-type]  # anything else is a TypeError or ValueError
    except OverflowError as exc:
        raise ValueError("expires_in is too large a number") from exc
    if not math.isfinite(seconds):
        raise ValueError("expires_in is not a finite number")
    return seconds


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in params.items()}
    return Challenge(scheme.lower(), params)


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


Scope = tuple[str, ...]
# The credentials for one repository (as named on the registry; "" for requests about no repository).
CredentialLookup = Callable[[str], Credentials | None]
# Sent as the OAuth2 client_id of a refresh-token grant, as containers/image sends "containers/image".
OAUTH_CLIENT_ID = "mirror"


def scope_repository(scope: Scope) -> str:
    """The repository a request is about: its first scope's (the one written to, for a cross-repository mount)."""
    for item in scope:
        kind, _, rest = item.partition(":")
        if kind == "repository":
            return rest.rpartition(":")[0]
    return ""


class Authenticator:
    """Answers challenges for one endpoint. Thread-safe; tokens are reused until shortly before expiry.

    Once the registry has sent a Bearer challenge and it was answered with a token, a request for a scope with no
    token yet asks that challenge's realm and service first (as docker and containers/image do), instead of
    meeting a 401 of its own. The token request is the one the 401 would have led to: same realm, service, scope
    and credentials, under every rule of _fetch_token. When it fails in any way the request goes without it, and
    the registry's 401 is answered as if nothing had been anticipated.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials | CredentialLookup | None,
        http: httpx.Client,
        limits: Limits,
        egress: EgressPolicy | None = None,
    ) -> None:
        """credentials: one set for every repository, or a lookup by repository (auth file keys may name one)."""
        self._endpoint = endpoint
        self._egress = egress
        self._lookup = credentials if callable(credentials) else None
        self._found: dict[str, Credentials | None] = {} if callable(credentials) else {"": credentials}
        self._http = http
        self._limits = limits
        self._lock = threading.Lock()
        self._basic: dict[str, str] = {}  # repository -> the Basic header its credentials make
        self._tokens: dict[Scope, tuple[str, float]] = {}
        # The realm and service of the last Bearer challenge from the registry that a token answered; None until
        # then, and again after a Basic challenge (a Basic registry keeps its one shared header).
        self._bearer: Challenge | None = None
        # Scopes whose anticipated token request failed: not anticipated again (a repository served without auth
        # would otherwise cost a refused token request per request).
        self._unanticipated: set[Scope] = set()
        self.token_requests = 0  # every token request the token service answered, anticipated or not
        self.anticipated_token_failures = 0

    def _credentials_for(self, repository: str) -> Credentials | None:
        if self._lookup is None:
            return self._found[""]
        with self._lock:
            if repository in self._found:
                return self._found[repository]
        found = self._lookup(repository)  # outside the lock: a credential helper may take a while
        with self._lock:
            self._found[repository] = found
        return found

    def cached_header(self, scope: Scope) -> str | None:
        key = scope_repository(scope) if self._lookup is not None else ""
        with self._lock:
            if key in self._basic:
                return self._basic[key]
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            return None

    def first_header(self, scope: Scope) -> str | None:
        """The Authorization header for a request's first try: a cached one, else an anticipated token."""
        return self.cached_header(scope) or self._anticipate(scope)

    def _anticipate(self, scope: Scope) -> str | None:
        with self._lock:
            challenge = self._bearer
            if challenge is None or scope in self._unanticipated:
                return None
        key = scope_repository(scope) if self._lookup is not None else ""
        try:
            # Outside the lock: several threads reaching one new scope at once may each fetch its token. The
            # credentials lookup is inside the try too: one that fails is met again, as today, only if the
            # registry asks.
            return self._fetch_token(challenge, scope, self._credentials_for(key))
        except (MirrorError, httpx.HTTPError):
            # Today's path decides: the request goes without a token, and the registry's 401 (if any) is answered
            # from its own challenge, so an error the user sees is the one that path raises. Nothing is shown here:
            # the refusal may quote what was sent.
            with self._lock:
                self.anticipated_token_failures += 1
                self._unanticipated.add(scope)
            return None

    def answer(self, response: httpx.Response, scope: Scope, sent: str | None) -> str:
        """Return the Authorization header that answers this 401, fetching a token when needed.

        `sent` is the header the refused request carried: Basic credentials refused once are refused for good.
        """
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise self._denied(response.status_code, "an authentication scheme mirror does not support")
        key = scope_repository(scope) if self._lookup is not None else ""
        credentials = self._credentials_for(key)
        if challenge.scheme == "basic":
            if credentials is None or not (credentials.username or credentials.password):
                raise self._denied(response.status_code, "credentials, and none are configured")
            header = basic_header(credentials)
            if sent == header:
                raise self._denied(response.status_code, "valid credentials; the configured ones were refused")
            with self._lock:
                self._basic[key] = header
                self._bearer = None
            return header
        header = self._fetch_token(challenge, scope, credentials)
        known: dict[str, str] = {n: challenge.params[n] for n in ("realm", "service") if n in challenge.params}
        with self._lock:
            self._bearer = Challenge("bearer", known)
        return header

    def refused(self, response: httpx.Response) -> RegistryHTTPError:
        """The error for a 401 that persists after the challenge was answered: credentials wrong or insufficient."""
        return self._denied(
            response.status_code, "credentials with access to this repository; the ones sent were refused"
        )

    def _may_send_credentials_to(self, realm: str) -> bool:
        """Whether the registry's credentials go with the token request to `realm`.

        The realm is named by the registry the credentials are for, which could as well ask for them itself with
        a Basic challenge: an https realm gets them wherever it is (Docker Hub's registry-1.docker.io sends clients
        to auth.docker.io). A plain-HTTP realm gets them only on the registry's own host name, and only when the
        operator chose plain HTTP for that registry: never in clear text to another host, never downgraded.
        """
        parts = urlsplit(realm)
        if parts.scheme == "https":
            return True
        own = urlsplit(self._endpoint.base_url).hostname
        return self._endpoint.scheme == "http" and (parts.hostname or "").lower() == (own or "").lower()

    def _fetch_token(self, challenge: Challenge, scope: Scope, credentials: Credentials | None) -> str:
        """The Bearer header for `scope` from the challenge's realm; a refusal is the error for the registry's 401."""
        realm = challenge.params.get("realm", "")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise self._denied(401, f"a token from realm {escape(realm)}, which is not an http(s) URL")
        if self._egress is not None:
            self._egress.check_followed(self._endpoint.base_url, realm, "token realm")
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        for item in scope:
            params.append(("scope", item))
        usable = credentials is not None and self._may_send_credentials_to(realm)
        refresh = credentials.identity_token if usable and credentials is not None else ""
        method, content, headers, extensions = "GET", None, {}, {}
        query: list[tuple[str, str | int | float | bool | None]] = list(params)
        if refresh:
            # distribution's OAuth2 token spec: the refresh token in a POSTed form, never in the URL.
            form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                *params,
                ("client_id", OAUTH_CLIENT_ID),
            ]
            method, content = "POST", urlencode(form).encode()
            extensions[CARRIES_CREDENTIALS] = True  # never through a proxy in clear text (mirror.proxy)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            query = []
        elif usable and credentials is not None and (credentials.username or credentials.password):
            headers["Authorization"] = basic_header(credentials)
        # A token answer is a small document: whole within the deadline, like a manifest.
        pace = Pace.document(f"token from {urlsplit(realm).netloc} for {self._endpoint.host}", self._limits)
        try:
            with (
                paced(pace),
                self._http.stream(
                    method, realm, params=query, headers=headers, content=content, extensions=extensions
                ) as token_response,
            ):
                body = b""
                for chunk in token_response.iter_bytes():
                    body += chunk
                    if len(body) > self._limits.max_token_response_bytes:
                        raise self._denied(401, "a token, and the token service sent an oversized answer")
        except httpx.TransportError as exc:
            where = f"the token service {urlsplit(realm).netloc} for {self._endpoint.host}"
            raise transport_failure(exc, where) from exc
        with self._lock:
            self.token_requests += 1
        if token_response.status_code in (401, 403) or (refresh and token_response.status_code == 400):
            what = "the auth file's identity token (a refresh token)" if refresh else "them"
            raise self._denied(token_response.status_code, f"valid credentials; the token service refused {what}")
        if token_response.status_code != 200:
            raise RegistryHTTPError(
                f"token service {urlsplit(realm).netloc} answered {token_response.status_code}",
                status=token_response.status_code,
            )
        try:
            data = bounded_json(body, max_depth=self._limits.max_json_depth)
            token = data.get("token") or data.get("access_token")
            expires_in = _lifetime(data.get("expires_in"))
        except (ValueError, AttributeError, TypeError) as exc:
            raise RegistryHTTPError(
                f"the token service sent an unreadable answer ({escape(str(exc))})", status=200
            ) from exc
        if not isinstance(token, str) or not token:
            raise RegistryHTTPError("the token service sent no token", status=200)
        if not _BEARER_TOKEN.fullmatch(token):
            # RFC 6750's b64token: anything else cannot go in a header (a non-ASCII one crashed the encoder).
            raise RegistryHTTPError(
                f"the token service {urlsplit(realm).netloc} sent a string that is not a valid bearer token",
                status=200,
            )
        header = f"Bearer {token}"
        with self._lock:
            self._tokens[scope] = (header, time.monotonic() + max(0.0, expires_in - _EXPIRY_MARGIN_S))
        return header

    def _denied(self, status: int, needed: str) -> RegistryHTTPError:
        return RegistryHTTPError(
            f"{self._endpoint.host}: access denied ({status}); the registry requires {needed}",
            status=status,
            codes=("UNAUTHORIZED",),
            hint="set credentials in a containers auth file (REGISTRY_AUTH_FILE, else podman's "
            "$XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json, "
            "~/.dockercfg), or MIRROR_REGISTRY_USERNAME/MIRROR_REGISTRY_PASSWORD for the import target",
        )
