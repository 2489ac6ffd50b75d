"""MemoryTransport's write-buffer model: a simulated peer that reads when
told to, so flow control, half-close, close-after-flush, the buffer limit and
the write-stall deadline can be unit-tested like on a real socket."""

from __future__ import annotations

from typing import Any, List, Optional

import pytest

from reactor import DeadlineExceeded, Protocol, Reactor, WriteBufferFull
from reactor.testing import FakeClock, MemoryTransport, advance

pytestmark = pytest.mark.timeout(30)


class Writer(Protocol):
    """Records flow-control and deadline events."""

    def __init__(self, keep: bool = False) -> None:
        self.transport: Any = None
        self.events: List[Any] = []
        self.keep = keep

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self.events.append(("pause", self.transport.get_write_buffer_size()))

    def resume_writing(self) -> None:
        self.events.append(("resume", self.transport.get_write_buffer_size()))

    def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
        self.events.append(("deadline", exc.kind, str(exc)))
        return self.keep

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))


def slow_peer(**options: Any) -> MemoryTransport:
    transport = MemoryTransport(peer_reading=False, **options)
    transport.set_write_buffer_limits(high=100, low=20)
    transport.connect(Writer())
    return transport


def test_a_reading_peer_takes_every_write_at_once() -> None:
    transport = MemoryTransport()
    transport.connect(Writer())
    transport.write(b"x" * 200_000)
    assert transport.get_write_buffer_size() == 0 and len(transport.value()) == 200_000


def test_writes_wait_until_the_peer_reads_them() -> None:
    transport = slow_peer()
    transport.write(b"hello ")
    transport.write(b"world")
    assert transport.value() == b"" and transport.get_write_buffer_size() == 11
    assert transport.writes == [b"hello ", b"world"]
    assert transport.peer_read(3) == b"hel"
    assert transport.value() == b"hel" and transport.get_write_buffer_size() == 8
    assert transport.peer_read() == b"lo world" and transport.value() == b"hello world"
    assert transport.peer_read() == b""


def test_pause_past_high_water_and_resume_at_low_water() -> None:
    transport = slow_peer()
    events = transport.protocol.events  # type: ignore[union-attr]
    transport.write(b"a" * 100)
    assert events == [] and not transport.writing_paused  # at the mark, not past it
    transport.write(b"b")
    assert events == [("pause", 101)] and transport.writing_paused
    transport.write(b"c" * 50)
    assert events == [("pause", 101)]  # once
    transport.peer_read(130)
    assert events == [("pause", 101)]  # 21 left: still above low water
    transport.peer_read(1)
    assert events == [("pause", 101), ("resume", 20)] and not transport.writing_paused


def test_changing_the_limits_rechecks_the_buffer() -> None:
    transport = slow_peer()
    events = transport.protocol.events  # type: ignore[union-attr]
    transport.write(b"x" * 60)
    transport.set_write_buffer_limits(high=50, low=10)
    assert events == [("pause", 60)]
    transport.set_write_buffer_limits(high=400)
    assert events == [("pause", 60), ("resume", 60)]


def test_turning_peer_reading_on_drains_the_buffer() -> None:
    transport = slow_peer()
    transport.write(b"x" * 150)
    transport.set_peer_reading(True)
    assert transport.get_write_buffer_size() == 0 and len(transport.value()) == 150
    assert transport.protocol.events == [("pause", 150), ("resume", 0)]  # type: ignore
    transport.write(b"y")
    assert transport.value().endswith(b"y")


def test_write_eof_is_sent_once_the_buffer_drains() -> None:
    transport = slow_peer()
    transport.write(b"last words")
    transport.write_eof()
    assert transport.eof_written and not transport.eof_sent
    with pytest.raises(RuntimeError):
        transport.write(b"more")
    transport.peer_read(4)
    assert not transport.eof_sent
    transport.peer_read()
    assert transport.eof_sent and not transport.closed


def test_close_waits_for_the_flush_and_abort_drops_it() -> None:
    transport = slow_peer()
    events = transport.protocol.events  # type: ignore[union-attr]
    transport.write(b"bye")
    transport.close()
    assert transport.is_closing() and transport.lost is None
    transport.write(b"ignored")
    transport.peer_read(2)
    assert transport.lost is None
    transport.peer_read()
    assert transport.value() == b"bye" and events == [("lost", None)]

    transport = slow_peer()
    transport.write(b"never sent")
    transport.close()
    transport.abort()
    assert transport.aborted and transport.value() == b""
    assert transport.get_write_buffer_size() == 0
    assert transport.protocol.events == [("lost", None)]  # type: ignore[union-attr]


def test_a_write_past_max_write_buffer_aborts() -> None:
    transport = slow_peer()
    transport.set_max_write_buffer(1000)
    assert transport.get_max_write_buffer() == 1000
    transport.write(b"x" * 1000)
    assert not transport.closed
    transport.write(b"x")
    assert transport.aborted and transport.get_write_buffer_size() == 0
    (pause, (lost, exc)) = transport.protocol.events  # type: ignore[union-attr]
    assert lost == "lost" and isinstance(exc, WriteBufferFull)
    assert "1001 bytes, past max_write_buffer (1000)" in str(exc)


