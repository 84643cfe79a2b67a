"""Blob downloads read into the thread's buffer (RegistryClient.download_blob over mirror.httptransport's
read_into), against a loopback server that answers exactly the bytes a test scripts: a body longer than the blob,
cut short, or framed three ways, fresh and resumed with Range, into a file or a one-pass tar's slot, on worker
threads that download one blob after another. The registry simulator's blob tests run on httpx.MockTransport,
whose bodies take read_into's copying fallback; these reach the buffer itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mirror.bundle.tarball import OnePassTar
from mirror.errors import DigestMismatchError, TransferError
from mirror.limits import Limits
from mirror.parallel import run_parallel
from mirror.registry.client import RegistryClient
from mirror.registry.endpoint import Endpoint
from tests.support.scriptedhttp import Peer, Server

BLOB = bytes(range(256)) * 40  # 10,240 bytes, no two neighbouring pieces alike
Script = Callable[[int, bytes], tuple[bytes, bool]]  # (request number from 0, its head) -> (answer, close after)


class Scripted:
    """A loopback HTTP/1.1 server answering each request (any connection) with what `script` says."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        self._server = Server(self._serve)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self._server.port}"

    def close(self) -> None:
        self._server.close()

    def _serve(self, peer: Peer) -> None:
        while (head := peer.request(read_body=False)) is not None:
            with self._lock:
                number = len(self.heads)
                self.heads.append(head.lower())
            answer, close = self.script(number, head.lower())
            peer.sock.sendall(answer)
            if close:
                peer.sock.shutdown(socket.SHUT_WR)
                return


@contextlib.contextmanager
def registry(script: Script, limits: Limits | None = None) -> Iterator[tuple[Scripted, RegistryClient]]:
    server = Scripted(script)
    endpoint = Endpoint(server.netloc, "http", server.netloc)
    try:
        with RegistryClient(endpoint, None, limits or Limits(), sleep=lambda _: None) as client:
            yield server, client
    finally:
        server.close()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def download(client: RegistryClient, blob: bytes = BLOB, dest: io.BytesIO | None = None) -> bytes:
    into = dest if dest is not None else io.BytesIO()
    try:
        client.download_blob("team/app", digest_of(blob), len(blob), into)
    finally:
        written = into.getvalue()
    return written


