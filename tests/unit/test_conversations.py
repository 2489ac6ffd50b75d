"""The conversation protocols on the in-memory transport with a fake clock:
what they log, when their deadlines fire, and what they cost the deadline
queue."""

from __future__ import annotations

from typing import List

import pytest

from reactor import Reactor
from reactor.conversations import AckProtocol, EchoProtocol, ReadProtocol, ServerContext, Settings
from reactor.deadlines import DeadlineQueue
from reactor.testing import FakeClock, MemoryTransport, advance


def make(cls, reactor: Reactor, **settings) -> tuple:
    lines: List[str] = []
    protocol = cls(reactor, Settings(**settings), lines.append)
    transport = MemoryTransport(peername=("10.0.0.7", 4242), reactor=reactor)
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
    fake_reactor.run_once(0)  # connection_lost comes by call_soon, as on a real transport
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


def test_a_message_deadline_does_not_delay_the_idle_deadline(fake_reactor: Reactor,
                                                            clock: FakeClock) -> None:
    # Two connections of one server share one deadline queue.  A's wake-up
    # at its first idle deadline (t+10) finds it active since (message done
    # at t+3) and queues it again at t+13 while B sits at t+21: A still
    # closes at exactly t+13.
    start = clock.now()
    lines: List[str] = []
    context = ServerContext(fake_reactor, Settings(idle_timeout=10, message_timeout=12),
                            lines.append)
    a = MemoryTransport(peername=("10.0.0.1", 1), reactor=fake_reactor)
    a.connect(ReadProtocol(fake_reactor, context=context))
    a.feed(b"a")
    advance(fake_reactor, 3)
    a.feed(b"\n")  # message complete; idle deadline now start + 13
    advance(fake_reactor, 8)
    b = MemoryTransport(peername=("10.0.0.2", 2), reactor=fake_reactor)
    b.connect(ReadProtocol(fake_reactor, context=context))
    advance(fake_reactor, 1.999)
    assert not a.closed
    advance(fake_reactor, 0.001)
    assert a.closed and clock.now() == start + 13
    assert not b.closed and b.protocol not in context.deadlines  # idle is the transport's
    b.lose()
    assert len(context.deadlines) == 0


def test_a_message_deadline_sooner_than_the_idle_one_is_kept(fake_reactor: Reactor,
                                                             clock: FakeClock) -> None:
    start = clock.now()
    protocol, transport, lines = make(ReadProtocol, fake_reactor, idle_timeout=30,
                                      message_timeout=5)
    advance(fake_reactor, 1)
    transport.feed(b"trickle")  # the message deadline (start + 6) moves the wake-up earlier
    advance(fake_reactor, 4.999)
    assert not transport.closed
    advance(fake_reactor, 0.001)
    assert transport.closed and clock.now() == start + 6
    assert "message not complete within 5s" in lines[-1]


def test_idle_timeout_cancels_the_message_timer(fake_reactor: Reactor) -> None:
    protocol, transport, lines = make(ReadProtocol, fake_reactor, idle_timeout=2,
                                      message_timeout=10)
    transport.feed(b"a")  # arms the message timer for t+10
    advance(fake_reactor, 2)
    assert transport.closed and "timed out: no data for 2s" in lines[-1]
    assert fake_reactor.next_deadline() is None  # nothing left to keep it alive


@pytest.mark.parametrize("cls", [EchoProtocol, ReadProtocol])
def test_a_busy_connection_touches_the_deadline_queue_once_per_timeout(
        cls: type, fake_reactor: Reactor, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads touch no deadline queue: the idle deadline is the transport's,
    and with no message deadline the adapter's queue is never used.  The
    connection still closes exactly one timeout after its last byte, and
    never while it is busy."""
    protocol, transport, lines = make(cls, fake_reactor, idle_timeout=30)
    touches: List[float] = []
    real_touch = DeadlineQueue.touch

    def counting_touch(self: DeadlineQueue, key: object, deadline: float) -> None:
        touches.append(deadline)
        real_touch(self, key, deadline)

    monkeypatch.setattr(DeadlineQueue, "touch", counting_touch)
    for _ in range(1200):  # a chunk every 0.1 s for two minutes
        advance(fake_reactor, 0.1)
        transport.feed(b"x\n")
    assert not transport.closed
    assert touches == []
    last_byte = clock.now()
    advance(fake_reactor, 29.999)
    assert not transport.closed
    advance(fake_reactor, 0.001)
    assert transport.closed and clock.now() == pytest.approx(last_byte + 30)
    assert lines[-1].endswith("timed out: no data for 30s")


def test_an_error_while_reporting_a_timeout_still_closes_the_connection(
        fake_reactor: Reactor, errors: list) -> None:
    class LoudRead(ReadProtocol):
        __slots__ = ()

        def report(self, line: str) -> None:
            if "timed out" in line:
                raise RuntimeError("the log is full")

    protocol, transport, lines = make(LoudRead, fake_reactor, idle_timeout=None,
                                      message_timeout=5)
    transport.feed(b"unfinished")
    advance(fake_reactor, 5)
    assert transport.closed and transport.aborted  # not left open forever
    assert [(type(e["exception"]), e["protocol"], e["transport"]) for e in errors] == [
        (RuntimeError, protocol, transport)]
    assert len(protocol._context.deadlines) == 0
