"""HTTP(S) proxies for the connected side: which upstream goes through which proxy, and how it is reached.

Opt-in only: `--proxy`, or the standard environment variables when MIRROR_USE_ENV_PROXY=1. See docs/collector.md
("Proxies") and docs/operator-guide.md.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from mirror.errors import TransferError, UsageError
from mirror.netguard import guarded_transport
from mirror.terminal import escape

ENV_OPT_IN = "MIRROR_USE_ENV_PROXY"
# A request extension marking a request whose body carries a credential (an OAuth2 refresh token in a POSTed form):
# through a proxy in clear text, it is refused as an Authorization header is.
CARRIES_CREDENTIALS = "mirror.carries_credentials"
# Upper case first, then lower case, as Go's net/http does; ALL_PROXY is not read (see the docs).
_HTTPS_VARIABLES = ("HTTPS_PROXY", "https_proxy")
_HTTP_VARIABLES = ("HTTP_PROXY", "http_proxy")
_NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name (ASCII, as DNS has it) or an IP address: what is shown of the proxy in every message needs no escaping.
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyServer:
    """One proxy. Its credentials go only into Proxy-Authorization (and git's http.proxy, through the environment)."""

    scheme: str  # http or https (TLS to the proxy itself)
    host: str  # lower-case; an IPv6 address without brackets
    port: int
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def shown(self) -> str:
        """The form every message, log line and report uses: never the credentials."""
        return f"{self.scheme}://{self.netloc}"

    def httpx_proxy(self, ssl_context: Any = None) -> httpx.Proxy:
        auth = (self.username, self.password) if self.username or self.password else None
        return httpx.Proxy(self.shown, auth=auth, ssl_context=ssl_context if self.scheme == "https" else None)

    def git_value(self) -> str:
        """The value of git's http.proxy: with the credentials, so it must only ever travel in the environment."""
        if not (self.username or self.password):
            return self.shown
        return f"{self.scheme}://{quote(self.username, safe='')}:{quote(self.password, safe='')}@{self.netloc}"

    def secrets(self) -> list[str]:
        """Every form of the password that could show up in a message: for redaction."""
        if not self.password:
            return []
        pair = f"{self.username}:{self.password}".encode()
        return [self.password, quote(self.password, safe=""), base64.b64encode(pair).decode("ascii")]


@dataclass(frozen=True)
class NoProxyEntry:
    """One entry of NO_PROXY (or --no-proxy)."""

    host: str  # lower-case, without a leading dot; "*": every host
    port: int | None = None  # None: any port
    network: IPNetwork | None = None  # an IP address or a CIDR range
    subdomains_only: bool = False  # ".example.com" (or "*.example.com"): below the domain, not the domain itself

    def matches(self, hostname: str, port: int) -> bool:
        if self.host == "*":
            return True
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                address = ipaddress.ip_address(hostname)
            except ValueError:
                return False
            return address in self.network
        if hostname == self.host:
            return not self.subdomains_only
        return hostname.endswith("." + self.host)


def parse_no_proxy(text: str, where: str) -> tuple[NoProxyEntry, ...]:
    """Comma-separated hosts, as curl and Go read NO_PROXY: `*`, a domain (and every host below it), `.domain`
    (only below it), an IP address, a CIDR range, each with an optional `:port`."""
    entries = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        if item == "*":
            entries.append(NoProxyEntry("*"))
            continue
        try:
            entries.append(NoProxyEntry(item, network=ipaddress.ip_network(item, strict=False)))
            continue
        except ValueError:
            pass
        host, port = _split_port(item, where)
        try:
            entries.append(NoProxyEntry(host, port, network=ipaddress.ip_network(host, strict=False)))
            continue
        except ValueError:
            pass
        host = host.removeprefix("*")  # "*.example.com" is ".example.com", as Go reads it
        subdomains_only = host.startswith(".")
        host = host.lstrip(".").rstrip(".")
        if not host or any(c in host for c in "/@ \t\r\n?#\\*"):
            raise UsageError(f"{where}: {escape(raw.strip())} is not a host, domain, IP address or CIDR range")
        entries.append(NoProxyEntry(host, port, subdomains_only=subdomains_only))
    return tuple(entries)


def _split_port(item: str, where: str) -> tuple[str, int | None]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
    else:
        return item, None
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise UsageError(f"{where}: {escape(item)} has no valid port")
    return host, int(port_text)


def parse_proxy_url(text: str, where: str) -> ProxyServer:
    """`http://[user:password@]host[:port]` (or https://, TLS to the proxy); no scheme means http://.

    Messages never echo the text: it may hold the proxy password.
    """
    candidate = text.strip()
    if "://" not in candidate:
        candidate = f"http://{candidate}"
    try:
        parts = urlsplit(candidate)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        # urlsplit's message quotes what it took for the port: the start of a password with an unencoded / # ?.
        raise UsageError(
            f"{where}: not a valid proxy URL (a port that is not a number, or an unclosed [)",
            hint="percent-encode / # ? @ : [ ] and % in the user name and password (e.g. / as %2F)",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UsageError(
            f"{where}: a {escape(scheme)}:// proxy is not supported",
            hint="give an HTTP proxy as http://host:port (https:// for TLS to the proxy itself)",
        )
    if not hostname:
        raise UsageError(f"{where}: the proxy URL has no host")
    if not _HOST_NAME.fullmatch(hostname):
        raise UsageError(f"{where}: the proxy's host is not a host name or an IP address")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"{where}: a proxy URL is scheme://[user:password@]host[:port], with no path")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in candidate):
        raise UsageError(f"{where}: the proxy URL contains whitespace or control characters")
    return ProxyServer(
        scheme,
        hostname.lower(),
        port if port is not None else _DEFAULT_PORTS[scheme],
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    )


