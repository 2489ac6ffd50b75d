"""LineProtocol and LengthPrefixedProtocol on the in-memory transport with a
fake clock: framing whatever the split, raw mode, limits, the message
deadline."""

from __future__ import annotations

from typing import Any, List, Optional

import pytest

from reactor import DeadlineExceeded, FrameTooLong, LengthPrefixedProtocol, LineProtocol, Reactor
from reactor.deadlines import DeadlineQueue
from reactor.testing import FakeClock, MemoryTransport, advance, random_chunks


class Lines(LineProtocol):
    def __init__(self) -> None:
        self.lines: List[bytes] = []
        self.raw: List[bytes] = []
        self.lost: List[Optional[BaseException]] = []
        self.exceeded: List[Any] = []
        self.keep = False

    def line_received(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"RAW":
            self.set_raw_mode()

    def raw_data_received(self, data: bytes) -> None:
        self.raw.append(data)

    def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
        self.exceeded.append((exc.kind, exc.timeout))
        return self.keep

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        self.lost.append(exc)


def connect(protocol: Any, reactor: Optional[Reactor] = None) -> MemoryTransport:
    transport = MemoryTransport(reactor=reactor)
    transport.connect(protocol)
    return transport


@pytest.mark.parametrize("seed", range(20))
def test_lines_are_the_same_whatever_the_split(seed: int) -> None:
    stream = b"".join(b"line %d with some text\n" % i for i in range(30)) + b"partial"
    protocol = Lines()
    transport = connect(protocol)
    for piece in random_chunks(stream, seed=seed):
        transport.feed(piece)
    assert protocol.lines == [b"line %d with some text" % i for i in range(30)]
    protocol.send_line(b"reply")
    assert transport.value() == b"reply\n"


def test_a_crlf_delimiter_split_across_chunks() -> None:
    class Crlf(Lines):
        delimiter = b"\r\n"

    protocol = Crlf()
    transport = connect(protocol)
    transport.feed(b"one\r\ntwo\r", chunk_size=1)
    transport.feed(b"\nthree\n")  # a lone \n is part of the line
    assert protocol.lines == [b"one", b"two"]
    protocol.send_line(b"x")
    assert transport.value() == b"x\r\n"


def test_raw_mode_takes_the_rest_of_the_chunk_and_line_mode_comes_back() -> None:
    protocol = Lines()
    transport = connect(protocol)
    transport.feed(b"first\nRAW\nnot a line\nhalf")
    assert protocol.lines == [b"first", b"RAW"]
    assert protocol.raw == [b"not a line\nhalf"]
    transport.feed(b"more raw\n")
    assert protocol.raw[-1] == b"more raw\n"
    protocol.set_line_mode(b"back\nto lin")
    transport.feed(b"es\n")
    assert protocol.lines == [b"first", b"RAW", b"back", b"to lines"]


def test_a_line_over_the_limit_closes_with_the_reason_after_the_lines_before_it() -> None:
    class Short(Lines):
        max_line_length = 8

    protocol = Short()
    transport = connect(protocol)
    transport.feed(b"ok\nfine\n" + b"x" * 100)
    assert protocol.lines == [b"ok", b"fine"]
    assert transport.closed and not transport.aborted
    (exc,) = protocol.lost
    assert isinstance(exc, FrameTooLong) and exc.limit == 8


def test_the_too_long_hook_can_answer_first() -> None:
    class Polite(Lines):
        max_line_length = 4

        def frame_too_long(self, exc: FrameTooLong) -> None:
            self.send_line(b"ERROR line too long")
            super().frame_too_long(exc)

    protocol = Polite()
    transport = connect(protocol)
    transport.feed(b"toolong")
    assert transport.value() == b"ERROR line too long\n" and transport.closed


class Messages(LengthPrefixedProtocol):
    prefix_size = 2
    byteorder = "little"
    max_message_length = 100

    def __init__(self) -> None:
        self.messages: List[bytes] = []
        self.lost: List[Optional[BaseException]] = []

    def message_received(self, message: bytes) -> None:
        self.messages.append(message)
        self.send_message(message.upper())

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        self.lost.append(exc)


@pytest.mark.parametrize("seed", range(10))
def test_length_prefixed_messages_whatever_the_split(seed: int) -> None:
    protocol = Messages()
    transport = connect(protocol)
    stream = b"".join(len(m).to_bytes(2, "little") + m
                      for m in (b"", b"hello", b"x" * 100, b"\n\0binary"))
    for piece in random_chunks(stream, seed=seed):
        transport.feed(piece)
    assert protocol.messages == [b"", b"hello", b"x" * 100, b"\n\0binary"]
    assert transport.value().startswith(b"\x00\x00\x05\x00HELLO")
    transport.feed(b"\x65\x00")  # 101 bytes announced: over the limit at once
    assert transport.closed and isinstance(protocol.lost[0], FrameTooLong)


def test_the_message_deadline_cuts_off_a_trickler(clock: FakeClock,
                                                  fake_reactor: Reactor) -> None:
    class Slow(Lines):
        message_timeout = 5.0

    protocol = Slow()
    transport = connect(protocol, fake_reactor)
    start = clock.now()
    transport.feed(b"complete\n")  # whole lines start no deadline
    advance(fake_reactor, 10)
    assert protocol.exceeded == [] and not transport.closed
    transport.feed(b"a")  # a line begins at start + 10
    for _ in range(4):
        advance(fake_reactor, 1)
        transport.feed(b"b")  # a byte a second: never idle, never done
    advance(fake_reactor, 0.999)
    assert protocol.exceeded == []
    advance(fake_reactor, 0.001)
    assert protocol.exceeded == [("message", 5.0)] and clock.now() == start + 15
    assert transport.closed
    (exc,) = protocol.lost
    assert isinstance(exc, DeadlineExceeded) and exc.kind == "message"
    assert str(exc) == "message not complete within 5s"


def test_a_finished_message_stops_its_deadline_and_reads_touch_no_queue(
        clock: FakeClock, fake_reactor: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    class Slow(Lines):
        message_timeout = 5.0

    touches: List[float] = []
    real_touch = DeadlineQueue.touch
    monkeypatch.setattr(DeadlineQueue, "touch",
                        lambda self, key, when: touches.append(when) or real_touch(self, key,
                                                                                  when))
    protocol = Slow()
    transport = connect(protocol, fake_reactor)
    for _ in range(100):  # one long line in 100 chunks: one touch, not 100
        advance(fake_reactor, 0.01)
        transport.feed(b"x")
    transport.feed(b"\n")
    assert len(touches) == 1
    advance(fake_reactor, 10)
    assert protocol.exceeded == [] and not transport.closed
    assert fake_reactor.next_deadline() is None  # nothing left queued
    transport.close()


def test_keeping_the_connection_restarts_the_message_deadline(clock: FakeClock,
                                                              fake_reactor: Reactor) -> None:
    class Slow(Lines):
        message_timeout = 2.0

    protocol = Slow()
    protocol.keep = True
    transport = connect(protocol, fake_reactor)
    transport.feed(b"never ends")
    advance(fake_reactor, 2)
    assert protocol.exceeded == [("message", 2.0)] and not transport.closed
    advance(fake_reactor, 2)
    assert protocol.exceeded == [("message", 2.0)] * 2
    protocol.keep = False
    advance(fake_reactor, 2)
    assert transport.closed


def test_eof_inside_a_line_closes_with_incomplete_frame() -> None:
    from reactor import IncompleteFrame

    protocol = Lines()
    transport = MemoryTransport()
    transport.connect(protocol)
    transport.feed(b"whole\npart")
    transport.feed_eof()
    assert protocol.lines == [b"whole"]
    (exc,) = protocol.lost
    assert isinstance(exc, IncompleteFrame) and exc.pending == 4
    assert str(exc) == "the stream ended 4 bytes into a frame"

    protocol = Lines()
    transport = MemoryTransport()
    transport.connect(protocol)
    transport.feed(b"whole\n")
    transport.feed_eof()
    assert protocol.lost == [None]  # a clean end


class TimedMessages(LengthPrefixedProtocol):
    message_timeout = 5

    def __init__(self) -> None:
        self.messages: List[bytes] = []
        self.lost: List[Optional[BaseException]] = []

    def message_received(self, message: bytes) -> None:
        self.messages.append(message)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        self.lost.append(exc)


def test_eof_right_after_a_length_header_is_incomplete() -> None:
    from reactor import IncompleteFrame

    protocol = TimedMessages()
    transport = MemoryTransport()
    transport.connect(protocol)
    transport.feed(b"\x00\x00\x00\x0a")  # a 10-byte message announced, none of it sent
    transport.feed_eof()
    (exc,) = protocol.lost
    assert isinstance(exc, IncompleteFrame) and exc.pending == 4


def test_a_header_then_silence_meets_the_message_deadline(clock: FakeClock,
                                                          fake_reactor: Reactor) -> None:
    protocol = TimedMessages()
    transport = MemoryTransport(reactor=fake_reactor)
    transport.connect(protocol)
    start = clock.now()
    transport.feed(b"\x00\x00")
    advance(fake_reactor, 3)
    transport.feed(b"\x00\x0a")  # the header completes: the frame is still under way
    advance(fake_reactor, 2)
    (exc,) = protocol.lost
    assert isinstance(exc, DeadlineExceeded) and exc.kind == "message"
    assert clock.now() == start + 5  # from the header's first byte


def test_nothing_is_framed_after_a_frame_too_long_that_kept_the_connection() -> None:
    class Tolerant(Lines):
        max_line_length = 8

        def frame_too_long(self, exc: FrameTooLong) -> None:
            self.exceeded.append(exc.length)  # keeps the connection

    protocol = Tolerant()
    transport = MemoryTransport()
    transport.connect(protocol)
    transport.feed(b"a\nb\n" + b"x" * 20)
    transport.feed(b"more\n")
    transport.feed(b"more\n")
    assert protocol.lines == [b"a", b"b"] and len(protocol.exceeded) == 1
    assert not transport.closed
