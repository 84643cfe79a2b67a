"""Git credentials from a `.netrc` file: `$NETRC`, else `~/.netrc` (see docs/collector.md, "Credentials")."""

from __future__ import annotations

import netrc
from collections.abc import Mapping
from pathlib import Path

from mirror.credentials.base import Credentials
from mirror.errors import UsageError


def netrc_path(env: Mapping[str, str]) -> Path | None:
    if env.get("NETRC"):
        return Path(env["NETRC"])
    return Path(env["HOME"]) / ".netrc" if env.get("HOME") else None


def netrc_entries(env: Mapping[str, str]) -> dict[str, Credentials]:
    """host (lower case) -> its `machine` entry's login and password. A `default` entry is left out: credentials
    go only to a host the file names. No file: none."""
    path = netrc_path(env)
    if path is None or not path.is_file():
        return {}
    try:
        parsed = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:
        # The parser's message quotes the token it stumbled on, which may be part of a password: only the line.
        raise UsageError(
            f"{path}: not a readable .netrc (line {exc.lineno})",
            hint="each entry is `machine HOST login USER password SECRET`; quote a password with spaces",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the .netrc: {type(exc).__name__}") from None
    return {
        host.lower(): Credentials(login or "", password or "")
        for host, (login, _account, password) in parsed.hosts.items()
        if host != "default" and password
    }
