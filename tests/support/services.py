"""Access to the local registries started by ``scripts/services``.

``ensure_services()`` runs ``scripts/services start`` (a no-op when everything
already runs) and then ``scripts/services env``, and returns the parsed
settings (registries, the nginx that serves Helm chart repositories from
``charts_dir``, and the two smart-HTTP git servers: ``git_upstream``, anonymous and
read-only, serving the bare repositories under ``git_upstream_dir``, and
``git_internal``, basic auth ``git_user``/``git_password``, push allowed, serving
``git_internal_dir``, where a push to a missing ``<path>.git`` creates it).
``tests.support.gitrepos`` builds repositories for them. ``token_requests()``
reads the token server's request log, one dict per token request (``user`` is
None for anonymous requests; ``scopes`` lists the requested scope strings;
``status`` is the HTTP status answered).

Where the services listen comes from one place, ``scripts/lib/services/ports.py`` (ports as
offsets from ``MIRROR_SERVICES_PORT_BASE``, default 15000). Tests take addresses from the
``services`` fixture; module-level settings that must exist before any fixture use
``UPSTREAM_REGISTRY``, ``CHARTS_ADDRESS`` (and the rest below), read from that place.

No pytest here: fixtures wrap these functions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "services"
SERVICES_PACKAGE = REPO_ROOT / "scripts" / "lib" / "services"
PORTS_MODULE = SERVICES_PACKAGE / "ports.py"


def services_package() -> ModuleType:
    """scripts/lib/services (what scripts/services runs), importable as ``mirror_services``."""
    name = "mirror_services"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, SERVICES_PACKAGE / "__init__.py", submodule_search_locations=[str(SERVICES_PACKAGE)]
        )
        assert spec is not None and spec.loader is not None, SERVICES_PACKAGE
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _load_ports_module() -> ModuleType:
    """scripts/lib/services/ports.py, the one place that says where the services listen."""
    services_package()
    return importlib.import_module("mirror_services.ports")


ports = _load_ports_module()
_PORTS = ports.configured()
UPSTREAM_REGISTRY: str = _PORTS.address("upstream")  # host:port of the anonymous plain-HTTP registry
CHARTS_ADDRESS: str = _PORTS.address("charts")  # host:port of the chart repositories' nginx
CHARTS_ADDRESS2: str = f"{ports.CHARTS_HOST2}:{_PORTS.charts}"  # the same nginx under a second loopback host
CHARTS_URL: str = f"http://{CHARTS_ADDRESS}"  # no trailing slash
GIT_UPSTREAM_URL: str = f"http://{_PORTS.address('git_upstream')}"  # the anonymous read-only git server

_FIELDS = {
    "MIRROR_TEST_UPSTREAM": "upstream",
    "MIRROR_TEST_INTERNAL": "internal",
    "MIRROR_TEST_CA": "ca_file",
    "MIRROR_TEST_CERT_DIR": "cert_dir",
    "MIRROR_TEST_INTERNAL_USER": "internal_user",
    "MIRROR_TEST_INTERNAL_PASSWORD": "internal_password",
    "MIRROR_TEST_TOKEN_REGISTRY": "token_registry",
    "MIRROR_TEST_TOKEN_USER": "token_user",
    "MIRROR_TEST_TOKEN_PASSWORD": "token_password",
    "MIRROR_TEST_TOKEN_LOG": "token_log",
    "MIRROR_TEST_CHARTS_URL": "charts_url",
    "MIRROR_TEST_CHARTS_URL2": "charts_url2",
    "MIRROR_TEST_CHARTS_DIR": "charts_dir",
    "MIRROR_TEST_CHARTS_USER": "charts_user",
    "MIRROR_TEST_CHARTS_PASSWORD": "charts_password",
    "MIRROR_TEST_GIT_UPSTREAM": "git_upstream",
    "MIRROR_TEST_GIT_INTERNAL": "git_internal",
    "MIRROR_TEST_GIT_USER": "git_user",
    "MIRROR_TEST_GIT_PASSWORD": "git_password",
    "MIRROR_TEST_GIT_UPSTREAM_DIR": "git_upstream_dir",
    "MIRROR_TEST_GIT_INTERNAL_DIR": "git_internal_dir",
    "MIRROR_SERVICES_DIR": "services_dir",
}
_PATHS = {"ca_file", "cert_dir", "token_log", "services_dir", "charts_dir", "git_upstream_dir", "git_internal_dir"}


class ServicesError(RuntimeError):
    """scripts/services failed; the message carries its output (and the log tail)."""


@dataclass(frozen=True)
class Services:
    upstream: str  # host:port, plain HTTP, anonymous
    internal: str  # host:port, HTTPS (ca_file), basic auth internal_user/internal_password
    ca_file: Path  # PEM CA that signed the internal registry's certificate
    cert_dir: Path  # skopeo --cert-dir / --dest-cert-dir (contains ca.crt)
    internal_user: str
    internal_password: str
    token_registry: str  # host:port, plain HTTP, bearer tokens (anonymous: pull only)
    token_user: str  # pull+push on every repository
    token_password: str
    token_log: Path  # JSON lines, one per token request
    services_dir: Path
    charts_url: str  # http://127.0.0.1:<charts port>, nginx serving charts_dir as static files (no trailing slash)
    charts_url2: str  # http://127.0.0.2:<charts port>, the same files under a second host name
    charts_dir: Path  # document root of charts_url/charts_url2; put chart repositories in subdirectories
    charts_user: str  # basic auth for charts_url/private/... (charts_dir/private), a private chart repository
    charts_password: str
    git_upstream: str  # http://127.0.0.1:<port>, smart HTTP git, anonymous, read-only (no trailing slash)
    git_internal: str  # http://127.0.0.1:<port>, smart HTTP git, basic auth git_user/git_password, push allowed
    git_user: str
    git_password: str
    git_upstream_dir: Path  # bare repositories served by git_upstream: <dir>/<name>.git is <git_upstream>/<name>.git
    git_internal_dir: Path  # bare repositories served by git_internal (a push creates a missing <name>.git)

    def token_requests(self) -> list[dict[str, Any]]:
        return token_requests(self.token_log)


def _run(command: str, timeout: float) -> str:
    try:
        proc = subprocess.run(
            [str(SCRIPT), command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServicesError(f"scripts/services {command} timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise ServicesError(
            f"scripts/services {command} exited with {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"
        )
    return proc.stdout


def parse_env(text: str) -> dict[str, str]:
    """Parse the ``export NAME='value'`` lines printed by ``scripts/services env``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            values[name] = value
    return values


