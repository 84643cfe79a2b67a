"""netguard sets a socket's timeout only when the one in place would not do: each settimeout() is a system call
(ioctl FIONBIO) that hands the GIL to the other workers, and a small request reads several times."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mirror import netguard


class CountingChannel:
    """A connected socket that counts how often its timeout is set."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.set: list[float | None] = []

    def settimeout(self, value: float | None) -> None:
        self.set.append(value)
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def recv_into(self, buffer: memoryview) -> int:
        return self._sock.recv_into(buffer)

    def sendall(self, data: memoryview) -> None:
        self._sock.sendall(data)

    def fileno(self) -> int:
        return self._sock.fileno()


@pytest.fixture
def pair() -> Iterator[tuple[CountingChannel, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield CountingChannel(ours), theirs


def test_reads_in_a_row_set_the_timeout_once(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    buffer = memoryview(bytearray(4))
    for _ in range(3):
        peer.sendall(b"abcd")
        assert netguard.receive(channel, buffer, 30.0) == 4
    assert len(channel.set) == 1


def test_a_read_near_its_deadline_shortens_the_timeout_in_place(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    channel.settimeout(0.5)
    peer.sendall(b"ab")
    netguard.receive(channel, memoryview(bytearray(2)), 0.2)
    assert channel.set[-1] is not None and channel.set[-1] <= 0.2


def test_a_much_shorter_timeout_in_place_is_raised_again(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    channel.settimeout(0.01)  # left by a read at the end of an earlier deadline: reads would wake every 10 ms
    peer.sendall(b"ab")
    netguard.receive(channel, memoryview(bytearray(2)), 30.0)
    assert channel.set[-1] == pytest.approx(0.5)


def test_a_read_still_times_out_at_its_deadline(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, _ = pair
    channel.settimeout(0.5)
    with pytest.raises(TimeoutError):
        netguard.receive(channel, memoryview(bytearray(2)), 0.05)


def test_a_write_after_a_read_with_the_same_timeout_sets_none(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    peer.sendall(b"ab")
    netguard.receive(channel, memoryview(bytearray(2)), 30.0)
    before = len(channel.set)
    netguard.send(channel, b"xy", channel.gettimeout())
    assert len(channel.set) == before
    assert peer.recv(2) == b"xy"


def test_a_write_without_a_timeout_makes_the_socket_blocking(pair: tuple[CountingChannel, socket.socket]) -> None:
    channel, peer = pair
    channel.settimeout(0.5)
    netguard.send(channel, b"xy", None)
    assert channel.gettimeout() is None
    assert peer.recv(2) == b"xy"
