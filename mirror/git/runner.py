"""Run the git command line in a clean, closed environment, and turn its failures into mirror's errors.

See docs/collector.md ("Git sources", running git).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit

from mirror.credentials import BoundCredentials, Credentials, url_origin
from mirror.errors import (
    MirrorError,
    SourceNotFoundError,
    TransferError,
    UnreachableError,
    UsageError,
    VerificationError,
)
from mirror.limits import DEFAULT_LIMITS, Limits
from mirror.netguard import Cancelled, cancelled, kill_group, registered
from mirror.progress import human_size
from mirror.proxy import ProxySettings, git_proxy_config

__all__ = [
    "Transport",
    "check_url",
    "redact",
    "run_git",
]


_ENV_USERNAME = "MIRROR_GIT_USERNAME"
_ENV_PASSWORD = "MIRROR_GIT_PASSWORD"
# git's credential helper protocol: `helper get` reads the request on stdin and answers key=value lines; the
# `store` and `erase` actions are ignored. git runs it only for the origins it is configured for.
_HELPER_SCRIPT = f"""#!/bin/sh
cat >/dev/null
test "$1" = get || exit 0
printf 'username=%s\\npassword=%s\\n' "${_ENV_USERNAME}" "${_ENV_PASSWORD}"
"""

_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Transport:
    """Which protocols git may use, and how it checks servers.

    allow_file: file:// URLs and local bundle files (tests; and import, for the bundle itself).
    allow_ssh: ssh:// URLs; the host key must be in known_hosts_file (HOME is empty, so there is no
      ~/.ssh), and identity_file is the key. BatchMode: ssh never prompts.
    ca_file: a PEM bundle that replaces the system CAs for https (http.sslCAInfo).
    proxy: the upstream proxies (mirror.proxy); None: git connects directly (it never reads proxy variables).
    """

    allow_file: bool = False
    allow_ssh: bool = False
    ca_file: Path | str | None = None
    identity_file: Path | str | None = None
    known_hosts_file: Path | str | None = None
    proxy: ProxySettings | None = None
    # Timing: http.lowSpeedLimit/lowSpeedTime; the budget of one whole source (every git call it needs), base
    # plus its size at timeout_bytes_per_s; and the time.monotonic() by which the current source must be done
    # (set by for_source; None: each call has only its own timeout).
    low_speed_bytes_per_s: int = 1024
    low_speed_time_s: int = 60
    source_timeout_s: float | None = None
    timeout_bytes_per_s: int = 64 * 1024
    deadline: float | None = None
    # Size: what one fetch from an upstream may add to its repository (None: no cap), checked every
    # fetch_poll_s; which setting the cap comes from, and the error past it (--max-bundle-size: exit 2, as
    # the bundle-size check of images).
    max_fetch_bytes: int | None = None
    fetch_poll_s: float = 0.25
    fetch_cap_name: str = "limit max_git_fetch_bytes"
    fetch_cap_error: type[MirrorError] = TransferError

    def with_limits(self, limits: Limits) -> Transport:
        """This transport with the speed floor and the per-source budget of `limits`."""
        return replace(
            self,
            low_speed_bytes_per_s=max(1, int(limits.min_bytes_per_s)),
            low_speed_time_s=max(1, round(limits.speed_window_s)),  # git takes whole seconds
            source_timeout_s=limits.git_source_timeout_s,
            timeout_bytes_per_s=limits.git_timeout_bytes_per_s,
            max_fetch_bytes=limits.max_git_fetch_bytes,
            fetch_poll_s=limits.git_fetch_poll_s,
        )

    def within_bundle_size(self, max_bundle_size: int | None) -> Transport:
        """This transport with its fetches capped at --max-bundle-size too (a source cannot be larger)."""
        if max_bundle_size is None or (self.max_fetch_bytes is not None and self.max_fetch_bytes <= max_bundle_size):
            return self
        return replace(
            self, max_fetch_bytes=max_bundle_size, fetch_cap_name="--max-bundle-size", fetch_cap_error=UsageError
        )

    def for_source(self, size: int | None = None) -> Transport:
        """This transport with a deadline, from now, for one source of `size` bytes (where known)."""
        if self.source_timeout_s is None:
            return self
        budget = self.source_timeout_s + (size or 0) / self.timeout_bytes_per_s
        return replace(self, deadline=time.monotonic() + budget)

    def protocols(self) -> list[str]:
        allowed = ["https", "http"]
        if self.allow_ssh:
            allowed.append("ssh")
        if self.allow_file:
            allowed.append("file")
        return allowed


DEFAULT_TRANSPORT = Transport()

_SCHEME_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^/\s@'\"]*@)")


def _secret_forms(credentials: Credentials | None) -> list[str]:
    if credentials is None or not credentials.password:
        return []
    pair = f"{credentials.username}:{credentials.password}".encode()
    forms = {
        credentials.password,
        quote(credentials.password, safe=""),
        base64.b64encode(pair).decode("ascii"),
        base64.b64encode(credentials.password.encode()).decode("ascii"),
    }
    # Longest first, so that a form containing another is replaced whole.
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | Credentials | None = ()) -> str:
    """`text` without URL userinfo (`https://user:token@host` → `https://host`) and without the secrets.

    `secrets` is a list of strings or a Credentials (its password, URL-encoded password and the base64
    forms a Basic header would carry).
    """
    if isinstance(secrets, Credentials):
        forms = _secret_forms(secrets)
    else:
        forms = sorted((s for s in (secrets or ()) if s), key=len, reverse=True)
    text = _SCHEME_URL.sub(lambda m: m.group(1), text)
    for secret in forms:
        text = text.replace(secret, "***")
    return text


def check_url(url: str, transport: Transport = DEFAULT_TRANSPORT, *, where: str = "url") -> str:
    """Return `url` if git may use it; UsageError otherwise. Credentials in it are refused before anything else.

    Accepted: https:// and http:// with a host; ssh://[user@]host/path when ssh is allowed (a user name
    only: never a password); file:///path when file is allowed. Refused: userinfo in http(s) URLs,
    scp-like `host:path`, local paths, `ext::` and other transports, whitespace and control characters.
    """
    if not isinstance(url, str) or not url:
        raise UsageError(f"{where}: a git URL is required")
    try:
        parts = urlsplit(url)
        password = parts.password
        hostname = parts.hostname
    except ValueError as exc:  # the message does not echo the URL: it may carry a secret
        raise UsageError(f"{where}: not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    # Checked first: every later message echoes the URL.
    userinfo = "@" in parts.netloc
    if password is not None or (userinfo and scheme != "ssh"):
        raise UsageError(
            f"{where}: the URL must not carry credentials",
            hint="give the user name and password (or token) through mirror's credential settings, never in a URL",
        )
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UsageError(f"{where}: {url!r} contains whitespace or control characters")
    allowed = transport.protocols()
    if scheme not in ("http", "https", "ssh", "file") or "://" not in url:
        raise UsageError(
            f"{where}: {url!r} is not a URL git may use here",
            hint="write https://host/path (ssh://[user@]host/path when ssh is allowed)",
        )
    if scheme not in allowed:
        raise UsageError(f"{where}: {scheme}:// URLs are not allowed here (allowed: {', '.join(allowed)})")
    if scheme in ("http", "https", "ssh") and not hostname:
        raise UsageError(f"{where}: {url!r} has no host")
    if scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        raise UsageError(f"{where}: {url!r} must be file:///absolute/path")
    if parts.fragment:
        raise UsageError(f"{where}: {url!r} must not have a fragment")
    return url


def _refuse_credentials_in_args(args: Sequence[str]) -> None:
    for arg in args:
        if "://" not in arg:
            continue
        match = re.search(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)", arg)
        if match is None:
            continue
        scheme, netloc = match.group(1).lower(), match.group(2)
        if "@" in netloc and (scheme != "ssh" or ":" in netloc.rsplit("@", 1)[0]):
            raise UsageError(
                "a git URL must not carry credentials",
                hint="give the user name and password (or token) through mirror's credential settings",
            )


def _url_origins(args: Sequence[str]) -> list[str]:
    return [o for o in (url_origin(a) for a in args if "://" in a) if o is not None]


def credential_origins(credentials: Credentials, args: Sequence[str]) -> list[str]:
    """The origins git may answer `credentials` for: those they are bound to, else the command's own URLs."""
    for secret in (credentials.username, credentials.password):
        if any(ch in secret for ch in "\n\r\0"):
            raise UsageError("git credentials must not contain line breaks or NUL characters")
    origins = credentials.origins if isinstance(credentials, BoundCredentials) else tuple(_url_origins(args))
    # An origin becomes part of a configuration key: only what url_origin produces is accepted.
    return [o for o in dict.fromkeys(origins) if url_origin(o) == o]


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    kind: str  # "proxy", "unreachable", "transfer", "auth", "notfound", "tls", "redirect"


