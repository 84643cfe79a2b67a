"""The egress policy: which hosts the collector may contact, and the record of every host it did contact.

See docs/collector.md ("Egress").
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from mirror.errors import TransferError, UsageError
from mirror.terminal import escape

INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",  # loopback
        "::1/128",
        "0.0.0.0/8",  # "this host": connecting to 0.0.0.0 reaches loopback
        "::/128",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "fe80::/10",
        "10.0.0.0/8",  # private
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT, overlay networks)
    )
)

Resolver = Callable[[str], list[str]]


def resolve_addresses(hostname: str) -> list[str]:
    """Every address `hostname` resolves to (itself when it is an address); empty when it does not resolve."""
    try:
        return [str(ipaddress.ip_address(hostname.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in INTERNAL_NETWORKS)


def split_host(netloc: str) -> tuple[str, int | None]:
    """`host[:port]` (IPv6 in brackets) → (lower-case host name, port or None)."""
    try:
        parts = urlsplit(f"//{netloc}")
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return netloc.lower(), None


def url_host(url: str) -> str:
    """The `host[:port]` of a URL (`oci://` and registry references included), lower-case."""
    text = url if "://" in url else f"//{url}"
    try:
        return urlsplit(text).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""


def is_plain_http(url: str) -> bool:
    """A URL whose requests go in clear text (`http://`); git's own `git://` protocol is clear text too."""
    return url.split("://", 1)[0].lower() in ("http", "git") if "://" in url else False


@dataclass(frozen=True)
class HostPattern:
    host: str  # lower-case; may hold fnmatch globs (`*.example.com`)
    port: int | None  # None: any port

    def matches(self, hostname: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        return fnmatch.fnmatchcase(hostname, self.host)

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def parse_host_pattern(text: str, where: str) -> HostPattern:
    """`host[:port]` with globs in the host: no scheme, path, credentials or whitespace."""
    if not text or any(c in text for c in "/@ \t\r\n?#\\") or "://" in text:
        raise UsageError(f"{where}: {text!r} is not host[:port] (globs allowed, e.g. *.example.com)")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest else ""
        if rest and not rest.startswith(":"):
            raise UsageError(f"{where}: {text!r} is not [ipv6][:port]")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise UsageError(f"{where}: {text!r} has no host")
    port = None
    if port_text:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"{where}: {text!r} has no valid port")
        port = int(port_text)
    return HostPattern(host.lower(), port)


@dataclass(frozen=True)
class Contact:
    host: str  # host[:port] as contacted
    how: str  # named, allowed, discovered, redirect, token realm, tag list link, chart archive
    plain_http: bool = False  # some request to it went over http://, readable by anyone on the path

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"host": self.host, "how": self.how}
        if self.plain_http:
            body["plainHTTP"] = True
        return body


class EgressRefusedError(UsageError):
    """A host the egress policy does not allow; exit 2, every refused host listed."""


def redirect_target(current: str, location: str) -> str:
    """The absolute URL a redirect's Location names; a TransferError (not retried) for a scheme not http(s)."""
    try:
        parts = urlsplit(location)
        scheme = parts.scheme.lower()
    except ValueError:
        scheme, parts = "?", None
    if scheme and scheme not in ("http", "https"):
        raise TransferError(
            f"{url_host(current) or current}: redirects to {escape(location)}, which is not an http(s) URL",
            hint="mirror follows redirects to http:// and https:// only; the upstream is misconfigured or hostile",
        )
    try:
        return str(httpx.URL(current).join(location))
    except (httpx.InvalidURL, ValueError) as exc:
        raise TransferError(f"{url_host(current)}: redirects to {escape(location)}, not a valid URL") from exc


