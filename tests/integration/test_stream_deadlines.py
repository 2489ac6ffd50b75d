"""Transport deadlines for any protocol: idle, lifetime and write stall, on
real loopback sockets with a fake clock (so every instant is exact)."""

from __future__ import annotations

import socket
from typing import Any, Iterator, List, Optional, Tuple

import pytest

from reactor import DeadlineExceeded, Protocol, Reactor
from reactor.testing import FakeClock, advance

pytestmark = pytest.mark.timeout(30)


class Plain(Protocol):
    """A user protocol: echoes, and records what the transport told it."""

    def __init__(self, keep: bool = False, goodbye: bytes = b"") -> None:
        self.keep = keep
        self.goodbye = goodbye
        self.transport: Any = None
        self.exceeded: List[Tuple[str, float]] = []
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
        self.exceeded.append((exc.kind, exc.timeout))
        if self.goodbye:
            self.transport.write(self.goodbye)
        return self.keep

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


@pytest.fixture
def fake(clock: FakeClock, errors: list) -> Iterator[Reactor]:
    r = Reactor(clock=clock)
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    yield r
    for _ in range(3):
        r.run_once(0)
    assert r.registered_count() == 0
    r.close()


def serve_one(reactor: Reactor, protocol: Plain, **settings: Any
              ) -> Tuple[Any, socket.socket]:
    """A listener with ``settings``, one client connected and accepted."""
    listener = reactor.listen_tcp(lambda: protocol, "127.0.0.1", 0, **settings)
    client = socket.create_connection(("127.0.0.1", listener.port))
    client.settimeout(5)
    for _ in range(100):
        if protocol.transport is not None:
            break
        reactor.run_once(0.01)
    listener.close()
    return listener, client


def serve_one_that_never_reads(reactor: Reactor, protocol: Plain, **settings: Any
                               ) -> socket.socket:
    """As ``serve_one``, but the client's receive buffer is tiny and it never
    reads: whatever the server writes beyond a few KiB stays buffered."""
    listener = reactor.listen_tcp(lambda: protocol, "127.0.0.1", 0, **settings)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", listener.port))
    for _ in range(100):
        if protocol.transport is not None:
            break
        reactor.run_once(0.01)
    listener.close()
    return client


def echo(reactor: Reactor, sock: socket.socket, data: bytes) -> None:
    """Send ``data`` and run the loop until it comes back."""
    sock.sendall(data)
    sock.setblocking(False)
    got = b""
    for _ in range(500):
        reactor.run_once(0.01)
        try:
            got += sock.recv(65536)
        except BlockingIOError:
            pass
        if got == data:
            return
    raise AssertionError(f"echo of {data!r} got {got!r}")


def read_to_eof(reactor: Reactor, sock: socket.socket) -> bytes:
    sock.setblocking(False)
    got = bytearray()
    for _ in range(500):
        reactor.run_once(0.01)
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            return bytes(got)
        got += chunk
    raise AssertionError("no EOF")


def test_idle_deadline_counts_from_the_last_bytes_and_is_never_early(
        fake: Reactor, clock: FakeClock) -> None:
    from reactor.trace import Tracer

    fake.tracer = Tracer()
    protocol = Plain()
    _, client = serve_one(fake, protocol, idle_timeout=5)
    start = clock.now()
    advance(fake, 3)
    echo(fake, client, b"ping")  # activity at start + 3: the deadline moves to start + 8
    advance(fake, 4.999)
    assert protocol.exceeded == [] and not protocol.transport.is_closing()
    advance(fake, 0.001)
    assert protocol.exceeded == [("idle", 5)] and clock.now() == start + 8
    assert read_to_eof(fake, client) == b""
    (exc,) = protocol.lost
    assert isinstance(exc, DeadlineExceeded) and isinstance(exc, TimeoutError)
    assert exc.kind == "idle" and str(exc) == "no data received for 5s"
    assert ("timeout", "no data received for 5s") in [(e.kind, e.detail)
                                                      for e in fake.tracer.events]
    client.close()


def test_lifetime_closes_a_connection_busy_the_whole_time(fake: Reactor,
                                                          clock: FakeClock) -> None:
    """Item 5."""
    protocol = Plain()
    _, client = serve_one(fake, protocol, max_lifetime=3, idle_timeout=2)
    start = clock.now()
    for _ in range(29):  # a message every 0.1 s: never idle
        advance(fake, 0.1)
        echo(fake, client, b"x")
    assert protocol.exceeded == []
    advance(fake, 0.1)
    assert protocol.exceeded == [("lifetime", 3)] and clock.now() == pytest.approx(start + 3)
    assert read_to_eof(fake, client) == b""
    assert protocol.lost[0].kind == "lifetime"  # type: ignore[union-attr]
    client.close()


def test_the_protocol_may_say_goodbye_first(fake: Reactor) -> None:
    protocol = Plain(goodbye=b"you were idle too long\n")
    _, client = serve_one(fake, protocol, idle_timeout=1)
    advance(fake, 1)
    assert read_to_eof(fake, client) == b"you were idle too long\n"
    assert protocol.lost[0].kind == "idle"  # type: ignore[union-attr]
    client.close()


def test_the_protocol_may_keep_the_connection_and_the_deadline_starts_over(
        fake: Reactor, clock: FakeClock) -> None:
    protocol = Plain(keep=True)
    _, client = serve_one(fake, protocol, idle_timeout=2)
    advance(fake, 2)
    assert protocol.exceeded == [("idle", 2)] and not protocol.transport.is_closing()
    advance(fake, 1.999)
    assert len(protocol.exceeded) == 1
    advance(fake, 0.001)
    assert protocol.exceeded == [("idle", 2)] * 2
    protocol.keep = False
    advance(fake, 2)
    assert read_to_eof(fake, client) == b""
    client.close()


