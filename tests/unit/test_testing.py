"""Tests for reactor.testing's in-memory doubles: the fake clock and the
memory transport must behave like the real thing, or users' tests prove
nothing."""

from __future__ import annotations

from typing import Any, List, Optional

import pytest

from reactor import Protocol, Reactor
from reactor.testing import FakeClock, MemoryTransport, advance

pytestmark = pytest.mark.timeout(30)


# -- FakeClock ----------------------------------------------------------------------


def test_fake_clock_starts_where_told_and_moves_only_when_told() -> None:
    c = FakeClock()
    assert c.now() == 0.0
    c = FakeClock(5)
    assert c.now() == 5.0 and isinstance(c.now(), float)
    assert c.now() == c.now()
    c.advance(1.5)
    assert c.now() == 6.5
    c.advance(0)
    assert c.now() == 6.5
    c.set(10)
    assert c.now() == 10.0
    c.set(10)  # standing still is allowed
    assert c.now() == 10.0


def test_fake_clock_never_goes_backwards() -> None:
    c = FakeClock(100.0)
    with pytest.raises(ValueError):
        c.advance(-0.001)
    with pytest.raises(ValueError):
        c.set(99.999)
    assert c.now() == 100.0


def test_fake_clock_advance_does_not_fire_timers(clock: FakeClock,
                                                 fake_reactor: Reactor) -> None:
    fired: List[float] = []
    fake_reactor.call_later(1, fired.append, 1)
    clock.advance(5)
    assert fired == []
    fake_reactor.run_once(0)
    assert fired == [1]


# -- advance() ------------------------------------------------------------------------


def test_advance_fires_each_timer_at_its_deadline_in_order(clock: FakeClock,
                                                           fake_reactor: Reactor) -> None:
    start = clock.now()
    seen: List[Any] = []
    for delay in (3.0, 1.0, 2.0, 1.0):
        fake_reactor.call_later(delay, lambda d=delay: seen.append((d, fake_reactor.time())))
    advance(fake_reactor, 2.5)
    assert seen == [(1.0, start + 1.0), (1.0, start + 1.0), (2.0, start + 2.0)]
    assert clock.now() == start + 2.5
    advance(fake_reactor, 0.5)
    assert seen[-1] == (3.0, start + 3.0)


def test_advance_zero_runs_ready_callbacks_and_due_timers(clock: FakeClock,
                                                          fake_reactor: Reactor) -> None:
    out: List[str] = []
    fake_reactor.call_soon(out.append, "soon")
    fake_reactor.call_at(clock.now(), out.append, "due now")
    fake_reactor.call_later(0.001, out.append, "not yet")
    advance(fake_reactor, 0)
    assert out == ["soon", "due now"]


def test_advance_follows_timers_that_schedule_timers(clock: FakeClock,
                                                     fake_reactor: Reactor) -> None:
    start = clock.now()
    ticks: List[float] = []

    def tick() -> None:
        ticks.append(fake_reactor.time())
        fake_reactor.call_later(1, tick)

    fake_reactor.call_later(1, tick)
    advance(fake_reactor, 5)
    assert ticks == [start + 1, start + 2, start + 3, start + 4, start + 5]
    assert fake_reactor.next_deadline() == start + 6


def test_advance_bounds_a_busy_timer(clock: FakeClock, fake_reactor: Reactor) -> None:
    def again() -> None:
        fake_reactor.call_later(0, again)

    fake_reactor.call_later(0, again)
    with pytest.raises(RuntimeError):
        advance(fake_reactor, 1, max_steps=50)


def test_advance_needs_a_fake_clock(reactor: Reactor) -> None:
    with pytest.raises(TypeError):
        advance(reactor, 1)


# -- MemoryTransport ---------------------------------------------------------------------


class Recorder(Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.events: List[Any] = []
        self.keep_open = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> Optional[bool]:
        self.events.append("eof")
        return self.keep_open

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))


def test_connect_calls_connection_made() -> None:
    t = MemoryTransport()
    p = Recorder()
    assert t.connect(p) is p
    assert p.events == ["made"]
    assert p.transport is t
    assert t.get_protocol() is p


def test_value_records_writes() -> None:
    t = MemoryTransport()
    t.connect(Recorder())
    t.write(b"ab")
    t.write(bytearray(b"cd"))
    t.writelines([b"e", memoryview(b"f")])
    assert t.value() == b"abcdef"
    assert t.writes == [b"ab", b"cd", b"ef"]
    t.clear()
    assert t.value() == b"" and t.writes == []
    with pytest.raises(TypeError):
        t.write("text")  # type: ignore[arg-type]


def test_feed_whole_and_in_chunks() -> None:
    t = MemoryTransport()
    p = Recorder()
    t.connect(p)
    t.feed(b"hello")
    t.feed(b"abcdefg", chunk_size=3)
    t.feed(b"")
    assert p.events == ["made", b"hello", b"abc", b"def", b"g"]


