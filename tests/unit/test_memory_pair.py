"""MemoryPair: two protocols connected in memory on a fake clock, with
chunking, delays, a flow-control window, resets and cuts."""

from __future__ import annotations

from typing import Any, List, Optional

import pytest

from reactor import IncompleteFrame, LengthPrefixedProtocol, LineProtocol, Protocol
from reactor.testing import MemoryPair, chunks

pytestmark = pytest.mark.timeout(30)


class Echo(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Peer(Protocol):
    """Records everything, writes what it is told to."""

    def __init__(self, greeting: bytes = b"", keep_after_eof: bool = False) -> None:
        self.greeting = greeting
        self.keep_after_eof = keep_after_eof
        self.received = bytearray()
        self.reads: List[bytes] = []
        self.events: List[Any] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.greeting:
            transport.write(self.greeting)

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.reads.append(data)

    def eof_received(self) -> Optional[bool]:
        self.events.append("eof")
        return self.keep_after_eof

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))


def test_echo_through_the_pair() -> None:
    client = Peer(greeting=b"hello")
    with MemoryPair(Echo(), client) as pair:
        assert client.received == b"hello"
        client.transport.write(b" again")
        assert client.received == b"hello"  # nothing moves until run()
        pair.run()
        assert client.received == b"hello again"
        assert pair.to_server.delivered == pair.to_client.delivered == 11
        assert pair.server.get_extra_info("peername") == pair.client.get_extra_info("sockname")
    assert client.events == [("lost", None)]  # close() aborts both


def test_chunking_one_byte_at_a_time_gives_the_same_lines() -> None:
    class Lines(LineProtocol):
        def __init__(self) -> None:
            self.lines: List[bytes] = []

        def line_received(self, line: bytes) -> None:
            self.lines.append(line)
            self.send_line(line.upper())

    server = Lines()
    client = Peer(greeting=b"one\ntwo\nthree\n")
    with MemoryPair(server, client, chunking=1) as pair:
        assert server.lines == [b"one", b"two", b"three"]
        assert client.received == b"ONE\nTWO\nTHREE\n"
        assert set(map(len, client.reads)) == {1}
        pair.to_client.chunking = lambda data: chunks(data, [2, 5])
        server.send_line(b"abcdefgh")
        pair.run()
        assert client.reads[-3:] == [b"ab", b"cdefg", b"h\n"]


def test_a_delay_each_way() -> None:
    client = Peer()
    with MemoryPair(Echo(), client, delay=0.25) as pair:
        client.transport.write(b"ping")
        pair.advance(0.499)
        assert client.received == b""
        pair.advance(0.001)
        assert client.received == b"ping" and pair.clock.now() == 0.5


def test_backpressure_through_the_window() -> None:
    server = Peer()
    client = Peer()
    with MemoryPair(server, client, window=1000) as pair:
        client.transport.pause_reading()
        server.transport.set_write_buffer_limits(high=4000, low=1000)
        server.transport.write(b"x" * 10_000)
        pair.run()
        assert server.events == ["pause"] and client.received == b""
        assert server.transport.get_write_buffer_size() == 9000  # 1000 on the way
        client.transport.resume_reading()
        pair.run()
        assert server.events == ["pause", "resume"]
        assert client.received == b"x" * 10_000


def test_reset_reaches_the_victim() -> None:
    server = Peer()
    client = Peer(greeting=b"in flight")
    with MemoryPair(server, client, delay=1) as pair:
        pair.reset(pair.client)  # the server aborts
        assert server.events == [("lost", None)] and client.events == []
        pair.advance(1)
        ((lost, exc),) = client.events
        assert isinstance(exc, ConnectionResetError)
        assert pair.to_server.dropped == len(b"in flight")  # arrived at a closed server


def test_eof_mid_message() -> None:
    class Messages(LengthPrefixedProtocol):
        def __init__(self) -> None:
            self.messages: List[bytes] = []
            self.lost: List[Optional[BaseException]] = []

        def message_received(self, message: bytes) -> None:
            self.messages.append(message)

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            super().connection_lost(exc)
            self.lost.append(exc)

    server = Messages()
    client = Messages()
    with MemoryPair(server, client) as pair:
        pair.to_server.cut_after(4 + 5 + 4 + 3)  # the first whole, 3 bytes of the second
        client.send_message(b"first")
        client.send_message(b"second")
        client.send_message(b"never")
        pair.run()
        assert server.messages == [b"first"]
        (exc,) = server.lost
        assert isinstance(exc, IncompleteFrame) and exc.pending == 7  # header and 3 bytes
        assert pair.to_server.dropped == 3 + 4 + 5


