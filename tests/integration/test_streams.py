"""Tests for reactor.streams on real loopback TCP sockets: immediate
writes, buffering and interest, flow control, half-close, close/abort,
errors from the peer and from the protocol."""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from reactor import Protocol, Reactor, StreamTransport, Transport, TransportSettings
from reactor.streams import TransportGroup, TransportState
from reactor.testing import FakeClock

from ..conftest import run_until

pytestmark = pytest.mark.timeout(30)

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

BIG = 4 * 1024 * 1024  # enough to overflow a shrunk send buffer many times
SMALL_BUF = 4096
PEER_RCVBUF = 65536


class Recorder(Protocol):
    """Remembers every callback, in order."""

    def __init__(self) -> None:
        self.transport: Optional[Transport] = None
        self.events: List[str] = []
        self.data = bytearray()
        self.lost: List[Optional[BaseException]] = []
        self.keep_open_on_eof = False
        self.buffer_at: Dict[str, int] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert data
        self.data += data
        self.events.append("data")

    def eof_received(self) -> Optional[bool]:
        self.events.append("eof")
        return self.keep_open_on_eof

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)
        self.events.append("lost")

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.buffer_at["pause"] = self.transport.get_write_buffer_size()
        self.events.append("pause")

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.buffer_at["resume"] = self.transport.get_write_buffer_size()
        self.events.append("resume")


def tcp_socket_pair(small_buffers: bool = False) -> Tuple[socket.socket, socket.socket]:
    """A connected pair of loopback TCP sockets: (ours, peer).

    ``small_buffers`` shrinks our send buffer so large writes are partial.
    The peer's receive buffer is set before connecting (the window scale is
    fixed then); left to autotuning or shrunk afterwards, loopback TCP can
    crawl on delayed ACKs and make the tests slow.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_buffers:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PEER_RCVBUF)
        peer.connect(listener.getsockname())
        ours, _ = listener.accept()
    if small_buffers:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUF)
    ours.setblocking(False)
    peer.settimeout(10)
    return ours, peer


class Pair:
    """A Transport on our socket, its protocol, and the peer's plain socket."""

    def __init__(self, reactor: Reactor, protocol: Optional[Protocol] = None,
                 small_buffers: bool = False, start: bool = True) -> None:
        self.reactor = reactor
        self.sock, self.peer = tcp_socket_pair(small_buffers)
        self.protocol: Any = protocol if protocol is not None else Recorder()
        self.transport = StreamTransport(reactor, self.sock, self.protocol)
        if start:
            self.transport.start()

    def mask(self) -> int:
        try:
            return self.reactor._selector.get_key(self.sock).events
        except (KeyError, ValueError):
            return 0

    def peer_read_all(self, until: Callable[[bytes], bool], timeout: float = 10) -> bytes:
        """Alternate loop steps and non-blocking reads on the peer until
        ``until(received)`` or the peer sees EOF (then ``peer_eof`` is set);
        fail after ``timeout`` real seconds."""
        got = bytearray()
        self.peer_eof = False
        self.peer.setblocking(False)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.reactor.run_once(0.01)
                while True:
                    try:
                        chunk = self.peer.recv(1 << 20)
                    except BlockingIOError:
                        break
                    except ConnectionResetError:
                        self.peer_eof = True
                        return bytes(got)
                    if not chunk:
                        self.peer_eof = True
                        return bytes(got)
                    got += chunk
                if until(bytes(got)):
                    return bytes(got)
            raise AssertionError(f"peer read only {len(got)} bytes in {timeout}s")
        finally:
            self.peer.settimeout(10)

    def close(self) -> None:
        self.peer.close()
        self.transport.abort()  # idempotent
        for _ in range(3):
            self.reactor.run_once(0)
        self.sock.close()


@pytest.fixture
def make_pair(reactor: Reactor) -> Iterator[Callable[..., Pair]]:
    made: List[Pair] = []

    def make(**kwargs: Any) -> Pair:
        pair = Pair(reactor, **kwargs)
        made.append(pair)
        return pair

    yield make
    for pair in made:
        pair.close()


def payload(n: int) -> bytes:
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


# -- writing -------------------------------------------------------------------


