"""The names the node configurations are made of, each held to a strict grammar before it is rendered: the
source registry hosts come from the bundle's inventory (untrusted, signed or not) and become TOML keys, YAML
keys, directory names and Kubernetes object fields; the internal registry and the nodes' CA path come from the
operator's flags."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mirror.errors import Problem, UsageError, VerificationError
from mirror.terminal import escape

HOST_INVALID = "MIRROR_CONFIG_HOST_INVALID"

# RFC 1123 host names (letters, digits, inner hyphens; labels of at most 63, the name at most 253) and IPv4
# addresses, with an optional port 1-65535. Stricter than the reference grammar on purpose: no IPv6 literal (its
# brackets and colons mean other things in a certs.d directory name and a registries.conf prefix), no empty
# label, nothing a file name or a TOML or YAML document could read as structure.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?P<name>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[1-9][0-9]{{0,4}}))?")
_MAX_HOST_NAME = 253  # RFC 1123: a host name's length in its text form
_MAX_PORT = 65535


def registry_host_problem(host: str) -> str | None:
    """Why `host` (`name[:port]`) is not a registry host the node configurations may name; None if it is."""
    match = _HOST.fullmatch(host)
    if match is None:
        return "is not a host name or IPv4 address with an optional port"
    if len(match["name"]) > _MAX_HOST_NAME:
        return f"is longer than {_MAX_HOST_NAME} characters"
    if match["port"] is not None and int(match["port"]) > _MAX_PORT:
        return f"has a port above {_MAX_PORT}"
    return None


def check_source_hosts(hosts: Iterable[str]) -> list[str]:
    """The hosts, sorted and without repeats; VerificationError (exit 3: the inventory names them) listing
    every host outside the grammar."""
    unique = sorted(set(hosts))
    problems = [
        Problem(HOST_INVALID, f"source registry {escape(repr(host))} {reason}")
        for host in unique
        if (reason := registry_host_problem(host)) is not None
    ]
    if problems:
        raise VerificationError(
            f"{len(problems)} source registr{'y' if len(problems) == 1 else 'ies'} cannot be named in the node "
            "mirror configuration",
            problems=problems,
            hint="the inventory names registry hosts no configuration file may hold; nothing was written",
        )
    return unique


def check_node_ca_path(path: str) -> str:
    """An absolute path, as the nodes will see it, without control or format characters."""
    if not path.startswith("/") or escape(path) != path:
        raise UsageError(
            f"--node-ca-path {escape(repr(path))}: expected an absolute path, as the nodes see it",
            hint="e.g. --node-ca-path /etc/containerd/certs.d/mirror-ca.pem",
        )
    return path


@dataclass(frozen=True)
class MirrorTarget:
    """The internal registry the nodes pull from: where the importer lands `SRC-HOST/PATH` (at PREFIX/PATH)."""

    scheme: str  # https, or http for a plain-HTTP registry
    host: str  # host[:port]
    prefix: str = ""  # a repository path, or ""

    def check(self) -> None:
        reason = registry_host_problem(self.host)
        if reason is not None:
            shown = escape(repr(self.host))
            raise UsageError(f"--registry host {shown} {reason}: the node configurations cannot name it")

    @property
    def endpoint(self) -> str:
        """`scheme://host[:port]`."""
        return f"{self.scheme}://{self.host}"

    @property
    def location(self) -> str:
        """`host[:port][/prefix]`, the namespace a source registry's repositories land under."""
        return f"{self.host}/{self.prefix}" if self.prefix else self.host