@dataclass(frozen=True)
class ProxySettings:
    """The proxy for https:// upstreams, the one for http:// upstreams, and the hosts reached directly."""

    https: ProxyServer | None
    http: ProxyServer | None
    bypass: tuple[NoProxyEntry, ...] = ()

    def for_url(self, url: str | httpx.URL) -> ProxyServer | None:
        """The proxy a request to `url` goes through; None: straight to the host."""
        try:
            parts = urlsplit(str(url))
            hostname, port = (parts.hostname or "").lower().rstrip("."), parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        server = {"https": self.https, "http": self.http}.get(scheme)
        if server is None or not hostname:
            return None
        port = port if port is not None else _DEFAULT_PORTS[scheme]
        if any(entry.matches(hostname, port) for entry in self.bypass):
            return None
        return server

    @property
    def servers(self) -> list[ProxyServer]:
        return list(dict.fromkeys(s for s in (self.https, self.http) if s is not None))

    def secrets(self) -> list[str]:
        return [secret for server in self.servers for secret in server.secrets()]


def proxy_settings(
    proxy: str | None = None, no_proxy: str | None = None, env: Mapping[str, str] | None = None
) -> ProxySettings | None:
    """The run's proxies: `--proxy`/`--no-proxy`, over the environment's when MIRROR_USE_ENV_PROXY=1; None: none.

    Without the opt-in, HTTPS_PROXY, HTTP_PROXY and NO_PROXY are not read at all (a variable set for other
    programs must not route mirror's traffic, threat 29).
    """
    env = os.environ if env is None else env
    opt_in = env.get(ENV_OPT_IN, "")
    if opt_in not in ("", "0", "1"):
        raise UsageError(f"{ENV_OPT_IN}: {escape(opt_in)} is neither 1 nor 0")
    https = http = None
    bypass: tuple[NoProxyEntry, ...] = ()
    if opt_in == "1":
        https = _from_env(env, _HTTPS_VARIABLES, parse_proxy_url)
        http = _from_env(env, _HTTP_VARIABLES, parse_proxy_url)
        bypass = _from_env(env, _NO_PROXY_VARIABLES, parse_no_proxy) or ()
    if proxy is not None:
        https = http = parse_proxy_url(proxy, "--proxy")
    if no_proxy is not None:
        bypass = parse_no_proxy(no_proxy, "--no-proxy")
    if https is None and http is None:
        return None
    return ProxySettings(https, http, bypass)


def _from_env(env: Mapping[str, str], names: Iterable[str], parse: Callable[[str, str], Any]) -> Any:
    for name in names:
        value = env.get(name, "")
        if value.strip():
            return parse(value, name)
    return None


# -- httpx -----------------------------------------------------------------------------------------------------


class ClearTextThroughProxyError(UsageError):
    """An Authorization header that would cross a proxy in clear text (a plain-HTTP upstream): exit 2."""


class ProxyAuthenticationError(TransferError):
    """The proxy wants credentials, or refused those given (407): exit 4, not retried (the next try is the same)."""


