"""Where a registry host is really reached: scheme, API host, and an optional repository prefix.

See docs/collector.md ("Registry endpoints").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mirror.errors import UsageError
from mirror.oci.reference import DOCKER_HUB, check_repository_path

_DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class RegistrySettings:
    plain_http: bool = False
    endpoint: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class Endpoint:
    host: str
    scheme: str
    netloc: str
    repo_prefix: str = ""
    ca_file: str | None = None
    configured: bool = False  # from `registries.HOST.endpoint`: requests go to it, not to the host itself

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def url(self) -> str:
        """`scheme://host[:port][/prefix]`, as a target is written (and recorded in the import journal)."""
        return self.base_url + (f"/{self.repo_prefix}" if self.repo_prefix else "")

    def repository(self, repository: str) -> str:
        return f"{self.repo_prefix}/{repository}" if self.repo_prefix else repository


def parse_endpoint_url(url: str, where: str) -> tuple[str, str, str]:
    """Split `scheme://host[:port][/prefix]` into its parts, refusing credentials, queries and fragments."""
    try:
        parts = urlsplit(url)
        has_credentials = bool(parts.username or parts.password)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket; the message does not echo the URL
        raise UsageError(f"{where}: not a valid URL: {exc}") from exc
    # Checked first: the messages below echo the URL, which must never carry a secret.
    if has_credentials:
        raise UsageError(
            f"{where}: the URL must not carry credentials",
            hint="use the containers auth file or the MIRROR_REGISTRY_* variables instead",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where}: {url!r} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise UsageError(f"{where}: {url!r} must not have a query or fragment")
    prefix = parts.path.strip("/")
    if prefix:
        check_repository_path(prefix, where)
    return parts.scheme, parts.netloc, prefix


def endpoint_for(host: str, settings: RegistrySettings | None, default_ca: str | None = None) -> Endpoint:
    settings = settings or RegistrySettings()
    ca_file = settings.ca_file or default_ca
    if settings.endpoint:
        scheme, netloc, prefix = parse_endpoint_url(settings.endpoint, f"registries.{host}.endpoint")
        return Endpoint(host, scheme, netloc, prefix, ca_file, configured=True)
    scheme = "http" if settings.plain_http else "https"
    netloc = _DOCKER_HUB_API if host == DOCKER_HUB else host
    return Endpoint(host, scheme, netloc, "", ca_file)