def _p(pattern: str, kind: str) -> _Pattern:
    return _Pattern(re.compile(pattern, re.IGNORECASE), kind)


# Order matters: the first match decides.
_PATTERNS = (
    _p(r"returned error: 407\b|code 407 from proxy|Proxy Authentication Required", "proxy"),
    _p(r"could not read (Username|Password)|terminal prompts disabled", "auth"),
    _p(r"Authentication failed|Invalid username or password|returned error: 40[13]\b", "auth"),
    _p(r"Permission denied \(publickey|Host key verification failed", "auth"),
    _p(r"returned error: 30[12378]\b", "redirect"),
    _p(r"Repository not found|returned error: 404\b|repository '[^']*' not found", "notfound"),
    _p(r"does not appear to be a git repository", "notfound"),
    _p(r"SSL certificate problem|server certificate verification failed|certificate verify failed", "tls"),
    _p(r"Could not resolve host|Could not resolve hostname|Name or service not known", "unreachable"),
    _p(r"Connection refused|Failed to connect|Couldn't connect to server|Network is unreachable", "unreachable"),
    _p(r"No route to host|Connection timed out|Operation timed out|Connection reset", "unreachable"),
    _p(r"returned error: 5\d\d\b|RPC failed|early EOF|remote end hung up unexpectedly", "transfer"),
    _p(r"unexpected disconnect|Operation too slow|transfer closed|SSL_ERROR|GnuTLS|gnutls_handshake", "transfer"),
)