def ensure_services(timeout: float = 120.0) -> Services:
    """Start the services if needed and return their settings."""
    _run("start", timeout)
    values = parse_env(_run("env", timeout))
    missing = sorted(set(_FIELDS) - set(values))
    if missing:
        raise ServicesError(f"scripts/services env did not print {', '.join(missing)}")
    kwargs: dict[str, Any] = {}
    for env_name, field in _FIELDS.items():
        kwargs[field] = Path(values[env_name]) if field in _PATHS else values[env_name]
    settings = Services(**kwargs)
    expected = {
        "upstream": UPSTREAM_REGISTRY,
        "charts_url": CHARTS_URL,
        "charts_url2": f"http://{CHARTS_ADDRESS2}",
        "git_upstream": GIT_UPSTREAM_URL,
    }
    for field, address in expected.items():
        if getattr(settings, field) != address:
            raise ServicesError(
                f"scripts/services env says {field} is {getattr(settings, field)}, but {PORTS_MODULE.name} "
                f"said {address} when the tests were loaded (was {ports.BASE_VARIABLE} changed?)"
            )
    return settings


def default_token_log() -> Path:
    if os.environ.get("MIRROR_TEST_TOKEN_LOG"):
        return Path(os.environ["MIRROR_TEST_TOKEN_LOG"])
    return ports.state_dir() / "token" / "requests.log"


def token_requests(log: Path | Services | None = None) -> list[dict[str, Any]]:
    """Every token request logged so far, oldest first.

    Count the difference before and after an operation to see how many tokens it
    fetched: ``before = len(token_requests()); ...; len(token_requests()) - before``.
    """
    if isinstance(log, Services):
        path = log.token_log
    elif log is None:
        path = default_token_log()
    else:
        path = Path(log)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
