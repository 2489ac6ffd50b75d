"""Test doubles for your own tests: a clock you move by hand and a transport
that keeps what a protocol wrote in memory.

Unit-test a protocol with no sockets and no sleeping::

    from reactor.testing import MemoryTransport

    transport = MemoryTransport()
    protocol = MyProtocol()
    transport.connect(protocol)         # calls connection_made
    transport.feed(b"hello")            # calls data_received
    assert transport.value() == b"..."  # what the protocol wrote
    transport.feed_eof()                # calls eof_received
    assert transport.closed

Drive timers on a reactor with a fake clock::

    clock = FakeClock()
    reactor = Reactor(clock=clock)
    reactor.call_later(30, fired)
    advance(reactor, 30)                # fires it at exactly t=30

Run two protocols against each other through the real transport code::

    pair = ConnectedPair(Reactor(), MyServer(), MyClient())
    pair.run_until(lambda: client.done)
    pair.reset(pair.client)             # fault injection: a peer reset
    pair.close()

Split data the way TCP might: ``chunks(data, 1)`` (one byte at a time),
``chunks(data, [3, 1, 7])``, or ``random_chunks(data, seed=4)``.

Test the loop's dispatch, or your own ``IOHandler``, with no real I/O:
``Reactor(selector=ScriptedSelector())``, then queue what ``select()`` should
return in ``selector.script``.
"""

from __future__ import annotations

import collections
import random
import selectors
import socket
import struct
import time
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .loop import Reactor
from .protocols import Protocol
from .streams import StreamTransport
from .timers import Clock, TimerHandle
from .transports import Buffer, DeadlineExceeded, Transport, deadline_message

__all__ = ["FakeClock", "advance", "MemoryTransport", "ConnectedPair", "ScriptedSelector",
           "chunks", "random_chunks"]


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (only).  Timers are not fired: see ``advance()``
        in this module, or call ``reactor.run_once(0)``."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError("time cannot go backwards")
        self._now = float(when)


def advance(reactor: Reactor, seconds: float, max_steps: int = 100_000) -> None:
    """Move the reactor's ``FakeClock`` forward by ``seconds``, stopping at
    each timer's deadline on the way so it fires with ``time()`` equal to
    that deadline, in order; then run one more step at the end time.
    ``max_steps`` bounds a timer that keeps rescheduling itself."""
    clock = reactor.clock
    if not isinstance(clock, FakeClock):
        raise TypeError("advance() needs a Reactor built with clock=FakeClock()")
    end = clock.now() + seconds
    for _ in range(max_steps):
        reactor.run_once(0)
        deadline = reactor.next_deadline()
        if deadline is None or deadline > end:
            break
        clock.set(max(deadline, clock.now()))
    else:
        raise RuntimeError(f"advance(): still busy after {max_steps} steps")
    clock.set(end)
    reactor.run_once(0)


