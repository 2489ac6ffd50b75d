"""The conversation protocols: on the in-memory transport with a fake clock,
then many concurrent clients on real loopback sockets."""

from __future__ import annotations

import socket
import time
from typing import List

import pytest

from reactor import Reactor
from reactor.conversations import AckProtocol, EchoProtocol, ReadProtocol, Settings, serve
from reactor.testing import FakeClock, MemoryTransport, advance


def make(cls, reactor: Reactor, **settings) -> tuple:
    lines: List[str] = []
    protocol = cls(reactor, Settings(**settings), lines.append)
    transport = MemoryTransport(peername=("10.0.0.7", 4242))
    transport.connect(protocol)
    return protocol, transport, lines


def test_ack_on_memory_transport(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(AckProtocol, fake_reactor)
    assert transport.value() == b"You are connected!"
    transport.feed(b"hello\nworld", chunk_size=1)
    transport.feed_eof()
    assert lines == ["server: got connection from = 10.0.0.7 and port = 4242",
                     "Got the message:hello", "Got the message:world",
                     "connection from 10.0.0.7:4242 closed"]
    assert transport.closed and not transport.aborted


def test_read_on_memory_transport(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(ReadProtocol, fake_reactor)
    transport.feed(b"Half a league, half a league ... \0")
    transport.feed_eof()
    assert lines[1:] == ["-->Half a league, half a league ... ", "Ending connection"]
    assert transport.value() == b""


def test_echo_on_memory_transport(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(EchoProtocol, fake_reactor, record_size=4, verbose=True)
    transport.feed(b"abcdefghij", chunk_size=3)
    assert transport.value() == b"abcdefgh"
    assert lines[1:] == ["echoed 4 bytes to 10.0.0.7:4242", "echoed 4 bytes to 10.0.0.7:4242"]


def test_idle_timeout_closes_with_reason(fake_reactor: Reactor, clock: FakeClock) -> None:
    protocol, transport, lines = make(ReadProtocol, fake_reactor, idle_timeout=30)
    advance(fake_reactor, 20)
    transport.feed(b"x")
    advance(fake_reactor, 29.9)
    assert not transport.closed
    advance(fake_reactor, 0.1)
    assert transport.closed
    assert lines[-1] == "connection from 10.0.0.7:4242 timed out: no data for 30s"
    assert fake_reactor.next_deadline() is None


def test_message_timeout_cuts_off_a_trickler(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(AckProtocol, fake_reactor, idle_timeout=10,
                                      message_timeout=25)
    for _ in range(3):
        advance(fake_reactor, 9)
        transport.feed(b"z")
    assert not transport.closed
    advance(fake_reactor, 8)  # 34 s: 25 s after the first byte at 9 s
    assert transport.closed
    assert lines[-1].endswith("timed out: message not complete within 25s")


def test_message_too_long_closes_that_connection(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(ReadProtocol, fake_reactor, max_message=8)
    transport.feed(b"short\n" + b"L" * 100)
    assert transport.closed
    assert lines[1:] == ["-->short", "connection from 10.0.0.7:4242 closed: "
                                     "message longer than 8 bytes"]


def test_lost_connection_is_reported(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(EchoProtocol, fake_reactor)
    transport.lose(ConnectionResetError("reset by peer"))
    assert lines[-1] == ("connection from 10.0.0.7:4242 failed: "
                         "ConnectionResetError('reset by peer')")
    assert fake_reactor.next_deadline() is None  # its idle deadline is forgotten


def test_subclass_can_change_reporting(fake_reactor: Reactor) -> None:
    seen = []

    class Quiet(ReadProtocol):
        def event_received(self, event):
            seen.append(event)

    protocol = Quiet(fake_reactor, Settings(), lambda line: None)
    transport = MemoryTransport()
    transport.connect(protocol)
    transport.feed(b"a\0")
    assert [type(e).__name__ for e in seen] == ["MessageReceived"]


def _clients(reactor: Reactor, port: int, host: str, count: int) -> List[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    for _ in range(count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
    return socks


def _recv_exactly(reactor: Reactor, run, socks: List[socket.socket], size: int) -> List[bytes]:
    got = {s: b"" for s in socks}

    def poll() -> bool:
        for s in socks:
            while len(got[s]) < size:
                try:
                    chunk = s.recv(size - len(got[s]))
                except BlockingIOError:
                    break
                if not chunk:
                    break
                got[s] += chunk
        return all(len(v) >= size for v in got.values())

    run(reactor, poll, timeout=20, step=0.01)
    return [got[s] for s in socks]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_200_concurrent_echo_clients_with_records_split(reactor: Reactor, run, host: str) -> None:
    listener = serve(reactor, "echo", host, 0, settings=Settings(record_size=250),
                     log=lambda line: None)
    socks = _clients(reactor, listener.port, host, 200)
    try:
        run(reactor, lambda: len(listener.connections) == 200, timeout=20, step=0.01)
        records = [bytes([i % 256]) * 250 for i in range(200)]
        for s, record in zip(socks, records):  # each record in two segments
            s.setblocking(True)
            s.sendall(record[:100])
        reactor.run_once(0.01)
        for s, record in zip(socks, records):
            s.sendall(record[100:])
            s.setblocking(False)
        assert _recv_exactly(reactor, run, socks, 250) == records
    finally:
        for s in socks:
            s.close()
    run(reactor, lambda: not listener.connections, timeout=20, step=0.01)
    listener.close()


def test_200_concurrent_ack_and_read_clients(reactor: Reactor, run) -> None:
    lines: List[str] = []
    ack = serve(reactor, "ack", "127.0.0.1", 0, log=lines.append)
    read = serve(reactor, "read", "::1", 0, log=lines.append)
    ack_socks = _clients(reactor, ack.port, "127.0.0.1", 200)
    read_socks = _clients(reactor, read.port, "::1", 200)
    try:
        acks = _recv_exactly(reactor, run, ack_socks, 18)
        assert set(acks) == {b"You are connected!"}
        for i, s in enumerate(ack_socks):
            s.send(b"message %d" % i)
            s.close()
        for i, s in enumerate(read_socks):
            for byte in b"read %d\0" % i:  # one byte at a time
                s.send(bytes([byte]))
            s.close()
        run(reactor, lambda: lines.count("Ending connection") == 200
            and sum(line.startswith("Got the message:") for line in lines) == 200,
            timeout=20, step=0.01)
    finally:
        for s in ack_socks + read_socks:
            s.close()
    assert {f"Got the message:message {i}" for i in range(200)} <= set(lines)
    assert {f"-->read {i}" for i in range(200)} <= set(lines)
    run(reactor, lambda: not ack.connections and not read.connections, timeout=20, step=0.01)
    ack.close()
    read.close()


def test_idle_timeout_on_real_sockets_keeps_others_served(reactor: Reactor, run) -> None:
    lines: List[str] = []
    listener = serve(reactor, "echo", "127.0.0.1", 0, settings=Settings(idle_timeout=0.3),
                     log=lines.append)
    silent = socket.create_connection(("127.0.0.1", listener.port))
    busy = socket.create_connection(("127.0.0.1", listener.port))
    busy.setblocking(False)
    try:
        echoed = b""
        started = time.monotonic()
        while time.monotonic() - started < 0.6:  # talk past the silent one's deadline
            busy.send(b"ping")
            run(reactor, lambda: _readable(busy), timeout=5, step=0.01)
            echoed += busy.recv(100)
            pause_until = time.monotonic() + 0.05
            run(reactor, lambda until=pause_until: time.monotonic() > until, timeout=5,
                step=0.01)
        assert echoed == b"ping" * (len(echoed) // 4) and len(echoed) >= 32
        assert sum("timed out: no data for 0.3s" in line for line in lines) == 1
        silent.settimeout(5)
        assert silent.recv(10) == b""
    finally:
        silent.close()
        busy.close()
    run(reactor, lambda: not listener.connections, timeout=5)
    listener.close()


def _readable(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False


def test_message_timer_does_not_reorder_the_idle_queue(fake_reactor: Reactor) -> None:
    # A's message timer firing (no bytes) must not re-queue A with its old
    # activity time behind B: A's idle deadline is 13, not later.
    from reactor.conversations import _idle_expired
    from reactor.idle import IdleQueue
    clock = fake_reactor._clock
    start = clock.now()
    settings = Settings(idle_timeout=10, message_timeout=12)
    idle = IdleQueue(fake_reactor, 10, _idle_expired)
    lines: List[str] = []
    a = MemoryTransport(peername=("10.0.0.1", 1))
    a.connect(ReadProtocol(fake_reactor, settings, lines.append, idle))
    a.feed(b"a")
    advance(fake_reactor, 3)
    a.feed(b"\n")  # message complete; idle deadline now start + 13
    advance(fake_reactor, 8)
    b = MemoryTransport(peername=("10.0.0.2", 2))
    b.connect(ReadProtocol(fake_reactor, settings, lines.append, idle))
    advance(fake_reactor, 1.999)  # the message timer (start + 12) fires here
    assert not a.closed
    advance(fake_reactor, 0.001)
    assert a.closed and clock.now() == start + 13
    b.lose()


def test_idle_timeout_cancels_the_message_timer(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(ReadProtocol, fake_reactor, idle_timeout=2,
                                      message_timeout=10)
    transport.feed(b"a")  # arms the message timer for t+10
    advance(fake_reactor, 2)
    assert transport.closed and "timed out: no data for 2s" in lines[-1]
    assert fake_reactor.next_deadline() is None  # nothing left to keep it alive


@pytest.mark.parametrize("cls", [EchoProtocol, ReadProtocol])
def test_a_busy_connection_touches_the_idle_queue_once_per_slack(
        cls: type, fake_reactor: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-chunk reads do not touch the idle queue; it hears of activity at
    most once per idle.slack, and the connection still closes exactly one
    timeout after its last byte, never while it is busy."""
    from reactor.idle import IdleQueue
    clock = fake_reactor._clock
    protocol, transport, lines = make(cls, fake_reactor, idle_timeout=30)
    idle = protocol._context.idle
    assert isinstance(idle, IdleQueue) and idle.slack == 30 / 16
    touches: List[float] = []
    real_touch = IdleQueue.touch

    def counting_touch(self: IdleQueue, key: object, when: float) -> None:
        touches.append(when)
        real_touch(self, key, when)

    monkeypatch.setattr(IdleQueue, "touch", counting_touch)
    for _ in range(1200):  # a chunk every 0.1 s for two minutes
        advance(fake_reactor, 0.1)
        transport.feed(b"x\n")
    assert not transport.closed
    assert 120 / idle.slack - 2 <= len(touches) <= 120 / idle.slack + 2
    last_byte = clock.now()
    advance(fake_reactor, 29.999)
    assert not transport.closed
    advance(fake_reactor, 0.001)
    assert transport.closed and clock.now() == pytest.approx(last_byte + 30)
    assert lines[-1].endswith("timed out: no data for 30s")