def classify(output: str) -> str | None:
    """Which kind of failure git's output describes (see _PATTERNS), or None."""
    for pattern in _PATTERNS:
        if pattern.regex.search(output):
            return pattern.kind
    return None


def _tail(text: str) -> str:
    text = text.strip()
    if len(text) > DEFAULT_LIMITS.max_git_message_chars:  # the end of it, where git puts the reason
        text = "…" + text[-DEFAULT_LIMITS.max_git_message_chars :]
    return text


def git_error(
    what: str,
    output: str,
    *,
    failure: type[MirrorError] | None = None,
    credentials: Credentials | None = None,
    network: bool = True,
    offered: bool | None = None,
    secrets: Sequence[str] = (),
) -> MirrorError:
    """The error for a failed git command: `what` was being done; `output` is git's (unredacted) stderr.

    network=False for work on local files (bundles, fsck): their output can quote text from the bundle
    (commit subjects), which must not steer the classification, so `failure` is always the class.
    A failure not recognised is `failure`, by default a TransferError (exit 4) for a network command (a bogus
    pack index from a dumb-HTTP upstream, say) and a VerificationError (exit 3) for a local check: never exit 1,
    which says mirror itself is broken.
    """
    shown = redact(redact(_tail(output), credentials), secrets)  # secrets: the proxy's password, say
    message = f"{what}: {shown}" if shown else what
    kind = classify(output) if network else None
    if kind == "unreachable":
        return UnreachableError(message, hint="check the URL, DNS and the network path; a re-run resumes")
    if kind == "transfer":
        return TransferError(message, hint="the transfer broke off; a re-run starts it again")
    if kind == "tls":
        return TransferError(message, hint="give the CA that signed the server's certificate (ca_file)")
    if kind == "proxy":
        return TransferError(
            message,
            hint="the proxy asks for credentials, or refused those given: http://user:password@host:port in "
            "--proxy (or HTTPS_PROXY/HTTP_PROXY with MIRROR_USE_ENV_PROXY=1)",
        )
    if kind == "auth":
        offered = credentials is not None if offered is None else offered
        if offered:
            hint = "the credentials given were refused, or lack access to this repository"
        elif credentials is not None:
            hint = (
                "the server asks for credentials, and MIRROR_GIT_USERNAME/MIRROR_GIT_PASSWORD are given to their "
                "own origin only (MIRROR_GIT_HOST, else the MirrorSet's Git host), never to this one"
            )
        else:
            hint = "the server asks for credentials: configure a user name and password (or token) for it"
        return TransferError(message, hint=hint)
    if kind == "redirect":
        return UsageError(
            f"{message} (a redirect; mirror follows no Git redirect)",
            hint="write the URL the server redirects to in the MirrorSet: credentials and the egress policy stay "
            "with the host named there",
        )
    if kind == "notfound":
        return SourceNotFoundError(
            message, hint="check the URL; a private repository may also answer 'not found' without credentials"
        )
    if failure is None:
        failure = TransferError if network else VerificationError
    return failure(message)