def test_a_flush_that_stalls_after_a_deadline_is_aborted(fake: Reactor,
                                                         clock: FakeClock) -> None:
    from reactor.streams import FLUSH_AFTER_DEADLINE

    protocol = Plain(goodbye=b"x" * (8 << 20))  # far more than the socket buffers take
    client = serve_one_that_never_reads(fake, protocol, idle_timeout=1)
    try:
        advance(fake, 1)
        assert protocol.exceeded == [("idle", 1)] and protocol.transport.is_closing()
        assert protocol.transport.get_write_buffer_size() > 0  # flushing
        advance(fake, FLUSH_AFTER_DEADLINE - 0.001)
        assert protocol.lost == []
        advance(fake, 0.001)
        for _ in range(3):
            fake.run_once(0)
        assert protocol.lost[0].kind == "idle"  # type: ignore[union-attr]
    finally:
        client.close()


def test_write_stall_is_a_deadline_too(fake: Reactor, clock: FakeClock) -> None:
    protocol = Plain()
    client = serve_one_that_never_reads(fake, protocol, write_timeout=2)
    try:
        protocol.transport.write(b"y" * (8 << 20))
        advance(fake, 2)
        assert protocol.exceeded == [("write", 2)]
        for _ in range(3):
            fake.run_once(0)
        (exc,) = protocol.lost
        assert exc.kind == "write" and "peer stopped reading" in str(exc)  # type: ignore
    finally:
        client.close()


def test_deadlines_set_at_run_time_on_an_outgoing_connection(
        fake: Reactor, clock: FakeClock) -> None:
    server = fake.listen_tcp(Protocol, "127.0.0.1", 0)
    protocol = Plain()
    connector = fake.connect_tcp(lambda: protocol, "127.0.0.1", server.port)
    for _ in range(100):
        if connector.done():
            break
        fake.run_once(0.01)
    server.close()
    transport = protocol.transport
    start = clock.now()
    assert transport.get_idle_timeout() is None
    transport.set_idle_timeout(10)
    transport.set_max_lifetime(4)
    assert (transport.get_idle_timeout(), transport.get_max_lifetime()) == (10, 4)
    advance(fake, 2)
    transport.set_max_lifetime(3)  # still counted from the start
    transport.set_idle_timeout(None)
    advance(fake, 0.999)
    assert protocol.exceeded == []
    advance(fake, 0.001)
    assert protocol.exceeded == [("lifetime", 3)] and clock.now() == start + 3
    for _ in range(3):
        fake.run_once(0)
    assert protocol.lost[0].kind == "lifetime"  # type: ignore[union-attr]


def test_an_idle_timeout_on_settings_is_validated() -> None:
    from reactor import TransportSettings

    with pytest.raises(ValueError, match="idle timeout must be >= 0"):
        TransportSettings(idle_timeout=-1)
    with pytest.raises(ValueError, match="max lifetime must be >= 0"):
        TransportSettings(max_lifetime=float("nan"))


def test_time_spent_with_reading_paused_is_not_idle(fake: Reactor, clock: FakeClock) -> None:
    protocol = Plain()
    _, client = serve_one(fake, protocol, idle_timeout=2)
    start = clock.now()
    protocol.transport.pause_reading()  # flow control: the peer may well be sending
    advance(fake, 7)
    assert protocol.exceeded == []
    protocol.transport.resume_reading()  # the idle deadline counts from here
    advance(fake, 1.999)
    assert protocol.exceeded == []
    advance(fake, 0.001)
    assert protocol.exceeded == [("idle", 2)] and clock.now() == start + 9
    assert read_to_eof(fake, client) == b""
    client.close()


def test_a_close_whose_flush_stalls_is_aborted_at_the_write_timeout(
        fake: Reactor, clock: FakeClock) -> None:
    protocol = Plain()
    client = serve_one_that_never_reads(fake, protocol, write_timeout=2)
    try:
        protocol.transport.write(b"z" * (8 << 20))
        protocol.transport.close()  # flushing, to a peer that never reads
        advance(fake, 1.999)
        assert protocol.lost == []
        advance(fake, 0.001)
        for _ in range(3):
            fake.run_once(0)
        (exc,) = protocol.lost
        assert isinstance(exc, DeadlineExceeded) and exc.kind == "write"
        assert protocol.exceeded == []  # closing already: no hook to ask
    finally:
        client.close()


def test_a_hook_that_changes_the_timeout_and_keeps_the_connection(
        fake: Reactor, clock: FakeClock) -> None:
    start = clock.now()

    class Extends(Plain):
        def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
            self.exceeded.append((exc.kind, exc.timeout))
            if len(self.exceeded) == 1:
                self.transport.set_max_lifetime(10)  # a new lease...
                return True  # ...which starts over now
            return False

    protocol = Extends()
    _, client = serve_one(fake, protocol, max_lifetime=3)
    advance(fake, 3)
    assert protocol.exceeded == [("lifetime", 3)]
    advance(fake, 9.999)  # the old lifetime's queue must not call again at +6
    assert protocol.exceeded == [("lifetime", 3)]
    advance(fake, 0.001)
    assert protocol.exceeded == [("lifetime", 3), ("lifetime", 10)]
    assert clock.now() == start + 13
    assert read_to_eof(fake, client) == b""
    client.close()