def test_the_write_stall_deadline(clock: FakeClock, fake_reactor: Reactor) -> None:
    transport = slow_peer(reactor=fake_reactor)
    events = transport.protocol.events  # type: ignore[union-attr]
    transport.set_write_timeout(5)
    assert transport.get_write_timeout() == 5
    transport.write(b"x" * 10)
    advance(fake_reactor, 4)
    transport.peer_read(1)  # progress: the stall counts from here
    advance(fake_reactor, 4.9)
    assert events == []
    advance(fake_reactor, 0.1)
    assert events[0] == ("deadline", "write",
                         "peer stopped reading: nothing sent for 5s with 9 bytes waiting")
    (_, exc) = events[1]
    assert isinstance(exc, DeadlineExceeded) and exc.kind == "write"
    assert transport.aborted is False and transport.get_write_buffer_size() == 0


def test_keeping_the_connection_through_a_write_stall(clock: FakeClock,
                                                      fake_reactor: Reactor) -> None:
    transport = slow_peer(reactor=fake_reactor)
    transport.protocol.keep = True  # type: ignore[union-attr]
    transport.set_write_timeout(2)
    transport.write(b"x")
    advance(fake_reactor, 5)
    assert [e[0] for e in transport.protocol.events] == ["deadline", "deadline"]  # type: ignore
    transport.peer_read()
    advance(fake_reactor, 10)
    assert len(transport.protocol.events) == 2  # type: ignore[union-attr]
    assert fake_reactor.next_deadline() is None


def test_close_with_a_reason_cuts_a_stalled_flush(clock: FakeClock,
                                                  fake_reactor: Reactor) -> None:
    transport = slow_peer(reactor=fake_reactor)
    transport.write(b"x" * 10)
    reason = ConnectionError("shutting down")
    transport.close(reason)
    advance(fake_reactor, 9.9)
    assert transport.lost is None
    advance(fake_reactor, 0.1)  # FLUSH_AFTER_DEADLINE
    assert transport.protocol.events == [("lost", reason)]  # type: ignore[union-attr]
    assert transport.value() == b""


def test_close_without_a_reason_still_obeys_the_write_timeout(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    transport = slow_peer(reactor=fake_reactor)
    transport.set_write_timeout(3)
    transport.write(b"x" * 10)
    transport.close()
    advance(fake_reactor, 3)
    ((lost, exc),) = transport.protocol.events  # type: ignore[union-attr]
    assert isinstance(exc, DeadlineExceeded) and exc.kind == "write"


def test_a_flushed_close_passes_its_reason_on() -> None:
    transport = slow_peer()
    transport.write(b"x" * 10)
    reason = ConnectionError("done here")
    transport.close(reason)
    transport.peer_read()
    assert transport.protocol.events == [("lost", reason)]  # type: ignore[union-attr]


# -- matching the real transport where a review found the double differed ------------


def test_a_close_inside_a_timer_callback_is_delivered_after_it(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    log: List[str] = []

    class Closer(Protocol):
        def connection_made(self, transport: Any) -> None:
            fake_reactor.call_later(1, self.tick, transport)

        def tick(self, transport: Any) -> None:
            transport.close()
            log.append("after close()")

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            log.append("connection_lost")

    MemoryTransport(reactor=fake_reactor).connect(Closer())
    advance(fake_reactor, 1)
    assert log == ["after close()", "connection_lost"]


def test_data_received_is_never_re_entered() -> None:
    seen: List[Any] = []

    class Toggler(Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            seen.append(data)
            if data == b"a":
                self.transport.pause_reading()
                self.transport.resume_reading()
            seen.append("returns")

    transport = MemoryTransport()
    transport.connect(Toggler())
    transport.feed(b"abc", chunk_size=1)
    assert seen == [b"a", "returns", b"b", "returns", b"c", "returns"]


def test_reading_stops_at_the_peers_eof() -> None:
    class HalfOpen(Protocol):
        def eof_received(self) -> Optional[bool]:
            return True  # keep writing

    transport = MemoryTransport()
    transport.connect(HalfOpen())
    transport.feed_eof()
    assert not transport.is_reading() and not transport.closed
    transport.resume_reading()
    assert not transport.is_reading()


def test_a_write_timeout_set_while_closing_cuts_the_flush(clock: FakeClock,
                                                          fake_reactor: Reactor) -> None:
    transport = slow_peer(reactor=fake_reactor)
    transport.write(b"x" * 10)
    transport.close()
    transport.set_write_timeout(5)
    advance(fake_reactor, 5)
    ((lost, exc),) = transport.protocol.events  # type: ignore[union-attr]
    assert isinstance(exc, DeadlineExceeded) and exc.kind == "write"

    transport = slow_peer(reactor=fake_reactor)
    transport.write(b"x" * 10)
    reason = ConnectionError("going away")
    transport.close(reason)
    transport.set_write_timeout(None)  # a close for a reason is still cut
    advance(fake_reactor, 10)
    assert transport.protocol.events == [("lost", reason)]  # type: ignore[union-attr]


def test_abort_clears_the_paused_state() -> None:
    transport = slow_peer()
    transport.write(b"x" * 200)
    assert transport.writing_paused
    transport.abort()
    assert not transport.writing_paused
