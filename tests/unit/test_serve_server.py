"""The HTTP side of `mirror serve`: the listen address, TLS, bounded connections and idle timeouts, and how the
command starts (the address it listens on, on stdout) and stops (SIGTERM: exit 0; Ctrl-C: exit 130)."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from mirror.errors import UsageError
from mirror.limits import Limits
from mirror.serve.server import parse_listen, tls_context
from tests.conftest import MIRROR
from tests.support.servebundles import ChainBundle, serving
from tests.support.tlsloopback import loopback_certificate

APP = "registry.example/team/app:1.0"


@pytest.fixture
def bundle(tmp_path) -> Path:
    bundle = ChainBundle(tmp_path / "bundle", "lab")
    bundle.image(APP)
    bundle.finish()
    return bundle.root


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:5443", ("::1", 5443)),
        ("localhost:8080", ("localhost", 8080)),
    ],
)
def test_the_listen_address_is_host_and_port(text, address):
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["5000", "127.0.0.1", "127.0.0.1:", ":5000", "127.0.0.1:65536", "[::1:5000", "a b:1"])
def test_a_listen_address_without_a_host_or_a_valid_port_is_a_usage_error(text):
    with pytest.raises(UsageError):
        parse_listen(text)


def test_with_a_certificate_and_key_it_serves_https(bundle, tmp_path):
    cert, key = loopback_certificate(tmp_path)

    with serving([bundle], tls=tls_context(cert, key)) as served:
        response = httpx.get(f"{served.url}/v2/team/app/manifests/1.0", verify=ssl.create_default_context(cafile=cert))

    assert served.url.startswith("https://") and response.status_code == 200


def test_a_certificate_without_its_key_is_a_usage_error(tmp_path):
    cert, _ = loopback_certificate(tmp_path)

    with pytest.raises(UsageError):
        tls_context(cert, None)


def test_a_key_that_does_not_load_is_a_usage_error(tmp_path):
    cert, key = loopback_certificate(tmp_path)
    key.write_text("not a key")

    with pytest.raises(UsageError):
        tls_context(cert, key)


def test_a_stalled_tls_handshake_does_not_hold_up_other_clients(bundle, tmp_path):
    cert, key = loopback_certificate(tmp_path)
    with serving([bundle], tls=tls_context(cert, key)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)):  # connects, never says hello
            started = time.monotonic()
            response = httpx.get(f"{served.url}/v2/", verify=ssl.create_default_context(cafile=cert), timeout=10)

    assert response.status_code == 200 and time.monotonic() - started < 5


def test_an_idle_connection_is_closed_after_the_idle_timeout(bundle):
    with serving([bundle], limits=Limits(serve_idle_timeout_s=0.3)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""

    assert time.monotonic() - started < 5


def test_connections_beyond_the_limit_wait_until_one_is_free(bundle):
    limits = Limits(serve_max_connections=1, serve_idle_timeout_s=1.0)
    with serving([bundle], limits=limits) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)):  # holds the one slot until it idles out
            time.sleep(0.2)
            started = time.monotonic()
            response = httpx.get(f"{served.url}/v2/", timeout=10)
            waited = time.monotonic() - started

    assert response.status_code == 200 and 0.5 < waited < 5


def _start(bundle: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(MIRROR), "serve", str(bundle), "--allow-unsigned", "--listen", "127.0.0.1:0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = {"line": ""}
    reader = threading.Thread(target=lambda: ready.update(line=process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not ready["line"]:
        process.kill()
        pytest.fail(f"mirror serve did not say where it listens: {process.communicate()[1]}")
    return process, json.loads(ready["line"])["url"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_the_command_prints_its_address_and_stops_on_a_signal(bundle, signum, code):
    process, url = _start(bundle)
    try:
        assert httpx.get(f"{url}/v2/team/app/manifests/1.0").status_code == 200
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == code, stderr
    assert "GET /v2/team/app/manifests/1.0 200" in stderr
