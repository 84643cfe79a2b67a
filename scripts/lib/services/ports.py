"""The one place that says where the local services listen and keep their state.

``scripts/services`` and the tests (``tests/support/services.py``) both read it. Every port is
an offset from one base, 15000 unless ``MIRROR_SERVICES_PORT_BASE`` says otherwise, so a second
set of services (another state directory) can run beside the first. ``start`` records the base
it configured in ``<state dir>/ports``; later commands without the variable use that record.
Standard library only: the tests load this file by path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# nginx serves the chart repositories under a second loopback address too: a second "host".
CHARTS_HOST2 = "127.0.0.2"
DEFAULT_BASE = 15000
BASE_VARIABLE = "MIRROR_SERVICES_PORT_BASE"
DIR_VARIABLE = "MIRROR_SERVICES_DIR"
RECORD_NAME = "ports"

OFFSETS = {
    "upstream": 0,
    "token": 1,
    "tokenserver": 2,
    "charts": 80,
    "git_upstream": 90,
    "git_internal": 91,
    "internal": 443,
}

REPO_ROOT = Path(__file__).resolve().parents[3]


class PortsError(ValueError):
    """MIRROR_SERVICES_PORT_BASE or the recorded base is not a usable port base."""


@dataclass(frozen=True)
class Ports:
    base: int
    upstream: int
    internal: int
    token: int
    tokenserver: int
    charts: int
    git_upstream: int
    git_internal: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(base=base, **{name: base + offset for name, offset in OFFSETS.items()})

    def address(self, name: str) -> str:
        """``host:port`` of one port by its name in OFFSETS."""
        return f"{HOST}:{getattr(self, name)}"


def _parse_base(text: str, origin: str) -> int:
    if not text.strip().isdigit():
        raise PortsError(f"{origin}: expected a port number, got {text.strip()!r}")
    base = int(text)
    highest = 65535 - max(OFFSETS.values())
    if not 1024 <= base <= highest:
        raise PortsError(f"{origin}: the port base must be between 1024 and {highest}, got {base}")
    return base


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the services keep configs, certificates, passwords, data, pid files and logs."""
    return Path(environ.get(DIR_VARIABLE) or REPO_ROOT / ".services")


def requested_base(environ: Mapping[str, str] = os.environ) -> int | None:
    text = environ.get(BASE_VARIABLE)
    return _parse_base(text, BASE_VARIABLE) if text else None


def recorded_base(directory: Path) -> int | None:
    record = directory / RECORD_NAME
    try:
        text = record.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return _parse_base(text, str(record))


def record_base(directory: Path, base: int) -> None:
    record = directory / RECORD_NAME
    if recorded_base(directory) != base:
        temporary = record.with_name(f".{RECORD_NAME}.tmp")
        temporary.write_text(f"{base}\n", encoding="utf-8")
        os.replace(temporary, record)


def configured(environ: Mapping[str, str] = os.environ, directory: Path | None = None) -> Ports:
    """The ports: the variable's base, else the state directory's record, else the default."""
    base = requested_base(environ)
    if base is None:
        base = recorded_base(directory or state_dir(environ))
    return Ports.from_base(DEFAULT_BASE if base is None else base)