def test_cut_with_a_reset() -> None:
    server = Peer()
    client = Peer()
    with MemoryPair(server, client) as pair:
        pair.to_server.cut_after(2, reset=True)
        client.transport.write(b"abcdef")
        pair.run()
        assert server.received == b"ab"
        assert isinstance(server.events[-1][1], ConnectionResetError)
        assert client.events == []  # the sender is not told


def test_half_close_and_a_reply_after_it() -> None:
    class Replier(Peer):
        def eof_received(self) -> Optional[bool]:
            self.transport.write(b"got " + bytes(self.received))
            self.transport.close()
            return True

    server = Replier()
    client = Peer(keep_after_eof=False)
    with MemoryPair(server, client, delay=0.1) as pair:
        client.transport.write(b"question")
        client.transport.write_eof()
        pair.advance(1)
        assert client.received == b"got question"
        assert client.events == ["eof", ("lost", None)]
        assert server.events == [("lost", None)]


def test_a_slow_reader_makes_the_write_deadline_fire() -> None:
    server = Peer()
    client = Peer()
    with MemoryPair(server, client, window=10) as pair:
        client.transport.pause_reading()
        server.transport.set_write_timeout(5)
        server.transport.write(b"y" * 100)
        pair.advance(5)
        assert isinstance(server.events[-1][1], TimeoutError)
        assert client.events == []  # what was on the way, then the EOF, wait
        client.transport.resume_reading()
        pair.run()
        assert client.received == b"y" * 10 and client.events == ["eof", ("lost", None)]


def test_timers_run_on_the_pairs_clock_and_their_errors_propagate() -> None:
    class Ticker(Peer):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            reactor = transport.get_extra_info("reactor")
            reactor.call_later(3, transport.write, b"tick")
            reactor.call_later(5, self.fail)

        def fail(self) -> None:
            raise LookupError("planted")

    client = Peer()
    with MemoryPair(Ticker(), client) as pair:
        pair.advance(3)
        assert client.received == b"tick" and pair.clock.now() == 3
        with pytest.raises(LookupError, match="planted"):
            pair.advance(2)
        assert len(pair.errors) == 1


def test_protocol_errors_propagate_from_run() -> None:
    class Broken(Peer):
        def data_received(self, data: bytes) -> None:
            raise ValueError("bad protocol")

    client = Peer()
    with MemoryPair(Broken(), client) as pair:
        client.transport.write(b"x")
        with pytest.raises(ValueError, match="bad protocol"):
            pair.run()


def test_run_is_bounded() -> None:
    pair = MemoryPair(Echo(), Echo())
    pair.client.write(b"x")  # two echoes: ping-pong forever
    with pytest.raises(RuntimeError, match="still busy after 1000 steps"):
        pair.run(max_steps=1000)
    pair.close()
    pair.close()  # idempotent
    assert pair.reactor.is_closed()


def test_bad_link_options() -> None:
    with pytest.raises(ValueError):
        MemoryPair(Peer(), Peer(), window=0)


def test_a_reset_after_a_half_close_still_reaches_the_peer() -> None:
    server = Peer(keep_after_eof=True)
    client = Peer()
    with MemoryPair(server, client) as pair:
        client.transport.write_eof()
        pair.run()
        assert server.events == ["eof"]
        pair.reset(pair.server)  # the client, half-closed, now aborts
        assert isinstance(server.events[-1][1], ConnectionResetError)


def test_advance_is_bounded() -> None:
    class Busy(Peer):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.reactor = transport.get_extra_info("reactor")
            self.reactor.call_later(0.001, self.again)

        def again(self) -> None:
            self.reactor.call_later(0.001, self.again)

    with MemoryPair(Busy(), Peer()) as pair:
        with pytest.raises(RuntimeError, match="still busy after 50 steps"):
            pair.advance(1, max_steps=50)


def test_chunk_sizes_are_checked_up_front() -> None:
    for chunking in (0, [3, 0], []):
        with pytest.raises(ValueError, match="at least 1 byte"):
            MemoryPair(Peer(), Peer(), chunking=chunking)
