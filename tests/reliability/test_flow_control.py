"""Reliability items 1-3: big transfers, both directions full, flow control."""

from __future__ import annotations

import random
import socket
import threading
from typing import List, Optional

import pytest

from reactor import Protocol, Reactor
from reactor.conversations import Settings, serve

pytestmark = pytest.mark.timeout(180)

MiB = 1024 * 1024


def stream(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class ChunkedEchoClient(Protocol):
    """Writes ``payload`` in random-sized chunks, only while the transport
    is not paused, and checks that every byte comes back in order."""

    def __init__(self, payload: bytes, seed: int, done: List["ChunkedEchoClient"]) -> None:
        self.payload = payload
        self.rng = random.Random(seed)
        self.sent = 0
        self.received = 0
        self.mismatch: Optional[int] = None
        self.paused = False
        self.pauses = 0
        self.done = done
        self.lost: Optional[BaseException] = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        # Small kernel buffers, so that both directions fill up and the
        # transports' own flow control has to do the work.
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.pump()

    def pump(self) -> None:
        while not self.paused and self.sent < len(self.payload):
            size = self.rng.randint(1, 64 * 1024)
            chunk = self.payload[self.sent:self.sent + size]
            self.sent += len(chunk)
            self.transport.write(chunk)
        if self.sent == len(self.payload) and not self.paused:
            self.transport.write_eof()

    def pause_writing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def data_received(self, data: bytes) -> None:
        expected = self.payload[self.received:self.received + len(data)]
        if data != expected and self.mismatch is None:
            self.mismatch = self.received
        self.received += len(data)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost = exc
        self.done.append(self)


def test_1000_clients_echo_1_mib_each_in_random_chunks(reactor: Reactor, run) -> None:
    """Item 1: every byte comes back exactly; no deadlock although each
    client writes far more than the socket buffers hold before reading."""
    listener = serve(reactor, "echo", "127.0.0.1", 0, log=lambda line: None,
                     settings=Settings(idle_timeout=60))
    done: List[ChunkedEchoClient] = []
    clients = [ChunkedEchoClient(stream(i, MiB), i, done) for i in range(1000)]
    for client in clients:
        reactor.connect_tcp(lambda c=client: c, "127.0.0.1", listener.port, timeout=60)
    run(reactor, lambda: len(done) == 1000, timeout=150, step=0.1)
    assert [c.lost for c in clients] == [None] * 1000
    assert [c.mismatch for c in clients] == [None] * 1000
    assert [c.received for c in clients] == [MiB] * 1000
    assert sum(c.pauses for c in clients) > 0, "the test never filled a buffer"
    run(reactor, lambda: not listener.connections, timeout=10)
    listener.close()


class Recorder(Protocol):
    def __init__(self) -> None:
        self.events: List[str] = []
        self.lost: Optional[BaseException] = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")
        self.size_at_resume = self.transport.get_write_buffer_size()

    def connection_lost(self, exc) -> None:
        self.lost = exc
        self.closed = True


def _reader(sock: socket.socket, out: List[bytes], expect: int) -> threading.Thread:
    def read() -> None:
        total = bytearray()
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            total += chunk
        out.append(bytes(total))
    thread = threading.Thread(target=read)
    thread.start()
    return thread


def _pair(reactor: Reactor, protocol: Protocol):
    from reactor import StreamTransport
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = StreamTransport(reactor, ours, protocol)
    transport.start()
    return transport, theirs


def test_60_mib_write_then_close_delivers_everything_then_eof(reactor: Reactor, run) -> None:
    """Item 2."""
    protocol = Recorder()
    transport, peer = _pair(reactor, protocol)
    payload = stream(60, 60 * MiB)
    out: List[bytes] = []
    try:
        transport.write(payload)
        transport.close()
        thread = _reader(peer, out, len(payload))
        run(reactor, lambda: protocol.closed, timeout=60)
        thread.join(30)
    finally:
        peer.close()
    assert protocol.lost is None
    assert len(out[0]) == len(payload) and out[0] == payload  # and then EOF ended the read


@pytest.mark.parametrize("method", ["write", "writelines"])
def test_10000_writes_of_100_kib_pause_and_resume_exactly_once(reactor: Reactor, run,
                                                               method: str) -> None:
    """Item 3: pause once above the high-water mark, resume once at or
    below the low one, every byte received in order."""
    protocol = Recorder()
    transport, peer = _pair(reactor, protocol)
    transport.set_write_buffer_limits(high=4 * MiB, low=MiB)
    transport.set_max_write_buffer(None)  # this test buffers 1 GB on purpose
    block = stream(3, 100 * 1024)
    out: List[bytes] = []
    try:
        for i in range(10_000):
            piece = block[i % 7:] + block[:i % 7]  # each write differs
            if method == "write":
                transport.write(piece)
            else:
                transport.writelines([piece[:50_000], piece[50_000:]])
        assert protocol.events == ["pause"]
        assert transport.get_write_buffer_size() > 4 * MiB
        thread = _reader(peer, out, 0)
        run(reactor, lambda: transport.get_write_buffer_size() == 0, timeout=120)
        assert protocol.events == ["pause", "resume"]
        assert 0 < protocol.size_at_resume <= MiB  # at the low mark, not once empty
        transport.close()
        run(reactor, lambda: protocol.closed, timeout=10)
        thread.join(30)
    finally:
        peer.close()
    expected_len = 10_000 * 100 * 1024
    assert len(out[0]) == expected_len
    for i in (0, 1, 6, 7, 9_999):
        start = i * 100 * 1024
        assert out[0][start:start + 100 * 1024] == block[i % 7:] + block[:i % 7]
