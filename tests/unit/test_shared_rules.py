"""Each rule shared by several modules is written once, and every caller agrees (issue 13).

Transport failures map to the same TransferError family in the registry client, its token fetch and the chart
fetcher; the retry policy (statuses retried, Retry-After ceiling) is the same in each; every MirrorError has
one JSON form, used by the CLI's JSON error line and the run report alike.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import mirror
from mirror import errors
from mirror.cli import _fail
from mirror.collector.httpfetch import HttpFetcher
from mirror.errors import (
    Interrupted,
    MirrorError,
    Problem,
    RateLimitedError,
    TransferError,
    UnreachableError,
    VerificationError,
)
from mirror.limits import Limits
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from mirror.report import exit_code_of, failure_entry

REGISTRY = "registry.example:5000"
TOKENS = "tokens.example:8443"
CHARTS = "charts.example:8080"

# No waiting between attempts, and few of them.
FAST = Limits(max_attempts=2, backoff_initial_s=0.0, backoff_max_s=0.0, retry_after_max_s=0.5)


def _raising(failure: type[httpx.TransportError], only_host: str | None = None) -> httpx.MockTransport:
    """Every request to `only_host` (or to any host) fails with `failure`; the registry asks for a token."""

    def handle(request: httpx.Request) -> httpx.Response:
        if only_host is None or request.url.netloc.decode() == only_host:
            raise failure("boom", request=request)
        challenge = f'Bearer realm="http://{TOKENS}/token",service="{REGISTRY}"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    return httpx.MockTransport(handle)


def _registry_failure(transport: httpx.MockTransport, sleeps: list[float] | None = None) -> MirrorError:
    sleep = (sleeps if sleeps is not None else []).append
    client = RegistryClient(Endpoint(REGISTRY, "http", REGISTRY), None, FAST, transport=transport, sleep=sleep)
    with client, pytest.raises(MirrorError) as caught:
        client.get_manifest("library/app", "1.0")
    return caught.value


def _chart_failure(transport: httpx.MockTransport, sleeps: list[float] | None = None) -> MirrorError:
    sleep = (sleeps if sleeps is not None else []).append
    with HttpFetcher(limits=FAST, transport=transport, sleep=sleep) as fetcher, pytest.raises(MirrorError) as caught:
        fetcher.get_bytes(f"http://{CHARTS}/index.yaml", 1024)
    return caught.value


CLIENTS: dict[str, tuple[Callable[[httpx.MockTransport], MirrorError], str, str | None]] = {
    # name: (how it fails, the host its message names, the host whose requests fail (None: all))
    "registry": (_registry_failure, REGISTRY, None),
    "token service": (_registry_failure, TOKENS, TOKENS),
    "chart fetcher": (_chart_failure, CHARTS, None),
}


@pytest.mark.parametrize("client", CLIENTS)
def test_a_refused_connection_is_unreachable_naming_the_host_in_every_client(client: str) -> None:
    fail, host, only = CLIENTS[client]
    error = fail(_raising(httpx.ConnectError, only))
    assert type(error) is UnreachableError
    assert host in error.message and error.exit_code == 4


@pytest.mark.parametrize("client", CLIENTS)
def test_a_timeout_is_unreachable_naming_the_host_in_every_client(client: str) -> None:
    fail, host, only = CLIENTS[client]
    error = fail(_raising(httpx.ConnectTimeout, only))
    assert type(error) is UnreachableError
    assert host in error.message and "timed out" in error.message


@pytest.mark.parametrize("client", CLIENTS)
def test_a_transfer_broken_off_is_a_transfer_error_not_unreachable_in_every_client(client: str) -> None:
    fail, host, only = CLIENTS[client]
    error = fail(_raising(httpx.ReadError, only))
    assert type(error) is TransferError  # the host answered: it was reachable
    assert host in error.message


def _answering(status: int, retry_after: str) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, headers={"Retry-After": retry_after}))


@pytest.mark.parametrize("fail", [_registry_failure, _chart_failure], ids=["registry", "chart fetcher"])
def test_a_retry_after_beyond_the_ceiling_stops_at_once_the_same_in_every_client(
    fail: Callable[..., MirrorError],
) -> None:
    sleeps: list[float] = []
    error = fail(_answering(503, "3600"), sleeps)
    assert sleeps == []
    assert isinstance(error, RateLimitedError) and error.exit_code == 4
    assert "3600 s (Retry-After)" in error.message


@pytest.mark.parametrize("fail", [_registry_failure, _chart_failure], ids=["registry", "chart fetcher"])
def test_a_retry_after_within_the_ceiling_is_waited_the_same_in_every_client(fail: Callable[..., MirrorError]) -> None:
    sleeps: list[float] = []
    fail(_answering(503, "0"), sleeps)
    assert sleeps and all(s <= FAST.retry_after_max_s for s in sleeps)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("fail", [_registry_failure, _chart_failure], ids=["registry", "chart fetcher"])
def test_the_same_statuses_are_retried_in_every_client(fail: Callable[..., MirrorError], status: int) -> None:
    sleeps: list[float] = []
    fail(_answering(status, "0"), sleeps)
    assert len(sleeps) == FAST.max_attempts - 1


def _every_error_class() -> list[type[MirrorError]]:
    found = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, MirrorError)]
    return sorted(found, key=lambda c: c.__name__)


def _instance(cls: type[MirrorError]) -> MirrorError:
    if cls is errors.ManifestError:
        return cls("m.yaml", "spec.images[0]", "bad", hint="fix it")
    if cls is errors.SlowTransferError:
        return cls("slow", retryable=True, hint="fix it")
    if cls is errors.RegistryHTTPError:
        return cls("no", status=500, hint="fix it")
    if cls is errors.RateLimitedError:
        return cls("quota", rate_limit={"host": "docker.io", "remaining": 3}, hint="fix it")
    if issubclass(cls, VerificationError):
        return cls("refused", problems=[Problem("CODE", "what")], hint="fix it")
    return cls("failed", hint="fix it")


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_every_error_has_one_json_form_with_the_same_keys(cls: type[MirrorError]) -> None:
    body = _instance(cls).to_json()
    assert {"exitCode", "error", "message", "hint"} <= set(body)
    assert body["exitCode"] == cls.exit_code and body["error"] == cls.__name__
    assert set(body) - {"exitCode", "error", "message", "hint"} <= {"problems", "rateLimit"}


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_the_run_report_shows_an_error_as_its_json_form(cls: type[MirrorError]) -> None:
    error = _instance(cls)
    assert failure_entry(error) == error.to_json()


def test_no_module_but_the_retry_policy_maps_transport_exceptions() -> None:
    package = Path(mirror.__file__).parent
    policy = package / "registry" / "retry.py"
    # mirror.httptransport raises httpx's classes (it stands in for httpx's own transport): it maps socket errors
    # to them, never them to mirror's errors.
    transport = package / "httptransport.py"
    mapped = ("httpx.ConnectError", "httpx.TimeoutException", "httpx.TooManyRedirects", "RETRY_STATUSES = ")
    offenders = [
        f"{path.relative_to(package)}: {needle}"
        for path in sorted(package.rglob("*.py"))
        if path not in (policy, transport)
        for needle in mapped
        if needle in path.read_text()
    ]
    assert offenders == []


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_the_cli_json_error_line_carries_the_errors_json_form(
    cls: type[MirrorError], capsys: pytest.CaptureFixture[str]
) -> None:
    error = _instance(cls)
    _fail(error, "json")
    line = json.loads(capsys.readouterr().err)
    assert {k: line[k] for k in error.to_json()} == error.to_json()


def test_an_interrupt_is_reported_as_the_interrupted_error_with_exit_130() -> None:
    entry = failure_entry(KeyboardInterrupt())
    assert entry == Interrupted("interrupted").to_json()
    assert entry["exitCode"] == 130 == exit_code_of(KeyboardInterrupt())