class MemoryTransport(Transport):
    """A transport that records instead of sending.

    What the protocol wrote is in ``value()``; ``eof_written``, ``closed``,
    ``aborted`` and ``reading`` say what else it asked for.  ``feed()``,
    ``feed_eof()`` and ``lose()`` play the peer.  Like the real transport,
    ``connection_lost`` is called once, and never from inside another
    protocol callback: a close requested during a callback is delivered
    when that callback returns.  Exceptions from the protocol propagate to
    the test.

    Given a ``reactor`` (one with a ``FakeClock``, typically), it keeps the
    idle and lifetime deadlines too, on that reactor's clock: the protocol
    hears ``deadline_exceeded`` and, unless it keeps the connection, it is
    closed and ``connection_lost`` receives the ``DeadlineExceeded``.
    Without one, deadlines are remembered but never fire.
    """

    def __init__(self, peername: Tuple[str, int] = ("127.0.0.1", 54321),
                 sockname: Tuple[str, int] = ("127.0.0.1", 3005),
                 reactor: Optional[Reactor] = None) -> None:
        self.reactor = reactor
        self.idle_timeout: Optional[float] = None
        self.max_lifetime: Optional[float] = None
        self._last_read = self._opened = 0.0
        self._timers: Dict[str, TimerHandle] = {}
        self.protocol: Optional[Protocol] = None
        self.written = bytearray()
        self.writes: List[bytes] = []
        self.eof_written = False
        self.closed = False
        self.aborted = False
        self.reading = True
        self.lost: Optional[Tuple[Optional[BaseException]]] = None
        self.buffer_limits = (16384, 65536)
        self._extra = {"peername": peername, "sockname": sockname, "socket": None}
        self._depth = 0
        self._pending_lost: Optional[Tuple[Optional[BaseException]]] = None
        # What the peer sent while reading was paused: bytes, or None for EOF.
        self._inbox: Deque[Optional[bytes]] = collections.deque()
        self._peer_eof = False

    # -- driving the protocol ---------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._depth += 1
        try:
            return fn(*args)
        finally:
            self._depth -= 1
            if self._depth == 0 and self._pending_lost is not None and self.lost is None:
                self.lost, self._pending_lost = self._pending_lost, None
                protocol = self.protocol
                assert protocol is not None
                protocol.connection_lost(self.lost[0])

    def connect(self, protocol: Protocol) -> Protocol:
        """Attach ``protocol`` and call its ``connection_made``."""
        self.protocol = protocol
        if self.reactor is not None:
            self._last_read = self._opened = self.reactor.time()
            self._arm("idle")
            self._arm("lifetime")
        self._call(protocol.connection_made, self)
        return protocol

    def feed(self, data: bytes, chunk_size: Optional[int] = None) -> None:
        """Deliver ``data`` as if the peer sent it, in pieces of
        ``chunk_size`` bytes if given.  Like the real transport: nothing is
        delivered once closed, and while reading is paused the pieces wait
        for ``resume_reading()``."""
        if self.closed or self.lost is not None:
            return
        if self._peer_eof:
            raise RuntimeError("feed() after feed_eof(): a peer cannot send after its EOF")
        step = chunk_size or max(len(data), 1)
        for start in range(0, len(data), step):
            self._inbox.append(bytes(data[start:start + step]))
        self._deliver()

    def feed_eof(self) -> None:
        """The peer half-closed.  Closes unless ``eof_received`` returns
        true, like the real transport.  Delivered once, after any data
        waiting for ``resume_reading()``; ignored once closed."""
        if not self._peer_eof:
            self._peer_eof = True
            self._inbox.append(None)
            self._deliver()

    def _deliver(self) -> None:
        while self._inbox and self.reading and not self.closed and self.lost is None:
            protocol = self.protocol
            assert protocol is not None
            item = self._inbox.popleft()
            if item is not None:
                if self.reactor is not None:
                    self._last_read = self.reactor.time()
                self._call(protocol.data_received, item)
            elif not self._call(protocol.eof_received):
                self.close()

    def lose(self, exc: Optional[BaseException] = None) -> None:
        """The connection died (e.g. ``ConnectionResetError()``)."""
        self.closed = True
        self._lost_with(exc)

    # -- deadlines, on the reactor's clock ------------------------------------------

    def _arm(self, kind: str) -> None:
        old = self._timers.pop(kind, None)
        if old is not None:
            old.cancel()
        timeout = self.idle_timeout if kind == "idle" else self.max_lifetime
        if self.reactor is None or timeout is None or self.closed or self.protocol is None:
            return
        since = self._last_read if kind == "idle" else self._opened
        self._timers[kind] = self.reactor.call_at(since + timeout, self._due, kind)

    def _due(self, kind: str) -> None:
        del self._timers[kind]
        timeout = self.idle_timeout if kind == "idle" else self.max_lifetime
        assert self.reactor is not None and timeout is not None and self.protocol is not None
        if kind == "idle" and not self.reading:  # paused: the peer is not idle
            self._last_read = self.reactor.time()
        since = self._last_read if kind == "idle" else self._opened
        if since + timeout > self.reactor.time():
            self._arm(kind)  # read since (or paused): not due yet
            return
        exc = DeadlineExceeded(kind, timeout, deadline_message(kind, timeout))
        keep = self._call(self.protocol.deadline_exceeded, exc)
        if self.closed:
            return
        if keep:  # that deadline (and only that one) starts over
            if kind == "idle":
                self._last_read = self.reactor.time()
            else:
                self._opened = self.reactor.time()
            self._arm(kind)
        else:
            self.closed = True
            self.reading = False
            self._lost_with(exc)

    def value(self) -> bytes:
        """Everything written so far."""
        return bytes(self.written)

    def clear(self) -> None:
        self.written.clear()
        self.writes.clear()

    def _lost_with(self, exc: Optional[BaseException]) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self.lost is None and self._pending_lost is None:
            self._pending_lost = (exc,)
            if self._depth == 0:
                self._call(lambda: None)

    # -- the transport interface --------------------------------------------------

    def write(self, data: Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self.closed:
            return
        if self.eof_written:
            raise RuntimeError("write() after write_eof()")
        self.written += data
        self.writes.append(bytes(data))

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        self.write(b"".join(chunks))

    def write_eof(self) -> None:
        if not self.closed:
            self.eof_written = True

    def can_write_eof(self) -> bool:
        return True

    def close(self, reason: Optional[BaseException] = None) -> None:
        if not self.closed:
            self.closed = True
            self.reading = False
            self._lost_with(reason)

    def abort(self) -> None:
        if not self.closed:
            self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if not self.closed:
            if not self.reading and self.reactor is not None:
                self._last_read = self.reactor.time()  # idle counts from here
            self.reading = True
            self._deliver()

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        return self.buffer_limits

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        if high is None:
            high = 65536 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"need high ({high!r}) >= low ({low!r}) >= 0")
        self.buffer_limits = (low, high)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        value = self.reactor if name == "reactor" else self._extra.get(name)
        return default if value is None else value

    def get_protocol(self) -> Optional[Protocol]:
        return self.protocol

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        self.idle_timeout = seconds or None
        self._arm("idle")

    def get_idle_timeout(self) -> Optional[float]:
        return self.idle_timeout

    def set_max_lifetime(self, seconds: Optional[float]) -> None:
        if self.max_lifetime is None and self.protocol is not None and self.reactor:
            self._opened = self.reactor.time()  # counted from now, as on a real transport
        self.max_lifetime = seconds or None
        self._arm("lifetime")

    def get_max_lifetime(self) -> Optional[float]:
        return self.max_lifetime