class ProxyRouter(httpx.BaseTransport):
    """Each request straight to its host or through its proxy (settings.for_url), each way with its own pool.

    HTTPS goes through a CONNECT tunnel: TLS runs end to end, so the proxy sees the host and port only. Plain HTTP
    is forwarded by the proxy, which reads all of it: a request carrying Authorization is refused there.
    """

    def __init__(
        self,
        settings: ProxySettings,
        make: Callable[[httpx.Proxy | None], httpx.BaseTransport],
        *,
        proxy_ssl_context: Any = None,
        on_proxy: Callable[[ProxyServer], None] | None = None,
    ) -> None:
        self._settings = settings
        self._direct = make(None)
        self._through = {s: make(s.httpx_proxy(proxy_ssl_context)) for s in settings.servers}
        self._on_proxy = on_proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        server = self._settings.for_url(request.url)
        if server is None:
            return self._direct.handle_request(request)
        carries = "authorization" in request.headers or bool(request.extensions.get(CARRIES_CREDENTIALS))
        if request.url.scheme == "http" and carries:
            host = request.url.netloc.decode("ascii", "replace")
            raise ClearTextThroughProxyError(
                f"{escape(host)}: asks for credentials over plain HTTP, and the proxy {server.shown} would read "
                "them; mirror sends no credentials through a proxy in clear text",
                hint="reach the host over HTTPS (through the proxy: a tunnel the proxy cannot read), or directly: "
                "list it in --no-proxy (NO_PROXY with MIRROR_USE_ENV_PROXY=1)",
            )
        if self._on_proxy is not None:
            self._on_proxy(server)
        try:
            response = self._through[server].handle_request(request)
        except httpx.ProxyError as exc:  # the proxy's answer to CONNECT
            if str(exc).startswith("407"):
                raise _refused(server) from exc
            raise httpx.ProxyError(f"{exc}, from the proxy {server.shown}", request=request) from exc
        except httpx.TransportError as exc:  # same class (the retry policy maps it), the proxy named in its text
            raise type(exc)(f"{exc} (through the proxy {server.shown})", request=request) from exc
        if response.status_code == 407:  # a forwarded plain-HTTP request
            response.close()
            raise _refused(server)
        return response

    def close(self) -> None:
        self._direct.close()
        for transport in self._through.values():
            transport.close()


def _refused(server: ProxyServer) -> ProxyAuthenticationError:
    given = bool(server.username or server.password)
    return ProxyAuthenticationError(
        f"the proxy {server.shown} {'refused the proxy credentials given' if given else 'asks for credentials'} "
        "(407 Proxy Authentication Required)",
        hint="give them in the proxy URL, http://user:password@host:port (--proxy, or HTTPS_PROXY with "
        "MIRROR_USE_ENV_PROXY=1); they are sent to the proxy only, as Proxy-Authorization: Basic",
    )


def network_transport(
    proxy: ProxySettings | None, *, on_proxy: Callable[[ProxyServer], None] | None = None, **options: Any
) -> httpx.BaseTransport:
    """mirror.netguard's transport (options as httpx.HTTPTransport's), through `proxy` where it says so.

    An https:// proxy's own certificate is checked with the same CAs as the upstreams' (`verify`).
    """
    if proxy is None:
        return guarded_transport(**options)
    return ProxyRouter(
        proxy,
        lambda through: guarded_transport(proxy=through, **options),
        proxy_ssl_context=options.get("verify"),
        on_proxy=on_proxy,
    )


# -- git -------------------------------------------------------------------------------------------------------


def git_proxy_config(proxy: ProxySettings | None, origins: Iterable[str]) -> list[tuple[str, str]]:
    """git configuration (key, value) that sends each of `origins` (scheme://host[:port]) through its proxy.

    Scoped to each origin (http.<url>.proxy), so git's own choice matches for_url's; the values carry the proxy
    credentials, so they are handed to git in the environment (GIT_CONFIG_COUNT), never on its command line.
    """
    if proxy is None:
        return []
    config = []
    for origin in dict.fromkeys(origins):
        server = proxy.for_url(origin)
        if server is None:
            continue
        config.append((f"http.{origin}/.proxy", server.git_value()))
        if server.username or server.password:
            config.append((f"http.{origin}/.proxyAuthMethod", "basic"))  # sent at once, no 407 round trip
    return config
