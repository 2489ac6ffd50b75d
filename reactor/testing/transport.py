"""``MemoryTransport``: a transport that keeps in memory what its protocol
writes, and plays the peer on demand."""

from __future__ import annotations

import collections
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple

from ..loop import Reactor
from ..protocols import Protocol
from ..timers import TimerHandle
from ..transports import Buffer, DeadlineExceeded, Transport, deadline_message

__all__ = ["MemoryTransport"]


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
