"""Every transfer finishes in bounded time, and SIGTERM or Ctrl-C stops a run within seconds (issue 20).

The upstreams here answer, but drip: a few bytes, then a pause. Small limits are given through the library
API, so a drip is cut in seconds; the signal tests run the installed command with its default limits, under
which these drips would run for minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirror.collector.run import collect
from mirror.errors import TransferError
from mirror.git.refs import remote_refs
from mirror.git.runner import Transport
from mirror.limits import Limits
from tests.support.hostile import Answer, HostileServer, drip, wait_until
from tests.support.hostile.dripping import DripRegistry, DumbGitServer, make_dumb_repository

# A floor of 1 KiB/s measured over 2 s, and 3 s for a whole small document.
QUICK = Limits(min_bytes_per_s=1024, speed_window_s=2.0, document_deadline_s=3.0, max_attempts=4)
BOUND_S = 30.0  # generous: each drip below is cut after 2 to 6 s


def _within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run `call` in a thread; the exception it raised (None if it returned). Fails if it runs past `seconds`."""
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return outcome.get("error")


def _mirrorset(path: Path, spec: dict[str, Any]) -> Path:
    document = {"apiVersion": "mirror/v1", "kind": "MirrorSet", "metadata": {"name": "drip"}, "spec": spec}
    path.write_text(yaml.safe_dump(document))
    return path


def _image_set(tmp_path: Path, registry: DripRegistry) -> Path:
    return _mirrorset(
        tmp_path / "drip.yaml", {"registries": {registry.netloc: {"plainHTTP": True}}, "images": [registry.image]}
    )


def _collect(tmp_path: Path, manifest: Path, limits: Limits = QUICK) -> BaseException | None:
    return _within(BOUND_S, lambda: collect([manifest], tmp_path / "out.tar", jobs=2, limits=limits))


def _assert_transfer_failure(error: BaseException | None, *names: str) -> None:
    assert isinstance(error, TransferError), repr(error)
    assert error.exit_code == 4
    for name in names:
        assert name in error.message, error.message


def _no_staging_left(directory: Path) -> None:
    assert not [p.name for p in directory.iterdir() if ".partial" in p.name]


def test_a_dripping_manifest_fails_within_the_document_deadline(tmp_path: Path) -> None:
    with DripRegistry(piece=8, piece_delay_s=0.2) as registry:  # 40 bytes/s: above this floor, not done in 3 s
        registry.drip = {"manifest"}
        started = time.monotonic()
        error = _collect(tmp_path, _image_set(tmp_path, registry), replace(QUICK, min_bytes_per_s=16))
        _assert_transfer_failure(error, "manifest", f"{registry.netloc}/app:1.0", "3 s")
        assert "not complete" in error.message  # type: ignore[union-attr]
        assert time.monotonic() - started < BOUND_S
        # A drip is not retried: the same upstream would drip again.
        assert len(registry.seen(lambda r: r.method == "GET" and "/manifests/" in r.path)) == 1
    _no_staging_left(tmp_path)


def test_a_dripping_blob_fails_under_the_speed_floor(tmp_path: Path) -> None:
    with DripRegistry(layers=1, layer_size=256 * 1024, piece=64, piece_delay_s=0.2) as registry:  # 320 bytes/s
        registry.drip = {"blob"}
        error = _collect(tmp_path, _image_set(tmp_path, registry))
        _assert_transfer_failure(error, "blob", registry.netloc, registry.layer_digests()[0], "1024 bytes/s")
        # A speed floor is retried like a broken transfer, so a drip costs at most max_attempts windows.
        assert registry.blob_gets_seen() == 1 + QUICK.max_attempts  # the config, then the layer
    _no_staging_left(tmp_path)


def test_a_slow_but_steady_blob_is_not_cut(tmp_path: Path) -> None:
    with DripRegistry(layers=1, layer_size=64 * 1024, piece=1024, piece_delay_s=0.05) as registry:  # 20 KiB/s
        registry.drip = {"blob"}
        error = _collect(tmp_path, _image_set(tmp_path, registry))
        assert error is None, repr(error)
    assert (tmp_path / "out.tar").is_file()


def test_a_dripping_token_endpoint_fails_within_the_document_deadline(tmp_path: Path) -> None:
    with DripRegistry(piece=1, piece_delay_s=0.2) as registry:
        registry.token_auth = True
        registry.drip = {"token"}  # 5 bytes/s: above this floor, not done in 3 s
        error = _collect(tmp_path, _image_set(tmp_path, registry), replace(QUICK, min_bytes_per_s=1))
        _assert_transfer_failure(error, "token", registry.netloc, "3 s")
        # A missed deadline is not retried: the same upstream would take as long again.
        assert len(registry.seen(lambda r: r.path.startswith("/token"))) == 1