def with_length(body: bytes, status: bytes = b"200 OK", fields: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % len(body) + fields + b"\r\n" + body


def chunked(body: bytes, status: bytes = b"200 OK", fields: bytes = b"", piece: int = 3000) -> bytes:
    chunks = b"".join(
        b"%x\r\n" % len(body[i : i + piece]) + body[i : i + piece] + b"\r\n" for i in range(0, len(body), piece)
    )
    return b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n" + fields + b"\r\n" + chunks + b"0\r\n\r\n"


def resumed_at(offset: int) -> bytes:
    return b"content-range: bytes %d-%d/%d\r\n" % (offset, len(BLOB) - 1, len(BLOB))


def cut_then(second: Callable[[bytes], bytes], at: int = 4000) -> Script:
    """The first answer announces the whole blob and ends after `at` bytes; the next answers what `second` makes
    of the request's head."""

    def script(number: int, head: bytes) -> tuple[bytes, bool]:
        if number == 0:
            return with_length(BLOB)[: -len(BLOB) + at], True
        return second(head), False

    return script


# -- a body longer than the blob: refused at its first byte past the size, never written --------------------------


@pytest.mark.parametrize(
    "answer",
    [
        chunked(BLOB + b"EXTRA"),
        b"HTTP/1.0 200 OK\r\n\r\n" + BLOB + b"EXTRA",  # delimited by the close alone
    ],
    ids=["chunked", "close-delimited"],
)
def test_a_body_longer_than_the_blob_is_refused_with_nothing_written_past_its_size(answer: bytes) -> None:
    with registry(lambda n, head: (answer, True)) as (_, client):
        dest = io.BytesIO()
        with pytest.raises(DigestMismatchError, match="more than the declared 10240 bytes"):
            download(client, dest=dest)
    assert len(dest.getvalue()) <= len(BLOB)


def test_a_resumed_body_longer_than_the_rest_of_the_blob_is_refused_with_nothing_written_past_its_size() -> None:
    script = cut_then(lambda head: chunked(BLOB[4000:] + b"EXTRA", b"206 Partial Content", resumed_at(4000)))
    with registry(script) as (server, client):
        dest = io.BytesIO()
        with pytest.raises(DigestMismatchError, match="more than the declared"):
            download(client, dest=dest)
    assert b"range: bytes=4000-" in server.heads[1]
    assert dest.getvalue() == BLOB[: len(dest.getvalue())]


def test_a_resumed_answer_announcing_another_length_is_refused_before_its_body_is_read() -> None:
    script = cut_then(lambda head: with_length(BLOB[4000:] + b"EXTRA", b"206 Partial Content", resumed_at(4000)))
    with registry(script) as (_, client):
        dest = io.BytesIO()
        with pytest.raises(DigestMismatchError, match="announces 10245 bytes"):
            download(client, dest=dest)
    assert dest.getvalue() == BLOB[:4000]


# -- bodies that end early, and resumed ones that arrive whole ------------------------------------------------------


@pytest.mark.parametrize(
    "rest",
    [
        lambda head: with_length(BLOB[4000:], b"206 Partial Content", resumed_at(4000)),
        lambda head: chunked(BLOB[4000:], b"206 Partial Content", resumed_at(4000)),
        lambda head: with_length(BLOB),  # the Range ignored: the whole blob again, from its start
    ],
    ids=["206-length", "206-chunked", "200-whole"],
)
def test_a_body_cut_short_is_resumed_and_the_file_holds_the_blob_exactly(rest: Callable[[bytes], bytes]) -> None:
    with registry(cut_then(rest)) as (server, client):
        assert download(client) == BLOB
    assert b"range: bytes=4000-" in server.heads[1]


def test_a_chunked_body_cut_short_on_every_answer_fails_as_a_transfer_error_not_a_short_blob() -> None:
    cut = chunked(BLOB)[:5000]
    with registry(lambda n, head: (cut, True), Limits(max_attempts=2)) as (_, client), pytest.raises(TransferError):
        download(client)


# -- the buffer: pieces no larger than it, shared by the downloads of one thread -----------------------------------


def test_a_buffer_smaller_than_the_blob_is_refilled_and_every_byte_arrives_in_its_place() -> None:
    with registry(lambda n, head: (chunked(BLOB, piece=1000), False), Limits(copy_chunk_bytes=7)) as (_, client):
        assert download(client) == BLOB


def test_downloads_on_worker_threads_one_after_another_each_get_their_own_bytes() -> None:
    blobs = {f"/{n}": hashlib.sha256(b"%d" % n).digest() * (300 + n) for n in range(12)}

    def script(number: int, head: bytes) -> tuple[bytes, bool]:
        wanted = head.split(b" ")[1].decode()  # the blob's digest names it; the server keys on the digest
        body = next(data for data in blobs.values() if digest_of(data) in wanted)
        return chunked(body, piece=700) if number % 2 else with_length(body), False

    with registry(script, Limits(copy_chunk_bytes=4096)) as (_, client):
        written = run_parallel(list(blobs.values()), lambda blob: download(client, blob), 4)
    assert written == list(blobs.values())


def test_two_clients_with_buffers_of_different_sizes_alternate_on_one_thread() -> None:
    answer = chunked(BLOB, piece=1500)
    with (
        registry(lambda n, head: (answer, False), Limits(copy_chunk_bytes=1024)) as (_, small),
        registry(lambda n, head: (answer, False), Limits(copy_chunk_bytes=64 * 1024)) as (_, large),
    ):
        assert [download(client) for client in (small, large, small, large)] == [BLOB] * 4


def test_a_resumed_download_into_a_one_pass_tar_slot_holds_the_blob_exactly(tmp_path: Path) -> None:
    name = "blobs/sha256/" + digest_of(BLOB).removeprefix("sha256:")
    rest = cut_then(lambda head: chunked(BLOB[4000:], b"206 Partial Content", resumed_at(4000)))
    with OnePassTar(tmp_path / "out.tar") as tar:
        tar.reserve([(name, len(BLOB))])
        with registry(rest) as (_, client), tar.filling(name) as slot:
            client.download_blob("team/app", digest_of(BLOB), len(BLOB), slot)  # type: ignore[arg-type]
        tar.finish()
    with tarfile.open(tmp_path / "out.tar") as written:
        member = written.extractfile(name)
        assert member is not None and member.read() == BLOB