def test_write_sends_at_once_without_write_interest(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    assert p.mask() == EVENT_READ
    p.transport.write(b"hello")
    # Sent during write() itself: no loop step has run.
    assert p.peer.recv(100) == b"hello"
    assert p.transport.get_write_buffer_size() == 0
    assert p.mask() == EVENT_READ


def test_write_accepts_bytes_like(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.transport.write(bytearray(b"ab"))
    p.transport.write(memoryview(b"cd"))
    p.transport.write(b"")
    assert p.peer_read_all(lambda got: len(got) >= 4) == b"abcd"


def test_a_memoryview_of_wide_items_is_sent_whole(make_pair: Callable[..., Pair]) -> None:
    import array

    p = make_pair(small_buffers=True)
    data = memoryview(array.array("i", range(BIG // 4)))  # more than the socket takes at once
    p.transport.write(data)
    assert p.transport.get_write_buffer_size() > 0  # the rest, counted in bytes
    assert p.peer_read_all(lambda got: len(got) >= data.nbytes) == data.tobytes()


def test_write_of_non_bytes_raises_type_error(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    with pytest.raises(TypeError):
        p.transport.write("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.transport.write(None)  # type: ignore[arg-type]
    assert p.transport.get_write_buffer_size() == 0


def test_partial_write_buffers_and_watches_writability(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    data = payload(BIG)
    p.transport.write(data)
    assert 0 < p.transport.get_write_buffer_size() < BIG
    assert p.mask() == EVENT_READ | EVENT_WRITE
    got = p.peer_read_all(lambda got: len(got) >= BIG)
    assert got == data
    assert p.transport.get_write_buffer_size() == 0
    assert p.mask() == EVENT_READ
    assert p.protocol.lost == []


def test_writes_while_buffered_keep_their_order(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    p.transport.set_write_buffer_limits(high=1 << 30)
    first, second = payload(BIG), b"tail" * 1000
    p.transport.write(first)
    assert p.transport.get_write_buffer_size() > 0
    p.transport.write(second)
    got = p.peer_read_all(lambda got: len(got) >= len(first) + len(second))
    assert got == first + second


def test_writelines_joins_chunks(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.transport.writelines([b"a", bytearray(b"bc"), memoryview(b"def")])
    p.transport.writelines(iter([b"g"]))
    assert p.peer_read_all(lambda got: len(got) >= 7) == b"abcdefg"


def test_pause_and_resume_writing_follow_the_water_marks(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    high, low = 256 * 1024, 64 * 1024
    p.transport.set_write_buffer_limits(high=high, low=low)
    assert p.transport.get_write_buffer_limits() == (low, high)
    chunk = payload(64 * 1024)
    for _ in range(64):  # 4 MiB in writes that each cross nothing by themselves
        p.transport.write(chunk)
    assert p.protocol.events.count("pause") == 1
    assert p.protocol.buffer_at["pause"] > high
    got = p.peer_read_all(lambda got: len(got) >= 64 * len(chunk))
    assert got == chunk * 64
    assert p.protocol.events == ["made", "pause", "resume"]
    assert p.protocol.buffer_at["resume"] <= low


@pytest.mark.parametrize("finish", ["close", "write_eof"])
def test_write_and_finish_from_resume_writing_loses_nothing(
        finish: str, make_pair: Callable[..., Pair]) -> None:
    # low=0: resume_writing comes exactly when the buffer has drained, from
    # inside the drain; the protocol then writes more than the kernel takes
    # and closes (or half-closes).  The new data must still be sent first.
    first, second = payload(BIG), payload(BIG)[::-1]

    class Producer(Recorder):
        def resume_writing(self) -> None:
            super().resume_writing()
            assert self.transport is not None
            if self.events.count("resume") > 1:
                return
            self.transport.write(second)
            assert self.transport.get_write_buffer_size() > 0
            getattr(self.transport, finish)()

    p = make_pair(protocol=Producer(), small_buffers=True)
    p.transport.set_write_buffer_limits(high=64 * 1024, low=0)
    p.transport.write(first)
    assert p.protocol.events == ["made", "pause"]
    got = p.peer_read_all(lambda got: False)
    assert p.peer_eof
    assert len(got) == len(first) + len(second)
    assert got == first + second
    assert p.protocol.events[:5] == ["made", "pause", "resume", "pause", "resume"]
    if finish == "close":
        run_until(p.reactor, lambda: p.protocol.lost)
        assert p.protocol.lost == [None]
    else:
        assert p.protocol.lost == []


class MeteredSocket:
    """A real socket whose ``send()`` takes only as many bytes as the test
    allows (the rest "would block"), so buffer sizes are exact."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.allowance = 0
        self.sent = bytearray()

    def send(self, data: Any) -> int:
        n = min(len(data), self.allowance)
        if n == 0:
            raise BlockingIOError(errno.EAGAIN, "metered")
        self.allowance -= n
        self.sent += bytes(data[:n])
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_water_marks_are_exact(reactor: Reactor) -> None:
    ours, peer = tcp_socket_pair()
    metered = MeteredSocket(ours)
    proto = Recorder()
    t = StreamTransport(reactor, metered, proto)  # type: ignore[arg-type]
    try:
        t.start()
        t.set_write_buffer_limits(high=100, low=40)
        t.write(b"a" * 100)
        assert t.get_write_buffer_size() == 100
        assert proto.events == ["made"]          # at the high mark: no pause
        t.write(b"b")
        assert proto.events == ["made", "pause"]  # above it: pause
        assert proto.buffer_at["pause"] == 101
        metered.allowance = 60                   # 41 left: still above low
        reactor.run_once(0)
        assert t.get_write_buffer_size() == 41
        assert proto.events == ["made", "pause"]
        metered.allowance = 1                    # exactly at low: resume
        reactor.run_once(0)
        assert t.get_write_buffer_size() == 40
        assert proto.events == ["made", "pause", "resume"]
        metered.allowance = 1000
        reactor.run_once(0)
        assert bytes(metered.sent) == b"a" * 100 + b"b"
        assert proto.events == ["made", "pause", "resume"]
    finally:
        t.abort()
        reactor.run_once(0)
        peer.close()
        ours.close()


def test_no_pause_when_below_high_water(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    p.transport.set_write_buffer_limits(high=1 << 30)
    p.transport.write(payload(BIG))
    assert p.transport.get_write_buffer_size() > 0
    p.peer_read_all(lambda got: len(got) >= BIG)
    assert "pause" not in p.protocol.events and "resume" not in p.protocol.events


def test_set_write_buffer_limits_pauses_and_resumes_immediately(
        make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    p.transport.set_write_buffer_limits(high=1 << 30)
    p.transport.write(payload(BIG))
    size = p.transport.get_write_buffer_size()
    assert size > 1000
    p.transport.set_write_buffer_limits(high=size - 1, low=0)
    assert p.protocol.events[-1] == "pause"
    p.transport.set_write_buffer_limits(high=size + 10, low=size)
    assert p.protocol.events[-1] == "resume"
    p.peer_read_all(lambda got: len(got) >= BIG)


def test_set_write_buffer_limits_validation_and_defaults(make_pair: Callable[..., Pair]) -> None:
    t = make_pair().transport
    assert t.get_write_buffer_limits() == (16384, 65536)
    t.set_write_buffer_limits(high=1000)
    assert t.get_write_buffer_limits() == (250, 1000)
    t.set_write_buffer_limits(low=100)
    assert t.get_write_buffer_limits() == (100, 400)
    t.set_write_buffer_limits(high=0, low=0)
    assert t.get_write_buffer_limits() == (0, 0)
    t.set_write_buffer_limits()
    assert t.get_write_buffer_limits() == (16384, 65536)
    for high, low in ((10, 20), (-1, None), (10, -1), (None, -4)):
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=high, low=low)
    assert t.get_write_buffer_limits() == (16384, 65536)


# -- half-close ------------------------------------------------------------------


def test_write_eof_sends_fin_only_after_buffered_data(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    data = payload(BIG)
    p.transport.write(data)
    assert p.transport.get_write_buffer_size() > 0
    assert p.transport.can_write_eof()
    p.transport.write_eof()
    p.transport.write_eof()  # twice is harmless
    got = p.peer_read_all(lambda got: False)
    assert p.peer_eof
    assert got == data
    assert not p.transport.is_closing()  # half-closed only: still reading
    assert p.protocol.lost == []


def test_write_eof_keeps_reading(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.transport.write_eof()
    assert p.peer.recv(10) == b""
    p.peer.sendall(b"still listening")
    run_until(p.reactor, lambda: bytes(p.protocol.data) == b"still listening")


def test_write_after_write_eof_raises(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.transport.write(b"x")
    p.transport.write_eof()
    with pytest.raises(RuntimeError):
        p.transport.write(b"y")
    with pytest.raises(RuntimeError):
        p.transport.writelines([b"y"])
    assert p.peer.recv(10) == b"x"
    assert p.peer.recv(10) == b""


def test_peer_half_close_with_keep_open_stays_writable(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.protocol.keep_open_on_eof = True
    p.peer.sendall(b"question")
    p.peer.shutdown(socket.SHUT_WR)
    run_until(p.reactor, lambda: "eof" in p.protocol.events)
    assert bytes(p.protocol.data) == b"question"
    assert p.protocol.events[-1] == "eof"
    assert not p.transport.is_closing()
    assert not p.transport.is_reading()
    p.transport.write(b"answer")
    p.transport.close()
    assert p.peer_read_all(lambda got: False) == b"answer"
    assert p.peer_eof
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.lost == [None]
    assert p.protocol.events.count("eof") == 1


def test_peer_half_close_without_keep_open_closes(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.peer.shutdown(socket.SHUT_WR)
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.events == ["made", "eof", "lost"]
    assert p.protocol.lost == [None]
    assert p.peer.recv(10) == b""
    assert p.sock.fileno() == -1


def test_both_directions_half_closed(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.protocol.keep_open_on_eof = True
    p.transport.write_eof()
    assert p.peer.recv(10) == b""
    p.peer.sendall(b"last words")
    p.peer.shutdown(socket.SHUT_WR)
    run_until(p.reactor, lambda: "eof" in p.protocol.events)
    assert bytes(p.protocol.data) == b"last words"
    p.transport.close()
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.lost == [None]


# -- close and abort ----------------------------------------------------------------


def test_close_flushes_buffer_then_sends_eof(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    data = payload(BIG)
    p.transport.write(data)
    assert p.transport.get_write_buffer_size() > 0
    p.transport.close()
    assert p.transport.is_closing()
    assert not p.transport.is_reading()
    assert p.protocol.lost == []
    p.transport.write(b"ignored after close")
    got = p.peer_read_all(lambda got: False)
    assert p.peer_eof
    assert got == data
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.lost == [None]
    assert p.protocol.events.count("lost") == 1


def test_close_is_idempotent(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.transport.close()
    p.transport.close()
    p.transport.write_eof()  # no-op once closing
    p.reactor.run_once(0)
    p.reactor.run_once(0)
    assert p.protocol.lost == [None]
    assert "closed" in repr(p.transport)


def test_abort_drops_the_buffer(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    data = payload(BIG)
    p.transport.write(data)
    assert p.transport.get_write_buffer_size() > 0
    p.transport.abort()
    assert p.transport.get_write_buffer_size() == 0
    assert p.protocol.lost == []  # never from inside abort()
    got = p.peer_read_all(lambda got: False)
    assert p.peer_eof
    assert len(got) < len(data)
    assert got == data[:len(got)]
    assert p.protocol.lost == [None]


def test_write_close_abort_after_abort_are_no_ops(make_pair: Callable[..., Pair],
                                                  errors: List[Any]) -> None:
    p = make_pair()
    p.transport.abort()
    p.transport.write(b"x")
    p.transport.writelines([b"y"])
    p.transport.close()
    p.transport.abort()
    p.transport.write_eof()
    p.transport.pause_reading()
    p.transport.resume_reading()
    for _ in range(3):
        p.reactor.run_once(0)
    assert p.protocol.lost == [None]
    assert p.transport.get_write_buffer_size() == 0
    assert p.peer.recv(10) == b""
    assert errors == []


def test_connection_lost_is_never_called_from_inside_a_callback(
        make_pair: Callable[..., Pair]) -> None:
    class AbortOnData(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            assert self.transport is not None
            self.transport.abort()
            self.transport.abort()
            self.lost_after_abort = list(self.lost)

    p = make_pair(protocol=AbortOnData())
    p.peer.sendall(b"trigger")
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.lost_after_abort == []
    assert p.protocol.lost == [None]
    assert p.protocol.events == ["made", "data", "lost"]


def test_close_inside_connection_made(make_pair: Callable[..., Pair]) -> None:
    class CloseAtOnce(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.write(b"bye")
            transport.close()
            self.lost_after_close = list(self.lost)

    p = make_pair(protocol=CloseAtOnce())
    assert p.protocol.lost_after_close == []
    assert p.peer_read_all(lambda got: False) == b"bye"
    assert p.peer_eof
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.events == ["made", "lost"]


def test_peer_close_reaches_connection_lost_once(make_pair: Callable[..., Pair],
                                                 errors: List[Any]) -> None:
    p = make_pair()
    p.peer.sendall(b"data")
    p.peer.close()
    run_until(p.reactor, lambda: p.protocol.lost)
    for _ in range(3):
        p.reactor.run_once(0)
    assert p.protocol.events == ["made", "data", "eof", "lost"]
    assert p.protocol.lost == [None]
    assert errors == []


def test_peer_reset_is_routine(make_pair: Callable[..., Pair], errors: List[Any]) -> None:
    p = make_pair()
    p.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    p.peer.close()
    run_until(p.reactor, lambda: p.protocol.lost)
    assert len(p.protocol.lost) == 1
    assert isinstance(p.protocol.lost[0], ConnectionResetError)
    assert errors == []


def test_write_to_reset_peer_is_routine(make_pair: Callable[..., Pair], errors: List[Any]) -> None:
    p = make_pair()
    p.transport.pause_reading()  # learn of the reset from send(), not recv()
    p.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    p.peer.close()
    for _ in range(100):
        p.transport.write(b"x" * 1000)
        if p.transport.is_closing():
            break
    run_until(p.reactor, lambda: p.protocol.lost)
    assert len(p.protocol.lost) == 1
    assert isinstance(p.protocol.lost[0], (ConnectionResetError, BrokenPipeError))
    assert errors == []


def test_non_routine_socket_error_is_reported(make_pair: Callable[..., Pair],
                                              errors: List[Any]) -> None:
    p = make_pair()
    failure = OSError(errno.EIO, "simulated I/O error")
    p.transport._fatal(failure)
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.protocol.lost == [failure]
    assert len(errors) == 1
    assert errors[0]["exception"] is failure
    assert errors[0]["transport"] is p.transport


# -- exceptions from the protocol -----------------------------------------------------


class Boom(Exception):
    pass


def failing_protocol(where: str) -> Recorder:
    class Failing(Recorder):
        pass

    def raiser(name: str) -> Callable[..., Any]:
        original = getattr(Recorder, name)

        def method(self: Recorder, *args: Any) -> Any:
            original(self, *args)
            raise Boom(name)
        method.__name__ = method.__qualname__ = name
        return method

    setattr(Failing, where, raiser(where))
    return Failing()


@pytest.mark.parametrize("where", ["connection_made", "data_received", "eof_received",
                                   "connection_lost", "pause_writing", "resume_writing"])
def test_protocol_exception_closes_only_that_connection(
        where: str, make_pair: Callable[..., Pair], errors: List[Any]) -> None:
    good = make_pair()
    bad = make_pair(protocol=failing_protocol(where), small_buffers=True)
    t = bad.transport
    if where == "data_received":
        bad.peer.sendall(b"x")
    elif where == "eof_received":
        bad.peer.shutdown(socket.SHUT_WR)
    elif where == "connection_lost":
        t.close()
    elif where in ("pause_writing", "resume_writing"):
        t.set_write_buffer_limits(high=64 * 1024)
        t.write(payload(BIG))
        if where == "resume_writing":
            bad.peer_read_all(lambda got: len(got) >= BIG)
    run_until(bad.reactor, lambda: bad.protocol.lost and errors)
    for _ in range(3):
        bad.reactor.run_once(0)

    assert len(errors) == 1, errors
    ctx = errors[0]
    assert isinstance(ctx["exception"], Boom) and str(ctx["exception"]) == where
    assert ctx["protocol"] is bad.protocol
    assert ctx["transport"] is t
    assert ctx["callback"] == getattr(bad.protocol, where)  # the callable itself
    assert ctx["message"] == f"exception in Failing.{where}()"

    assert bad.protocol.events.count("lost") == 1
    if where != "connection_lost":
        assert bad.protocol.lost == [ctx["exception"]]
    assert t.is_closing()
    assert bad.sock.fileno() == -1
    assert t.get_protocol() is None
    # The peer sees the connection end.
    bad.peer_read_all(lambda got: False)
    assert bad.peer_eof

    # The other connection on the same reactor is untouched.
    assert good.protocol.lost == []
    good.peer.sendall(b"ping")
    run_until(good.reactor, lambda: bytes(good.protocol.data) == b"ping")
    good.transport.write(b"pong")
    assert good.peer.recv(10) == b"pong"


# -- reading ----------------------------------------------------------------------------


def test_data_received(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    data = payload(300_000)
    p.peer.sendall(data)
    run_until(p.reactor, lambda: len(p.protocol.data) >= len(data))
    assert bytes(p.protocol.data) == data
    assert p.protocol.events[0] == "made"


def test_pause_and_resume_reading(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    assert p.transport.is_reading()
    p.transport.pause_reading()
    p.transport.pause_reading()
    assert not p.transport.is_reading()
    assert p.mask() == 0  # nothing to watch at all
    p.peer.sendall(b"held back")
    for _ in range(5):
        p.reactor.run_once(0.01)
    assert p.protocol.data == b""
    p.transport.resume_reading()
    p.transport.resume_reading()
    assert p.transport.is_reading()
    assert p.mask() == EVENT_READ
    run_until(p.reactor, lambda: bytes(p.protocol.data) == b"held back")


def test_pause_reading_keeps_write_interest(make_pair: Callable[..., Pair]) -> None:
    p = make_pair(small_buffers=True)
    p.transport.set_write_buffer_limits(high=1 << 30)
    p.transport.write(payload(BIG))
    p.transport.pause_reading()
    assert p.mask() == EVENT_WRITE
    p.transport.resume_reading()
    assert p.mask() == EVENT_READ | EVENT_WRITE
    p.peer_read_all(lambda got: len(got) >= BIG)
    assert p.mask() == EVENT_READ


# -- extra info ----------------------------------------------------------------------------


def test_get_extra_info(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    t = p.transport
    assert t.get_extra_info("peername") == p.peer.getsockname()
    assert t.get_extra_info("sockname") == p.peer.getpeername()
    assert t.get_extra_info("socket") is p.sock
    assert t.get_extra_info("nonsense") is None
    assert t.get_extra_info("nonsense", "fallback") == "fallback"
    assert t.get_protocol() is p.protocol
    assert f"fd={p.sock.fileno()}" in repr(t) and "open" in repr(t)


def test_get_extra_info_after_close_gives_default(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    p.transport.abort()
    run_until(p.reactor, lambda: p.protocol.lost)
    assert p.transport.get_extra_info("peername", "gone") == "gone"


def test_transport_on_a_unix_socketpair(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        proto = Recorder()
        t = StreamTransport(reactor, a, proto)
        t.start()
        t.write(b"over unix")
        assert b.recv(100) == b"over unix"
        b.sendall(b"back")
        run_until(reactor, lambda: bytes(proto.data) == b"back")
        t.close()
        run_until(reactor, lambda: proto.lost)
        assert proto.lost == [None]
        assert b.recv(10) == b""
    finally:
        a.close()
        b.close()


def test_no_resume_writing_after_abort(reactor: Reactor, errors: List[Any]) -> None:
    import socket as socket_module


    class Tracks(Protocol):
        def __init__(self) -> None:
            self.calls: List[str] = []

        def pause_writing(self) -> None:
            self.calls.append("pause")

        def resume_writing(self) -> None:
            self.calls.append("resume")

    a, b = socket_module.socketpair()
    try:
        a.setblocking(False)
        protocol = Tracks()
        transport = StreamTransport(reactor, a, protocol)
        transport.start()
        transport.set_write_buffer_limits(high=1000)
        transport.write(b"x" * (4 << 20))
        assert protocol.calls == ["pause"]
        transport.abort()
        for _ in range(3):
            reactor.run_once(0)
        transport.set_write_buffer_limits(high=10)
        assert protocol.calls == ["pause"] and errors == []
    finally:
        b.close()


# -- settings, state, and the write timeout at run time -------------------------------


def test_transport_settings_are_validated_shared_and_copied_on_change(
        make_pair: Callable[..., Pair]) -> None:
    with pytest.raises(ValueError, match="need high"):
        TransportSettings(low_water=10, high_water=5)
    with pytest.raises(ValueError, match="write timeout must be >= 0"):
        TransportSettings(write_timeout=-1)
    assert TransportSettings(write_timeout=0).write_timeout is None  # 0: never
    shared = TransportSettings(write_timeout=9)
    assert repr(shared) == ("TransportSettings(low_water=16384, high_water=65536, "
                            "write_timeout=9, idle_timeout=None, max_lifetime=None, "
                            "max_write_buffer=67108864)")
    reactor = make_pair().reactor
    pairs = [tcp_socket_pair() for _ in range(2)]
    try:  # as a listener makes them: one settings object for all
        a, b = (StreamTransport(reactor, ours, Recorder(), settings=shared)
                for ours, _peer in pairs)
        a.set_write_buffer_limits(high=1000)
        assert a.get_write_buffer_limits() == (250, 1000)
        assert b.get_write_buffer_limits() == (16384, 65536)  # not shared any more
        assert shared.high_water == 65536 and a.get_write_timeout() == 9
    finally:
        for transport in (a, b):
            transport.abort()
        reactor.run_once(0)
        for ours, peer in pairs:
            ours.close()
            peer.close()


def test_state_reads_as_names(make_pair: Callable[..., Pair]) -> None:
    p = make_pair()
    S = TransportState
    assert p.transport.state == S.REGISTERED | S.WATCHING_READ
    p.transport.pause_reading()
    assert p.transport.state == S.REGISTERED | S.READING_PAUSED
    p.transport.close()
    # Nothing buffered: lost at once, and the socket given back to the reactor.
    assert p.transport.state == S.READING_PAUSED | S.CLOSING | S.LOST
    assert "closed" in repr(p.transport)


@pytest.mark.parametrize("how", ["reading paused", "half-closed"])
def test_a_transport_watching_nothing_still_owns_its_socket(
        how: str, make_pair: Callable[..., Pair], reactor: Reactor) -> None:
    p = make_pair()
    if how == "reading paused":
        p.transport.pause_reading()
    else:
        p.protocol.keep_open_on_eof = True
        p.peer.shutdown(socket.SHUT_WR)
        run_until(reactor, lambda: "eof" in p.protocol.events)
    assert p.mask() == 0 and reactor.registered_count() == 1  # not watched, still held
    with pytest.raises(RuntimeError, match="watched by <StreamTransport"):
        reactor.add_reader(p.sock, print)
    if how == "reading paused":
        p.transport.resume_reading()  # works: nobody took the socket meanwhile
        p.peer.sendall(b"after the pause")
        run_until(reactor, lambda: p.protocol.data == b"after the pause")
    p.transport.abort()
    reactor.run_once(0)
    assert reactor.registered_count() == 0


def test_write_timeout_set_at_run_time_waits_for_progress_then_aborts(
        clock: FakeClock, errors: List[Any]) -> None:
    reactor = Reactor(clock=clock)
    reactor.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    p = Pair(reactor, small_buffers=True)
    try:
        p.transport.set_write_buffer_limits(high=1 << 30)
        p.transport.write(payload(BIG))  # the peer is not reading: most is buffered
        assert p.transport.get_write_buffer_size() > 0
        p.transport.set_write_timeout(5)
        assert p.transport.get_write_timeout() == 5
        clock.advance(4)
        reactor.run_once(0)
        p.peer.setblocking(False)
        p.peer.recv(1 << 16)  # some progress at t+4...
        clock.advance(0.5)
        for _ in range(5):
            reactor.run_once(0.01)  # ...lets the transport send a little more
        clock.advance(0.5)  # t+5: the first check finds progress and re-arms
        reactor.run_once(0)
        assert not p.transport.is_closing()
        clock.advance(4.4)  # still within 5 s of the last progress
        reactor.run_once(0)
        assert not p.transport.is_closing()
        clock.advance(0.6)
        reactor.run_once(0)
        assert p.transport.is_closing()
        for _ in range(3):
            reactor.run_once(0)
        (exc,) = p.protocol.lost
        assert isinstance(exc, TimeoutError) and "peer stopped reading" in str(exc)
        assert errors == []  # a peer that stops reading is routine, not an error
    finally:
        p.close()
        reactor.close()


def test_a_groups_on_leave_that_raises_is_reported_with_the_transport(
        reactor: Reactor, errors: List[Any]) -> None:
    ours, peer = tcp_socket_pair()
    gone: List[StreamTransport] = []

    def on_leave(transport: StreamTransport) -> None:
        gone.append(transport)
        raise KeyError("owner's bug")

    group = TransportGroup(reactor, on_leave=on_leave)
    t = StreamTransport(reactor, ours, Recorder(), group=group)
    t.start()
    assert list(group) == [t]
    t.abort()
    reactor.run_once(0)
    peer.close()
    assert gone == [t] and len(group) == 0
    assert [(e["callback"], e["transport"], type(e["exception"])) for e in errors] == [
        (on_leave, t, KeyError)]