def chunks(data: bytes, sizes: Union[int, Sequence[int]]) -> List[bytes]:
    """``data`` cut into pieces: all of ``sizes`` bytes, or of each size in
    turn (the last size repeats).  ``b"".join(chunks(d, s)) == d``."""
    pieces: List[bytes] = []
    sequence = [sizes] if isinstance(sizes, int) else list(sizes)
    if not sequence or min(sequence) < 1:
        raise ValueError("chunk sizes must be at least 1")
    start = 0
    while start < len(data):
        size = sequence[min(len(pieces), len(sequence) - 1)]
        pieces.append(bytes(data[start:start + size]))
        start += size
    return pieces


def random_chunks(data: bytes, seed: Optional[int] = None, max_size: int = 16) -> List[bytes]:
    """``data`` cut at random places into pieces of 1 to ``max_size`` bytes;
    the same ``seed`` gives the same cuts."""
    rng = random.Random(seed)
    return chunks(data, [rng.randint(1, max_size) for _ in range(len(data) or 1)])


class ConnectedPair:
    """Two protocols talking through real ``StreamTransport`` objects over a
    TCP connection on the loopback interface: the real buffering, flow
    control, half-close and ``connection_lost`` ordering.

    ``server`` and ``client`` are the transports (the names only say which
    protocol was given first).  ``run_until`` steps the reactor;
    ``reset(transport)`` makes the other side reset the connection; ``close()``
    aborts both and runs until their ``connection_lost`` calls are done.
    """

    def __init__(self, reactor: Reactor, server_protocol: Protocol,
                 client_protocol: Protocol) -> None:
        self.reactor = reactor
        a, b = _loopback_pair()
        self.server = StreamTransport(reactor, a, server_protocol)
        self.client = StreamTransport(reactor, b, client_protocol)
        self.server.start("accepted")
        self.client.start("connected")

    def run_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        """Step the reactor until ``predicate()`` is true; ``AssertionError``
        after ``timeout`` real seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {timeout}s")
            self.reactor.run_once(0.01)

    def reset(self, victim: StreamTransport) -> None:
        """Fault injection: the other side aborts with a TCP reset (RST), so
        ``victim`` fails as any transport whose peer reset the connection
        does: its protocol's ``connection_lost`` gets ``ConnectionResetError``
        once the reset arrives (run the reactor for that)."""
        other = self.client if victim is self.server else self.server
        sock = other.get_extra_info("socket")
        # Linger on, with a zero timeout: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        other.abort()

    def close(self) -> None:
        for transport in (self.server, self.client):
            transport.abort()
        self.run_until(lambda: self.server.get_protocol() is None
                       and self.client.get_protocol() is None)


def _loopback_pair() -> Tuple[socket.socket, socket.socket]:
    """A connected pair of non-blocking TCP sockets on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        try:
            server, _ = listener.accept()
        except BaseException:  # pragma: no cover  (loopback accept failing)
            client.close()
            raise
    for sock in (server, client):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server, client


class ScriptedSelector(selectors.BaseSelector):
    """A selector for tests: it records registrations, and ``select()``
    returns whatever the test queued in ``script`` (a list of event lists,
    one per call; an empty list once the script runs out).  The timeouts
    ``select()`` was called with are kept in ``timeouts``.  Nothing waits."""

    def __init__(self) -> None:
        self.keys: Dict[int, selectors.SelectorKey] = {}
        self.script: List[List[Tuple[selectors.SelectorKey, int]]] = []
        self.timeouts: List[Optional[float]] = []
        self.closed = False

    @staticmethod
    def _fd(fileobj: Any) -> int:
        return fileobj if isinstance(fileobj, int) else int(fileobj.fileno())

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = self._fd(fileobj)
        if fd in self.keys:
            raise KeyError(f"{fd} already registered")
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self.keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.keys.pop(self._fd(fileobj))

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = self._fd(fileobj)
        if fd not in self.keys:
            raise KeyError(fd)
        self.keys[fd] = key = selectors.SelectorKey(fileobj, fd, events, data)
        return key

    def select(self, timeout: Optional[float] = None) -> List[Tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        return self.script.pop(0) if self.script else []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return dict(self.keys)

    def close(self) -> None:
        self.closed = True