def test_a_dripping_git_pack_fails_under_the_speed_floor(tmp_path: Path) -> None:
    bare = make_dumb_repository(tmp_path / "upstream")
    with DumbGitServer(bare, piece=16, piece_delay_s=0.1) as server:  # 160 bytes/s
        server.drip_packs = True
        manifest = _mirrorset(
            tmp_path / "git.yaml", {"git": [{"name": "drip", "url": server.repo_url, "ref": {"branch": "main"}}]}
        )
        started = time.monotonic()
        error = _collect(tmp_path, manifest)
        _assert_transfer_failure(error, server.repo_url)
        assert "too slow" in error.message.lower() or "1024 bytes/s" in error.message  # type: ignore[union-attr]
        assert time.monotonic() - started < BOUND_S
        assert server.pack_requests() >= 1
    _no_staging_left(tmp_path)


def test_a_dripping_chart_index_fails_within_the_document_deadline(tmp_path: Path) -> None:
    index = b"apiVersion: v1\nentries: {}\n" + b"#" * 4096
    with HostileServer(lambda _: Answer(200, {}, drip(index, 8), piece_delay_s=0.2)) as server:  # 40 bytes/s
        manifest = _mirrorset(
            tmp_path / "charts.yaml", {"charts": [{"name": "app", "repo": server.url, "version": "1.0.0"}]}
        )
        error = _collect(tmp_path, manifest, replace(QUICK, min_bytes_per_s=16))
        _assert_transfer_failure(error, f"{server.url}/index.yaml", "3 s")
        assert len(server.seen()) == 1


def test_a_git_source_is_stopped_at_its_deadline(tmp_path: Path) -> None:
    # The server accepts, then says nothing for a minute: under git's speed window, over the source's deadline.
    with HostileServer(lambda _: Answer(200, {}, b"", delay_s=60)) as server:
        limits = Limits(git_source_timeout_s=2.0, speed_window_s=120.0)
        transport = Transport().with_limits(limits).for_source()
        started = time.monotonic()
        error = _within(BOUND_S, lambda: remote_refs(f"{server.url}/repo.git", transport=transport))
        _assert_transfer_failure(error, f"{server.url}/repo.git", "within 2 s")
        assert time.monotonic() - started < BOUND_S


# -- SIGTERM and Ctrl-C ----------------------------------------------------------------------------------------


def _start(*args: str | Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRROR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "mirror", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str, float]:
    """Send `signum`; the exit code, stderr and the seconds it took to exit (killed after 60 s)."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        return -9, stderr, time.monotonic() - sent
    return process.returncode, stderr, time.monotonic() - sent


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_a_dripping_collect_exits_130_within_seconds(tmp_path: Path, signum: int) -> None:
    # Three dripping layers and --jobs 4: the downloads run in worker threads, not in the main thread.
    with DripRegistry(layers=3, layer_size=1024 * 1024, piece=4096, piece_delay_s=0.5) as registry:  # 8 KiB/s
        registry.drip = {"blob"}
        manifest = _image_set(tmp_path, registry)
        out, report, cache = tmp_path / "out" / "bundle.tar", tmp_path / "report.json", tmp_path / "cache"
        out.parent.mkdir()
        process = _start("collect", manifest, "-o", out, "--report", report, "--cache-dir", cache, "--jobs", "4", "-q")
        assert wait_until(lambda: registry.blob_gets_seen() >= 3, timeout_s=30), "the downloads never started"
        time.sleep(0.5)
        code, stderr, took = _stop(process, signum)
    assert code == 130, stderr
    assert took < 10, f"exited {took:.1f} s after the signal"
    assert "interrupted" in stderr
    assert not out.exists()
    # Only the partial tar stays, the cache being on: the next collect to OUT resumes from it.
    assert [p.name for p in out.parent.iterdir()] == [".bundle.tar.partial"], "staging was left behind"
    assert not list(cache.rglob("*.partial")), "a partial cache entry was left behind"
    written = json.loads(report.read_text())
    assert written["exitCode"] == 130


def test_sigterm_during_an_import_upload_exits_130_within_seconds(tmp_path: Path) -> None:
    with DripRegistry(layers=3, layer_size=64 * 1024) as upstream:
        bundle = tmp_path / "bundle.tar"
        collect([_image_set(tmp_path, upstream)], bundle, jobs=2)
    with DripRegistry(repository="app") as target:
        target.drip = {"upload"}  # every upload request waits 600 s for its answer...
        target.prompt_uploads = 2  # ...but the import's push check, an upload started and cancelled (2 requests)
        report = tmp_path / "import.json"
        process = _start(
            "import", bundle, "--allow-unsigned", "--registry", target.url, "--report", report, "--jobs", "4", "-q"
        )
        assert wait_until(lambda: target.uploads_seen() >= 4, timeout_s=30), "the uploads never started"
        code, stderr, took = _stop(process, signal.SIGTERM)
    assert code == 130, stderr
    assert took < 10, f"exited {took:.1f} s after the signal"
    assert "interrupted" in stderr
    assert json.loads(report.read_text())["exitCode"] == 130