class EgressPolicy:
    """Thread-safe: the clients of a run share one policy and record into it."""

    def __init__(
        self,
        named: Iterable[str] = (),
        allowed: Iterable[HostPattern] = (),
        *,
        allow_discovered: bool = False,
        resolver: Resolver = resolve_addresses,
    ) -> None:
        self._named = [parse_host_pattern(h, "named host") for h in dict.fromkeys(h.lower() for h in named if h)]
        self._allowed = list(allowed)
        self._named_hostnames = {p.host for p in self._named}
        self.allow_discovered = allow_discovered
        self._resolve = resolver
        self._lock = threading.Lock()
        self._contacts: dict[str, Contact] = {}
        self._internal_by_name: dict[str, list[str]] = {}

    # -- classification --------------------------------------------------------------------------------------

    def _named_entry(self, netloc: str) -> bool:
        hostname, port = split_host(netloc)
        return any(p.matches(hostname, port) for p in self._named)

    def _allowed_entry(self, netloc: str) -> bool:
        hostname, port = split_host(netloc)
        return any(p.matches(hostname, port) for p in self._allowed)

    def explicit(self, netloc: str) -> bool:
        return self._named_entry(netloc) or self._allowed_entry(netloc)

    def _internal_addresses(self, netloc: str) -> list[str]:
        hostname, _ = split_host(netloc)
        with self._lock:
            known = self._internal_by_name.get(hostname)
        if known is None:  # once per name and run: a CDN that every blob redirects to is resolved once
            known = [a for a in self._resolve(hostname) if is_internal(a)]
            with self._lock:
                self._internal_by_name[hostname] = known
        return known

    # -- checks ----------------------------------------------------------------------------------------------

    def discovered_problem(self, netloc: str, led_by: str) -> str | None:
        """Why a host reached through discovery may not be contacted (None: it may), naming what led there."""
        netloc = netloc.lower()
        if self.explicit(netloc):
            return None
        shown = escape(netloc)
        if not self.allow_discovered:
            return f"{shown}: not named in the MirrorSet (reached through {escape(led_by)})"
        hostname, _ = split_host(netloc)
        internal = [] if hostname in self._named_hostnames else self._internal_addresses(netloc)
        if internal:
            return (
                f"{shown}: an internal address ({', '.join(internal)}), reached through {escape(led_by)}; "
                "--allow-discovered-hosts does not cover loopback, link-local or private addresses"
            )
        return None

    def require_discovered(self, items: Iterable[tuple[str, str]]) -> None:
        """Refuse (exit 2) every (host, what led there) not allowed, all listed in one error."""
        problems = list(dict.fromkeys(p for p in (self.discovered_problem(h, w) for h, w in items) if p))
        if problems:
            raise EgressRefusedError(
                f"{len(problems)} host(s) outside the egress policy",
                problems=problems,
                hint="name them in the MirrorSet's spec.allowedHosts: [host[:port], …] (globs allowed), or pass "
                "--allow-discovered-hosts for public hosts found through discovery",
            )

    def check_followed(self, source: str, target: str, how: str) -> None:
        """A host chosen by `source` (a redirect, a token realm, an archive URL); raises when it may not be used."""
        source_host, target_host = url_host(source), url_host(target)
        if split_host(source_host)[0] != split_host(target_host)[0] and not self.explicit(target_host):
            internal = self._internal_addresses(target_host)
            if internal:
                raise EgressRefusedError(
                    f"{escape(source_host)}: sends the collector to {escape(target)} ({how}), an internal address "
                    f"({', '.join(internal)})",
                    hint=f"if that is meant, add {escape(target_host)} to the MirrorSet's spec.allowedHosts",
                )
        self.record(target_host, how, plain_http=is_plain_http(target))

    def check_contact(self, netloc: str) -> None:
        """The last line, where a registry client is opened: a host no check above allowed is refused."""
        self.require_discovered([(netloc, "a source the collector was about to contact")])

    # -- the record ------------------------------------------------------------------------------------------

    def record(self, netloc: str, how: str | None = None, *, plain_http: bool = False) -> None:
        """The first way a host came to be contacted; plain HTTP once is plain HTTP (the officer's report says so)."""
        netloc = netloc.lower()
        if not netloc:
            return
        with self._lock:
            known = self._contacts.get(netloc)
            if known is not None:
                if plain_http and not known.plain_http:
                    self._contacts[netloc] = Contact(known.host, known.how, True)
                return
            if self._named_entry(netloc):
                how = "named"
            elif self._allowed_entry(netloc):
                how = "allowed"
            self._contacts[netloc] = Contact(netloc, how or "discovered", plain_http)

    @property
    def contacts(self) -> list[Contact]:
        with self._lock:
            return sorted(self._contacts.values(), key=lambda c: c.host)


def open_policy() -> EgressPolicy:
    """A policy that allows every host and records nothing of interest: for library callers without a MirrorSet."""
    return EgressPolicy(allowed=[HostPattern("*", None)])
