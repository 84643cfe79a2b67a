"""One RegistryClient per registry host, created on first use and shared by worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import httpx

from mirror.credentials import Credentials, credentials_from_auth_file
from mirror.egress import EgressPolicy
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.proxy import ProxySettings
from mirror.registry.auth import CredentialLookup
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint, RegistrySettings, endpoint_for
from mirror.registry.known import ManifestStore


def _auth_file_lookup(endpoint: Endpoint) -> CredentialLookup:
    """The auth files' credentials for each repository of the endpoint, looked up when a registry asks for them.

    They belong to the host that is contacted: a proxy endpoint gets the proxy's, never the origin's; a key naming
    a repository names it as it is reached (with the endpoint's repository prefix)."""
    contacted = endpoint.netloc
    if endpoint.host == "docker.io" and contacted == "registry-1.docker.io":
        contacted = "docker.io"  # docker login stores Hub credentials under its index names

    def lookup(repository: str) -> Credentials | None:
        return credentials_from_auth_file(contacted, repository=repository)

    return lookup


class ClientPool:
    def __init__(
        self,
        settings: Mapping[str, RegistrySettings] | None = None,
        *,
        ca_file: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_connections: int = 16,
        credentials: Callable[[Endpoint], Credentials | CredentialLookup | None] = _auth_file_lookup,
        log: Callable[[str], None] | None = None,
        egress: EgressPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        proxy: ProxySettings | None = None,
        manifests: ManifestStore | None = None,
    ) -> None:
        """transport: stands in for the network under every client (tests: the registry simulator).
        manifests: the collect's manifests held locally (mirror.registry.known)."""
        self._manifests = manifests
        self._log = log
        self._transport = transport
        self._proxy = proxy
        self._egress = egress
        self._settings = dict(settings or {})
        self._ca_file = ca_file
        self._limits = limits
        self._max_connections = max_connections
        self._credentials = credentials
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def for_host(self, host: str) -> RegistryClient:
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                if self._egress is not None:
                    self._egress.check_contact(host)
                endpoint = endpoint_for(host, self._settings.get(host), self._ca_file)
                client = RegistryClient(
                    endpoint,
                    self._credentials(endpoint),
                    self._limits,
                    max_connections=self._max_connections,
                    log=self._log,
                    egress=self._egress,
                    transport=self._transport,
                    proxy=self._proxy,
                    manifests=self._manifests,
                )
                self._clients[host] = client
            return client

    def pull_quotas(self) -> list[dict[str, object]]:
        """Per registry host contacted: the manifest GETs and HEADs sent, and the quota its last answer stated."""
        with self._lock:
            return [client.quota.to_json() for client in self._clients.values()]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