class _FetchTooLarge(Exception):
    def __init__(self, written: int) -> None:
        self.written = written


@dataclass(frozen=True)
class FetchWatch:
    """The objects directory a fetch writes into, what it held when the fetch began, and the cap on its growth."""

    objects: Path
    before: int
    cap: int
    poll_s: float
    cap_name: str
    cap_error: type[MirrorError]

    @classmethod
    def of(cls, git_dir: Path | str | None, transport: Transport) -> FetchWatch | None:
        if git_dir is None or transport.max_fetch_bytes is None:
            return None
        objects = Path(git_dir) / "objects"
        return cls(
            objects,
            _bytes_under(objects),
            transport.max_fetch_bytes,
            transport.fetch_poll_s,
            transport.fetch_cap_name,
            transport.fetch_cap_error,
        )

    def written(self) -> int:
        return max(0, _bytes_under(self.objects) - self.before)

    def error(self, label: str, written: int) -> MirrorError:
        return self.cap_error(
            f"{label}: git had written {written} bytes ({human_size(written)}), more than {self.cap_name} "
            f"{self.cap} bytes ({human_size(self.cap)}), and was stopped",
            hint=f"raise {self.cap_name} if the repository is meant to be that large",
        )


def _bytes_under(directory: Path) -> int:
    """The size of every file under `directory` (packs, their temporary files, loose objects, quarantines)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # git renamed or removed it meanwhile
                continue
    return total


def _communicate(
    process: subprocess.Popen[bytes], data: bytes | None, timeout: float, watch: FetchWatch | None
) -> tuple[bytes, bytes]:
    """process.communicate within `timeout`; with a watch, every poll_s the fetch's writes are measured too.

    Raises subprocess.TimeoutExpired past the timeout, _FetchTooLarge past the watch's cap.
    """
    if watch is None:
        return process.communicate(data, timeout=timeout)
    deadline = time.monotonic() + timeout
    first = True
    pause = watch.poll_s
    while True:
        left = deadline - time.monotonic()
        try:
            # Input is handed over once: a retried communicate() goes on with what it has not yet written.
            return process.communicate(data if first else None, timeout=max(0.0, min(left, pause)))
        except subprocess.TimeoutExpired:
            first = False
            started = time.monotonic()
            written = watch.written()
            if written > watch.cap:
                raise _FetchTooLarge(written) from None
            # Many loose objects (a dumb-HTTP fetch) make a measure slow: measuring never takes over a fifth
            # of the time.
            pause = max(watch.poll_s, 4 * (time.monotonic() - started))
            if time.monotonic() >= deadline:
                raise


def _git_env(
    home: Path, transport: Transport, credentials: Credentials | None, config: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    """config: settings passed in the environment (GIT_CONFIG_COUNT), out of sight of `ps`: they may hold secrets."""
    env = {
        "PATH": os.environ.get("PATH") or _DEFAULT_PATH,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LC_ALL": "C",
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_ALLOW_PROTOCOL": ":".join(transport.protocols()),
        "GIT_PROTOCOL_FROM_USER": "0",
        # Repository discovery never climbs above the temporary HOME (only used when no git dir is given).
        "GIT_CEILING_DIRECTORIES": str(home.parent),
    }
    if transport.allow_ssh:
        ssh = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        known_hosts = transport.known_hosts_file or "/dev/null"
        ssh += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if transport.identity_file:
            ssh += ["-o", "IdentitiesOnly=yes", "-i", str(transport.identity_file)]
        env["GIT_SSH_COMMAND"] = " ".join(_shell_quote(a) for a in ssh)
        env["GIT_SSH_VARIANT"] = "ssh"
    if credentials is not None:
        env[_ENV_USERNAME] = credentials.username
        env[_ENV_PASSWORD] = credentials.password
    if config:
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _shell_quote(arg: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./=:@%+-]+", arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def _config_args(transport: Transport) -> list[str]:
    args = [
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "credential.helper=",
        "-c",
        "core.askPass=",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "protocol.allow=never",
        "-c",
        "transfer.credentialsInUrl=die",
        "-c",
        "gc.auto=0",
        "-c",
        "maintenance.auto=false",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "advice.detachedHead=false",
        "-c",
        f"http.lowSpeedLimit={transport.low_speed_bytes_per_s}",
        "-c",
        f"http.lowSpeedTime={transport.low_speed_time_s}",
        "-c",
        "http.followRedirects=false",
    ]
    for protocol in transport.protocols():
        args += ["-c", f"protocol.{protocol}.allow=always"]
    if transport.ca_file:
        args += ["-c", f"http.sslCAInfo={transport.ca_file}", "-c", "http.sslVerify=true"]
    return args


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | str | None = None,
    git_dir: Path | str | None = None,
    credentials: Credentials | None = None,
    input: str | bytes | None = None,
    stdin: BinaryIO | None = None,
    # A clone of a very large repository over a slow link can take long; a stalled transfer is cut much sooner
    # by http.lowSpeedLimit/lowSpeedTime (Transport), and a whole source by its deadline (Transport.for_source).
    timeout: float = DEFAULT_LIMITS.git_source_timeout_s,
    transport: Transport = DEFAULT_TRANSPORT,
    check: bool = True,
    what: str | None = None,
    failure: type[MirrorError] | None = None,
    network: bool = True,
    capped: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `git <args>` in the clean environment described above; stdout and stderr are captured as text.

    git_dir: the repository to work in (`git --git-dir=...`); otherwise cwd (default: an empty temporary
    directory, outside any repository). With check (the default) a non-zero exit raises the classified
    error for `what` (default: the git subcommand), with the output redacted; without check the caller
    reads returncode and must pass anything it shows through redact(). input: text or bytes for stdin; or
    stdin: an open file git reads from its current position on (streamed, never loaded here).
    network: classify failures as network, authentication or not-found problems (see git_error).
    capped: a fetch into git_dir from an upstream; what it adds to git_dir's objects is held to
    transport.max_fetch_bytes while git runs (git is stopped past it).
    """
    args = [str(a) for a in args]
    _refuse_credentials_in_args(args)
    if input is not None and stdin is not None:
        raise ValueError("run_git takes input or stdin, not both")
    label = what or f"git {args[0] if args else ''}".strip()
    if transport.deadline is not None:
        left = transport.deadline - time.monotonic()
        if left <= 0:
            raise TransferError(f"{label}: the source's time limit has passed", hint="a re-run starts it again")
        timeout = min(timeout, left)
    home = Path(tempfile.mkdtemp(prefix="mirror-git-home-"))
    try:
        command = ["git", *_config_args(transport)]
        origins: list[str] = []
        withheld: list[str] = []
        if credentials is not None:
            helper = home / "credential-helper.sh"
            helper.write_text(_HELPER_SCRIPT)
            helper.chmod(stat.S_IRWXU)
            # A proxy forwards plain HTTP and reads it whole: no credentials for such an origin.
            origins, withheld = _split_clear_text(credential_origins(credentials, args), transport)
            for origin in origins:  # "!": a shell command, so a temporary directory with a space still works
                command += ["-c", f"credential.{origin}.helper=!{_shell_quote(str(helper))}"]
        env = _git_env(home, transport, credentials, git_proxy_config(transport.proxy, _url_origins(args)))
        # Whether the command's own URL is one the credentials are offered to: the hint of an auth failure says.
        offered = bool(set(origins) & set(_url_origins(args)))
        if git_dir is not None:
            command.append(f"--git-dir={git_dir}")
        command += args
        data = input.encode() if isinstance(input, str) else input
        with (
            subprocess.Popen(
                command,
                cwd=str(cwd) if cwd is not None else str(home),
                env=env,
                stdin=subprocess.PIPE if data is not None else (stdin if stdin is not None else subprocess.DEVNULL),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            ) as process,
            registered(process),
        ):
            watch = FetchWatch.of(git_dir, transport) if capped else None
            try:
                out, err = _communicate(process, data, timeout, watch)
            except subprocess.TimeoutExpired:
                kill_group(process)
                out, err = process.communicate()
                raise TransferError(
                    f"{label}: git did not finish within {timeout:.0f} s and was stopped",
                    hint="a re-run starts it again",
                ) from None
            except _FetchTooLarge as exc:
                kill_group(process)
                process.communicate()
                assert watch is not None
                raise watch.error(label, exc.written) from None
            if cancelled():  # killed by cancel(): its failure says nothing about the source
                raise Cancelled()
        done = subprocess.CompletedProcess(
            command,
            process.returncode,
            out.decode("utf-8", errors="replace"),
            err.decode("utf-8", errors="replace"),
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if check and done.returncode != 0:
        output = done.stderr or done.stdout
        refused = set(withheld) & set(_url_origins(args))
        if refused and network and classify(output) == "auth":
            raise _clear_text_refusal(sorted(refused)[0], transport)
        raise git_error(
            label,
            output,
            failure=failure,
            credentials=credentials,
            network=network,
            offered=offered,
            secrets=transport.proxy.secrets() if transport.proxy is not None else (),
        )
    return done


def _split_clear_text(origins: Sequence[str], transport: Transport) -> tuple[list[str], list[str]]:
    """(origins credentials may be offered to, http:// origins reached through a proxy that get none)."""
    proxy = transport.proxy
    if proxy is None:
        return list(origins), []
    withheld = [o for o in origins if o.startswith("http://") and proxy.for_url(o) is not None]
    return [o for o in origins if o not in withheld], withheld


def _clear_text_refusal(origin: str, transport: Transport) -> UsageError:
    server = transport.proxy.for_url(origin) if transport.proxy is not None else None
    shown = server.shown if server is not None else "the proxy"
    return UsageError(
        f"{origin}: asks for credentials over plain HTTP, and the proxy {shown} would read them; mirror gives git "
        "no credentials for a plain-HTTP host reached through a proxy",
        hint="reach the Git server over HTTPS (through the proxy: a tunnel the proxy cannot read), or directly: "
        "list it in --no-proxy (NO_PROXY with MIRROR_USE_ENV_PROXY=1)",
    )
