"""Deadlines that cost nothing per byte, and items 4, 12 and 13: a peer
that never reads, an over-long message, and a slowloris trickle."""

from __future__ import annotations

import socket
import time
from typing import List

import pytest

from reactor import ConnectError, Reactor
from reactor.conversations import ReadProtocol, ServerContext, Settings, serve
from reactor.testing import FakeClock, MemoryTransport

pytestmark = pytest.mark.timeout(90)


def test_idle_deadline_never_early_and_within_one_step(fake_reactor: Reactor,
                                                       clock: FakeClock) -> None:
    lines: List[str] = []
    protocol = ReadProtocol(fake_reactor, Settings(idle_timeout=30), lines.append)
    transport = MemoryTransport(reactor=fake_reactor)
    transport.connect(protocol)
    start = clock.now()
    clock.set(start + 30 - 1e-6)
    fake_reactor.run_once(0)
    assert not transport.closed  # a microsecond early: nothing
    clock.set(start + 30)
    fake_reactor.run_once(0)  # the first step at the deadline closes it
    assert transport.closed
    assert lines[-1].endswith("timed out: no data for 30s")


def test_idle_deadlines_of_two_connections_one_timer(fake_reactor: Reactor,
                                                     clock: FakeClock) -> None:
    """Two connections of one server (one deadline queue), the second 1 ms
    younger: each closes at its own deadline, not before, and the timer
    re-arms."""
    context = ServerContext(fake_reactor, Settings(idle_timeout=30), lambda line: None)
    start = clock.now()
    transports = []
    for delay in (0, 0.001):
        clock.set(start + delay)
        protocol = ReadProtocol(fake_reactor, context=context)
        transports.append(MemoryTransport(reactor=fake_reactor))
        transports[-1].connect(protocol)
    clock.set(start + 30)
    fake_reactor.run_once(0)
    assert [t.closed for t in transports] == [True, False]
    clock.set(start + 30.001 - 1e-6)
    fake_reactor.run_once(0)
    assert not transports[1].closed
    clock.set(start + 30.001)
    fake_reactor.run_once(0)
    assert transports[1].closed


def test_per_request_cost_does_not_grow_with_idle_connections(reactor: Reactor, run) -> None:
    """Counted, not timed: the timer calls a request causes are the same
    (none) with 0 or 2,000 idle connections open, and one timer serves all."""
    listener = serve(reactor, "echo", "127.0.0.1", 0, log=lambda line: None,
                     settings=Settings(idle_timeout=30))
    idle: List[socket.socket] = []
    calls = {"call_at": 0, "call_later": 0}
    real_at, real_later = reactor.call_at, reactor.call_later

    def counting_at(*args, **kw):  # type: ignore[no-untyped-def]
        calls["call_at"] += 1
        return real_at(*args, **kw)

    def counting_later(*args, **kw):  # type: ignore[no-untyped-def]
        calls["call_later"] += 1
        return real_later(*args, **kw)

    def requests(n: int) -> dict:
        with socket.create_connection(("127.0.0.1", listener.port)) as s:
            run(reactor, lambda: len(listener.connections) == len(idle) + 1)
            s.setblocking(False)
            before = dict(calls)
            for i in range(n):
                s.send(b"%06d" % i)
                got = b""
                while len(got) < 6:
                    reactor.run_once(0.05)
                    try:
                        got += s.recv(6 - len(got))
                    except BlockingIOError:
                        pass
                assert got == b"%06d" % i
            return {k: calls[k] - before[k] for k in calls}

    reactor.call_at, reactor.call_later = counting_at, counting_later  # type: ignore
    try:
        without = requests(300)
        for _batch in range(20):  # in batches the accept loop can keep up with
            for _ in range(100):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", listener.port))
                idle.append(s)
            run(reactor, lambda: len(listener.connections) == len(idle), timeout=30)
        with_idle = requests(300)
        assert without == with_idle == {"call_at": 0, "call_later": 0}
        assert reactor.stats()["pending_timers"] == 1  # one idle timer for all 2,001
    finally:
        reactor.call_at, reactor.call_later = real_at, real_later  # type: ignore
        for s in idle:
            s.close()
    run(reactor, lambda: not listener.connections, timeout=30)
    listener.close()


