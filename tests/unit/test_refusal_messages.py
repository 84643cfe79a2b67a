"""Refusals that say what is wrong (issue 12, hole 7): a compressed bundle, a FIFO where a volume belongs, and
the policy's own collector key named as such in verify's signature lines."""

from __future__ import annotations

import base64
import bz2
import datetime as dt
import gzip
import json
import lzma
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirror.bundle.opening import open_bundle
from mirror.bundle.signatures import add_envelope
from mirror.bundle.verify import check_bundle
from mirror.cli import app
from mirror.errors import Problem
from mirror.trust.sign import sign_collection
from tests.support.signedbundles import SmallBundle, Trust, as_tar, make_trust, sign
from tests.unit.test_volumes import data_volumes, make_blobs, make_bundle

ZSTD_FRAME = bytes.fromhex("28b52ffd") + b"\x00" * 60  # the magic number opens every zstd frame


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def trust(tmp_path: Path) -> Trust:
    return make_trust(tmp_path / "trust")


@pytest.fixture
def tar_bundle(tmp_path: Path, trust: Trust) -> Path:
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/a:1")
    bundle.finish()
    sign(bundle.root, trust)
    return as_tar(bundle.root, tmp_path / "bundle.tar")


# --- compressed bundles ----------------------------------------------------------------------------------------

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: ZSTD_FRAME,
}
SUFFIXES = {"gzip": ".tar.gz", "bzip2": ".tar.bz2", "xz": ".tar.xz", "zstd": ".tar.zst"}


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
@pytest.mark.parametrize("command", ["verify", "inspect", "import"])
def test_a_compressed_bundle_is_refused_as_compressed_not_as_a_bad_checksum(
    tmp_path: Path, trust: Trust, tar_bundle: Path, name: str, command: str
) -> None:
    compressed = tmp_path / f"night{SUFFIXES[name]}"
    compressed.write_bytes(COMPRESSORS[name](tar_bundle.read_bytes()))
    args: dict[str, list[object]] = {
        "verify": ["--trust", trust.policy],
        "inspect": [],
        "import": ["--trust", trust.policy, "--registry", "https://127.0.0.1:9/r", "--dry-run"],
    }
    result = invoke(command, compressed, *args[command])
    assert result.exit_code == 2, result.output
    assert f"{compressed}: compressed ({name}); decompress it first" in result.stderr
    assert "checksum" not in result.output


def test_a_compressed_bundle_is_recognised_by_its_bytes_whatever_its_name(tmp_path: Path, tar_bundle: Path) -> None:
    disguised = tmp_path / "night.tar"
    disguised.write_bytes(gzip.compress(tar_bundle.read_bytes()))
    result = invoke("inspect", disguised)
    assert result.exit_code == 2
    assert "compressed (gzip); decompress it first" in result.stderr


def test_a_plain_tar_named_like_a_compressed_one_is_read_as_the_tar_it_is(tmp_path: Path, tar_bundle: Path) -> None:
    named = tmp_path / "night.tar.gz"
    named.write_bytes(tar_bundle.read_bytes())
    assert invoke("inspect", named).exit_code == 0


# --- FIFOs where files belong ------------------------------------------------------------------------------------


def finishes(work: Callable[[], object], unblock: list[Path], timeout_s: float = 20.0) -> object:
    """`work()`'s result; fails if it blocks (opening a FIFO for reading waits for a writer), then unblocks it."""
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        for fifo in unblock:  # give the blocked reader a writer, so the thread can end
            _release(fifo)
        thread.join(5)
        pytest.fail(f"blocked on a FIFO: {unblock}")
    return outcome[0]


def _release(fifo: Path) -> None:
    try:
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(descriptor)


def only(problems: list[Problem], code: str) -> str:
    found = [p.message for p in problems if p.code == code]
    assert len(found) == 1, problems
    return found[0]


def test_a_fifo_in_place_of_a_data_volume_is_not_a_regular_file_and_is_never_opened(tmp_path: Path) -> None:
    head = make_bundle(tmp_path, make_blobs([3000, 3000, 3000]), 2048)
    volume = data_volumes(head)[1]
    volume.unlink()
    os.mkfifo(volume)
    problems = finishes(lambda: check_bundle(open_bundle(head)).problems, [volume])
    message = only(problems, "VOLUME_NOT_REGULAR")  # type: ignore[arg-type]
    assert message.startswith(f"{volume}: not a regular file (a FIFO)")
    assert "missing" not in message


def test_a_stray_fifo_beside_the_volumes_is_named_and_never_opened(tmp_path: Path) -> None:
    head = make_bundle(tmp_path, make_blobs([3000, 3000]), 2048)
    stray = head.with_name("night.tar.009")
    os.mkfifo(stray)
    problems = finishes(lambda: check_bundle(open_bundle(head)).problems, [stray])
    assert only(problems, "VOLUME_UNLISTED").startswith(f"{stray}: not a regular file (a FIFO)")  # type: ignore[arg-type]


def test_a_fifo_given_as_the_bundle_is_not_a_regular_file(tmp_path: Path, trust: Trust) -> None:
    fifo = tmp_path / "bundle.tar"
    os.mkfifo(fifo)
    result = finishes(lambda: invoke("verify", fifo, "--trust", trust.policy), [fifo])
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert f"{fifo}: not a regular file or directory (a FIFO)" in result.stderr  # type: ignore[attr-defined]


# --- signature roles --------------------------------------------------------------------------------------------


def test_verify_names_the_policy_collector_key_as_collector_when_its_envelope_is_refused(
    tmp_path: Path, trust: Trust
) -> None:
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/a:1")
    bundle.finish()
    sign(bundle.root, trust, bundle_id="another-bundle")  # signed, but naming another bundle: BUNDLE_MISMATCH
    result = invoke("verify", bundle.root, "--trust", trust.policy)
    assert result.exit_code == 3
    key_id = trust.collector.public.key_id
    assert f": refused (collector {key_id}): BUNDLE_MISMATCH" in result.stdout
    assert "unknown" not in result.stdout


def test_verify_names_the_claimed_collector_key_of_a_forged_envelope(tmp_path: Path, trust: Trust) -> None:
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/a:1")
    raw = bundle.finish()
    envelope = json.loads(
        sign_collection(
            trust.collector,
            raw,
            bundle_id=bundle.bundle_id,
            collector="c",
            sequence=1,
            created=dt.datetime.now(dt.UTC),
            valid_for=dt.timedelta(days=1),
        )
    )
    signature = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    signature[-1] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    add_envelope(bundle.root, json.dumps(envelope).encode())
    result = invoke("verify", bundle.root, "--trust", trust.policy)
    assert result.exit_code == 3
    assert f": untrusted (collector {trust.collector.public.key_id}): claims collector key" in result.stdout
    assert "unknown" not in result.stdout


def test_a_fifo_inside_a_directory_bundle_is_named_and_never_opened(tmp_path: Path, trust: Trust) -> None:
    bundle = SmallBundle(tmp_path / "bundle")
    bundle.image("registry.example/a:1")
    bundle.finish()
    fifo = bundle.root / "blobs" / "sha256" / ("f" * 64)
    os.mkfifo(fifo)
    result = finishes(lambda: invoke("verify", bundle.root, "--trust", trust.policy), [fifo])
    assert result.exit_code == 3  # type: ignore[attr-defined]
    assert f"blobs/sha256/{'f' * 64} is a FIFO, not a regular file or directory" in result.stderr  # type: ignore[attr-defined]