def test_feed_stops_once_the_protocol_closes() -> None:
    class CloseOnX(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if data == b"x":
                self.transport.close()

    t = MemoryTransport()
    p = CloseOnX()
    t.connect(p)
    t.feed(b"abxcd", chunk_size=1)
    assert p.events == ["made", b"a", b"b", b"x", ("lost", None)]


def test_connection_lost_deferred_until_the_outermost_callback_returns() -> None:
    class CloseInside(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.transport.close()
            self.transport.close()
            self.transport.abort()
            self.events.append("after close")

    t = MemoryTransport()
    p = CloseInside()
    t.connect(p)
    t.feed(b"bye")
    assert p.events == ["made", b"bye", "after close", ("lost", None)]
    assert t.closed and t.lost == (None,)
    assert t.is_closing()
    assert not t.aborted  # close() came first


def test_close_inside_connection_made_is_deferred() -> None:
    class Quick(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.write(b"bye")
            transport.close()
            self.events.append("returned")

    t = MemoryTransport()
    p = Quick()
    t.connect(p)
    assert p.events == ["made", "returned", ("lost", None)]
    assert t.value() == b"bye"


def test_close_outside_callbacks_delivers_at_once_and_once() -> None:
    t = MemoryTransport()
    p = Recorder()
    t.connect(p)
    t.close()
    t.close()
    t.abort()
    t.lose(ConnectionResetError())
    assert p.events == ["made", ("lost", None)]
    assert t.closed and not t.aborted
    t.write(b"ignored")
    assert t.value() == b""


def test_abort() -> None:
    t = MemoryTransport()
    p = Recorder()
    t.connect(p)
    t.abort()
    assert t.aborted and t.closed and not t.reading
    assert p.events == ["made", ("lost", None)]


def test_lose_passes_the_error() -> None:
    t = MemoryTransport()
    p = Recorder()
    t.connect(p)
    err = ConnectionResetError("peer reset")
    t.lose(err)
    t.feed(b"too late")
    assert p.events == ["made", ("lost", err)]
    assert t.lost == (err,)


def test_feed_eof_closes_unless_eof_received_returns_true() -> None:
    t = MemoryTransport()
    p = Recorder()
    t.connect(p)
    t.feed_eof()
    assert p.events == ["made", "eof", ("lost", None)]
    assert t.closed

    t2 = MemoryTransport()
    p2 = Recorder()
    p2.keep_open = True
    t2.connect(p2)
    t2.feed_eof()
    assert p2.events == ["made", "eof"]
    assert not t2.closed
    t2.write(b"reply")
    assert t2.value() == b"reply"
    t2.close()
    assert p2.events[-1] == ("lost", None)


def test_write_eof_then_write_raises() -> None:
    t = MemoryTransport()
    t.connect(Recorder())
    t.write(b"x")
    assert t.can_write_eof()
    t.write_eof()
    t.write_eof()
    assert t.eof_written
    with pytest.raises(RuntimeError):
        t.write(b"y")
    assert t.value() == b"x"


def test_write_eof_after_close_is_ignored() -> None:
    t = MemoryTransport()
    t.connect(Recorder())
    t.close()
    t.write_eof()
    assert not t.eof_written


def test_reading_flags() -> None:
    t = MemoryTransport()
    t.connect(Recorder())
    assert t.is_reading()
    t.pause_reading()
    assert not t.is_reading()
    t.resume_reading()
    assert t.is_reading()
    t.close()
    t.resume_reading()
    assert not t.is_reading()


def test_exceptions_from_the_protocol_propagate() -> None:
    class Broken(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ValueError("bad data")

    t = MemoryTransport()
    t.connect(Broken())
    with pytest.raises(ValueError):
        t.feed(b"x")


def test_buffer_limits_and_extra_info() -> None:
    t = MemoryTransport(peername=("10.0.0.1", 1), sockname=("10.0.0.2", 2))
    assert t.get_write_buffer_size() == 0
    assert t.get_write_buffer_limits() == (16384, 65536)
    t.set_write_buffer_limits(high=1000)
    assert t.get_write_buffer_limits() == (250, 1000)
    t.set_write_buffer_limits(low=10)
    assert t.get_write_buffer_limits() == (10, 40)
    with pytest.raises(ValueError):
        t.set_write_buffer_limits(high=1, low=2)
    assert t.get_extra_info("peername") == ("10.0.0.1", 1)
    assert t.get_extra_info("sockname") == ("10.0.0.2", 2)
    assert t.get_extra_info("socket") is None
    assert t.get_extra_info("socket", "none") == "none"
    assert t.get_extra_info("unknown", 7) == 7


def test_a_feed_from_inside_a_callback_waits_for_it_to_return() -> None:
    class Nested(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if data == b"outer":
                self.transport.feed(b"inner")  # re-enters the protocol
                self.events.append("outer returns")
            else:
                self.transport.close()
                self.events.append("inner returns")

    t = MemoryTransport()
    p = Nested()
    t.connect(p)
    t.feed(b"outer")
    # As on a real transport, data_received is never re-entered.
    assert p.events == ["made", b"outer", "outer returns", b"inner", "inner returns",
                        ("lost", None)]


def test_feed_eof_after_close_calls_nothing() -> None:
    # connection_lost is always last: the peer's EOF arriving after we
    # closed must not reach the protocol (the real transport stops reading).
    t = MemoryTransport()
    p = Recorder()
    t.connect(p)
    t.close()
    t.feed_eof()
    t.feed(b"late")
    assert p.events == ["made", ("lost", None)]


# -- helpers for users' protocol tests (chunking, pairs, faults) --------------------


def test_chunks_and_random_chunks() -> None:
    from reactor.testing import chunks, random_chunks
    data = bytes(range(50))
    assert chunks(data, 1) == [bytes([b]) for b in data]
    assert chunks(b"abcdefgh", [3, 1]) == [b"abc", b"d", b"e", b"f", b"g", b"h"]
    pieces = random_chunks(data, seed=7, max_size=5)
    assert b"".join(pieces) == data and all(1 <= len(p) <= 5 for p in pieces)
    assert random_chunks(data, seed=7, max_size=5) == pieces  # same seed, same cuts
    assert random_chunks(data, seed=8, max_size=5) != pieces
    with pytest.raises(ValueError):
        chunks(data, 0)


def test_eof_mid_message_on_memory_transport() -> None:
    from reactor.conversations import AckProtocol, Settings
    from reactor.testing import chunks
    lines: List[str] = []
    with Reactor() as reactor:
        transport = MemoryTransport()
        transport.connect(AckProtocol(reactor, Settings(), lines.append))
        for piece in chunks(b"first\nunfinish", 2):
            transport.feed(piece)
        transport.feed_eof()  # the peer stops mid-message
    assert lines[1:3] == ["Got the message:first", "Got the message:unfinish"]
    assert transport.closed


class Timed(Protocol):
    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.exceeded: List[Any] = []
        self.lost: List[Optional[BaseException]] = []

    def deadline_exceeded(self, exc: Any) -> Optional[bool]:
        self.exceeded.append((exc.kind, exc.timeout))
        return self.keep

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


def test_memory_transport_keeps_the_idle_deadline_on_the_reactors_clock(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    from reactor import DeadlineExceeded

    protocol = Timed()
    transport = MemoryTransport(reactor=fake_reactor)
    transport.set_idle_timeout(5)
    transport.connect(protocol)
    start = clock.now()
    advance(fake_reactor, 3)
    transport.feed(b"x")  # the idle deadline moves to start + 8
    advance(fake_reactor, 4.999)
    assert protocol.exceeded == [] and not transport.closed
    advance(fake_reactor, 0.001)
    assert protocol.exceeded == [("idle", 5)] and clock.now() == start + 8
    (exc,) = protocol.lost
    assert isinstance(exc, DeadlineExceeded) and str(exc) == "no data received for 5s"
    assert transport.closed and transport.get_idle_timeout() == 5


def test_memory_transport_lifetime_and_keeping_the_connection(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    protocol = Timed(keep=True)
    transport = MemoryTransport(reactor=fake_reactor)
    transport.connect(protocol)
    transport.set_max_lifetime(10)
    transport.set_idle_timeout(4)
    advance(fake_reactor, 4)
    assert protocol.exceeded == [("idle", 4)] and not transport.closed  # kept: starts over
    advance(fake_reactor, 4)
    assert protocol.exceeded == [("idle", 4)] * 2
    protocol.keep = False
    advance(fake_reactor, 2)
    assert protocol.exceeded[-1] == ("lifetime", 10) and transport.closed
    assert protocol.lost[0].kind == "lifetime"  # type: ignore[union-attr]
    assert fake_reactor.next_deadline() is None  # its other timer went with it


def test_memory_transport_without_a_reactor_never_times_out() -> None:
    protocol = Timed()
    transport = MemoryTransport()
    transport.set_idle_timeout(1)
    transport.connect(protocol)
    assert transport.get_idle_timeout() == 1 and protocol.exceeded == []
    transport.close()
    assert protocol.lost == [None]


def test_memory_transport_paused_reading_is_not_idle(clock: FakeClock,
                                                     fake_reactor: Reactor) -> None:
    protocol = Timed()
    transport = MemoryTransport(reactor=fake_reactor)
    transport.set_idle_timeout(2)
    transport.connect(protocol)
    transport.pause_reading()
    advance(fake_reactor, 7)
    assert protocol.exceeded == []
    transport.resume_reading()
    advance(fake_reactor, 2)
    assert protocol.exceeded == [("idle", 2)]