def test_connect_timeout(reactor: Reactor, run) -> None:
    # A listener whose backlog is full never completes further handshakes
    # here; a blocked resolver is the portable way to hold a connect open.
    release = []

    def slow_resolver(*args):  # type: ignore[no-untyped-def]
        while not release:
            time.sleep(0.01)
        return socket.getaddrinfo("127.0.0.1", 9, socket.AF_INET, socket.SOCK_STREAM)

    reactor.getaddrinfo = slow_resolver  # type: ignore[assignment]
    results: List[BaseException] = []
    started = time.monotonic()
    connector = reactor.connect_tcp(lambda: None, "slow.example", 9, timeout=0.2)  # type: ignore
    connector.add_done_callback(lambda c: results.append(c.error))  # type: ignore[arg-type]
    run(reactor, lambda: results)
    assert time.monotonic() - started >= 0.2  # never early
    release.append(True)
    assert isinstance(results[0], ConnectError) and isinstance(results[0].reason, TimeoutError)
    reactor._executor.shutdown(wait=True)  # type: ignore[union-attr]
    reactor.run_once(0)
    assert results == [results[0]]  # reported once, even after the lookup returned


def test_peer_that_never_reads_is_bounded_then_closed(reactor: Reactor, run) -> None:
    """Item 4: the echo server's buffer stops growing at the limit, the
    write-stall timeout closes it, another connection stays responsive."""
    lines: List[str] = []
    listener = serve(reactor, "echo", "127.0.0.1", 0, log=lines.append,
                     settings=Settings(idle_timeout=30, write_timeout=0.5))
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    hog.connect(("127.0.0.1", listener.port))
    hog.setblocking(False)
    good = socket.create_connection(("127.0.0.1", listener.port))
    good.setblocking(False)
    try:
        run(reactor, lambda: len(listener.connections) == 2)
        sent = 0
        chunk = b"h" * 65536
        largest = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("peer stopped" in ln for ln in lines):
            try:
                sent += hog.send(chunk)
            except (BlockingIOError, ConnectionError):
                pass
            reactor.run_once(0.01)
            for t in listener.connections:
                largest = max(largest, t.get_write_buffer_size())
            # The well-behaved client is served meanwhile.
            good.send(b"ping")
            got = b""
            until = time.monotonic() + 2
            while len(got) < 4 and time.monotonic() < until:
                reactor.run_once(0.01)
                try:
                    got += good.recv(4)
                except BlockingIOError:
                    pass
            assert got == b"ping"
        assert any("timed out: peer stopped reading: nothing sent for 0.5s" in ln
                   for ln in lines), lines
        assert sent > 1 << 20  # it really did push hard
        # Bounded: the high-water mark plus at most one read's worth.
        assert largest <= 64 * 1024 + 65536
    finally:
        hog.close()
        good.close()
    run(reactor, lambda: not listener.connections)
    listener.close()


def test_over_long_line_closes_without_buffering_past_the_limit(reactor: Reactor, run) -> None:
    """Item 12."""
    lines: List[str] = []
    listener = serve(reactor, "ack", "127.0.0.1", 0, log=lines.append,
                     settings=Settings(max_message=1000))
    with socket.create_connection(("127.0.0.1", listener.port)) as s:
        s.setblocking(False)
        run(reactor, lambda: listener.connections)
        protocols = [t.get_protocol() for t in listener.connections]
        s.send(b"fine\n")
        pending = b"A" * (1600 * 1024)  # 1.6 MB with no newline
        while pending and not any("longer than" in ln for ln in lines):
            try:
                pending = pending[s.send(pending[:65536]):]
            except BlockingIOError:
                pass
            except ConnectionError:
                break  # the server may reset us once it has closed
            reactor.run_once(0.01)
        run(reactor, lambda: any("message longer than 1000 bytes" in ln for ln in lines))
        assert "Got the message:fine" in lines
        assert len(protocols[0].machine._buffer) == 0
    run(reactor, lambda: not listener.connections)
    listener.close()


def test_slowloris_cut_off_by_message_deadline(reactor: Reactor, run) -> None:
    """Item 13: one byte just under the idle timeout keeps the idle deadline
    away, the total message deadline still ends it; a normal client on the
    same server is unaffected."""
    lines: List[str] = []
    listener = serve(reactor, "read", "127.0.0.1", 0, log=lines.append,
                     settings=Settings(idle_timeout=0.3, message_timeout=1.0))
    slow = socket.create_connection(("127.0.0.1", listener.port))
    try:
        started = time.monotonic()
        while not any("timed out" in ln for ln in lines):
            assert time.monotonic() - started < 5
            try:
                slow.send(b"z")
            except ConnectionError:
                break
            until = time.monotonic() + 0.2  # under the idle timeout
            while time.monotonic() < until:
                reactor.run_once(0.02)
            with socket.create_connection(("127.0.0.1", listener.port)) as normal:
                normal.sendall(b"normal\0")
            run(reactor, lambda: "-->normal" in lines)
            lines.remove("-->normal")
        assert time.monotonic() - started >= 1.0
        assert [ln for ln in lines if "timed out" in ln] == [
            ln for ln in lines if ln.endswith("timed out: message not complete within 1s")]
        assert len([ln for ln in lines if "timed out" in ln]) == 1
    finally:
        slow.close()
    run(reactor, lambda: not listener.connections)
    listener.close()
