"""``MemoryTransport``: a transport that keeps in memory what its protocol
writes, and plays the peer on demand."""

from __future__ import annotations

import collections
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple

from ..loop import Reactor
from ..protocols import Protocol
from ..streams import DEFAULT_MAX_WRITE_BUFFER, FLUSH_AFTER_DEADLINE
from ..timers import TimerHandle
from ..transports import (
    Buffer,
    DeadlineExceeded,
    Transport,
    WriteBufferFull,
    deadline_message,
    water_marks,
)

__all__ = ["MemoryTransport"]


class MemoryTransport(Transport):
    """A transport that records instead of sending.

    What the peer has read of the protocol's writes is in ``value()`` (each
    ``write()`` call is also in ``writes``); ``eof_written``, ``closed``,
    ``aborted`` and ``reading`` say what else the protocol asked for.
    ``feed()``, ``feed_eof()`` and ``lose()`` play the peer.  Like the real
    transport, ``connection_lost`` is called once, and never from inside
    another protocol callback: a close requested during a callback is
    delivered when that callback returns.  Given a ``reactor``, it is
    delivered as the real transport delivers it, by ``call_soon``: run the
    reactor (``advance(reactor, 0)``) to see it.  Exceptions from the
    protocol propagate to the test.

    **The write buffer.**  By default the simulated peer reads everything
    at once, so the buffer stays empty.  With ``peer_reading=False`` (or
    ``set_peer_reading(False)``) writes wait in the buffer until the test
    calls ``peer_read(n)``, and the transport behaves as a real one whose
    peer is slow: past the high-water mark the protocol hears
    ``pause_writing``, at or under the low-water mark ``resume_writing``; a
    write past ``max_write_buffer`` aborts with ``WriteBufferFull``;
    ``close()`` and ``write_eof()`` wait for the buffer to drain
    (``eof_sent`` says the FIN went); ``abort()`` drops it.

    **Deadlines.**  Given a ``reactor`` (one with a ``FakeClock``,
    typically), it keeps the idle, lifetime and write-stall deadlines on
    that reactor's clock: the protocol hears ``deadline_exceeded`` and,
    unless it keeps the connection, it is closed and ``connection_lost``
    receives the ``DeadlineExceeded``.  Without one, deadlines are
    remembered but never fire.
    """

    def __init__(self, peername: Tuple[str, int] = ("127.0.0.1", 54321),
                 sockname: Tuple[str, int] = ("127.0.0.1", 3005),
                 reactor: Optional[Reactor] = None, *, peer_reading: bool = True) -> None:
        self.reactor = reactor
        self.idle_timeout: Optional[float] = None
        self.max_lifetime: Optional[float] = None
        self.write_timeout: Optional[float] = None
        self.max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER
        self._last_read = self._opened = self._progress = 0.0
        self._stall_timeout: Optional[float] = None
        self._close_reason: Optional[BaseException] = None
        self._timers: Dict[str, TimerHandle] = {}
        self.protocol: Optional[Protocol] = None
        self.written = bytearray()
        self.writes: List[bytes] = []
        self.pending = bytearray()
        self.peer_reading = peer_reading
        self.writing_paused = False
        self.eof_written = False
        self.eof_sent = False
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
        self._delivering = False

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
        if self._delivering:  # resume_reading() inside data_received: the loop below goes on
            return
        self._delivering = True
        try:
            while self._inbox and self.reading and not self.closed and self.lost is None:
                protocol = self.protocol
                assert protocol is not None
                item = self._inbox.popleft()
                if item is not None:
                    if self.reactor is not None:
                        self._last_read = self.reactor.time()
                    self._call(protocol.data_received, item)
                else:
                    self.reading = False  # nothing more will come
                    if not self._call(protocol.eof_received):
                        self.close()
        finally:
            self._delivering = False

    def lose(self, exc: Optional[BaseException] = None) -> None:
        """The connection died (e.g. ``ConnectionResetError()``): anything
        still buffered is gone."""
        self._force_close(exc)

    # -- the simulated peer's reading ---------------------------------------------

    def set_peer_reading(self, reading: bool) -> None:
        """Whether the peer takes every write at once (turning it on drains
        what is buffered now)."""
        self.peer_reading = reading
        if reading:
            self.peer_read()

    def peer_read(self, n: Optional[int] = None) -> bytes:
        """The peer reads up to ``n`` buffered bytes (all with ``None``):
        they move to ``value()`` and are returned.  As the buffer falls to
        the low-water mark the protocol hears ``resume_writing``; once it is
        empty a requested EOF is sent and a requested close completes."""
        size = len(self.pending) if n is None else min(n, len(self.pending))
        taken = bytes(self.pending[:size])
        del self.pending[:size]
        self.written += taken
        if taken and self.reactor is not None:
            self._progress = self.reactor.time()
        if self.writing_paused and len(self.pending) <= self.buffer_limits[0]:
            self._resume_writing()
        if not self.pending:
            self._drained()
        return taken

    def _drained(self) -> None:
        self._cancel("write")
        if self.eof_written and not self.eof_sent and self.lost is None:
            self.eof_sent = True
        if self.closed and self.lost is None:
            self._lost_with(self._close_reason)

    def _resume_writing(self) -> None:
        self.writing_paused = False
        if self.protocol is not None and not self.aborted and self.lost is None:
            self._call(self.protocol.resume_writing)

    # -- deadlines, on the reactor's clock ------------------------------------------

    def _cancel(self, kind: str) -> None:
        old = self._timers.pop(kind, None)
        if old is not None:
            old.cancel()

    def _arm(self, kind: str) -> None:
        self._cancel(kind)
        timeout = self._timeout(kind)
        if self.reactor is None or timeout is None or self.protocol is None:
            return
        if self.closed and (kind != "write" or not self.pending):
            return
        since = {"idle": self._last_read, "lifetime": self._opened}.get(kind, self._progress)
        self._timers[kind] = self.reactor.call_at(since + timeout, self._due, kind)

    def _timeout(self, kind: str) -> Optional[float]:
        if kind == "idle":
            return self.idle_timeout
        if kind == "lifetime":
            return self.max_lifetime
        return self._stall_timeout

    def _due(self, kind: str) -> None:
        del self._timers[kind]
        timeout = self._timeout(kind)
        assert self.reactor is not None and timeout is not None and self.protocol is not None
        now = self.reactor.time()
        if kind == "idle" and not self.reading:  # paused: the peer is not idle
            self._last_read = now
        since = {"idle": self._last_read, "lifetime": self._opened}.get(kind, self._progress)
        if since + timeout > now:
            self._arm(kind)  # read (or sent) since, or paused: not due yet
            return
        exc = DeadlineExceeded(kind, timeout, deadline_message(kind, timeout, len(self.pending)))
        if self.closed:  # only a flush on close stalls after closing
            self._force_close(self._close_reason or exc)
            return
        keep = self._call(self.protocol.deadline_exceeded, exc)
        if self.closed:
            return
        if keep:  # that deadline (and only that one) starts over
            if kind == "idle":
                self._last_read = now
            elif kind == "lifetime":
                self._opened = now
            else:
                self._progress = now
            self._arm(kind)
        elif kind == "write":
            self._force_close(exc)  # flushing is what cannot happen
        else:
            self.close(exc)

    def _watch_for_stall(self, timeout: Optional[float]) -> None:
        self._stall_timeout = timeout
        if self.reactor is not None:
            self._progress = self.reactor.time()
        if timeout is None or not self.pending:
            self._cancel("write")
        else:
            self._arm("write")

    def value(self) -> bytes:
        """Everything the peer has read so far."""
        return bytes(self.written)

    def clear(self) -> None:
        self.written.clear()
        self.writes.clear()

    def _force_close(self, exc: Optional[BaseException]) -> None:
        self.pending.clear()
        self.writing_paused = False
        self.closed = True
        self.reading = False
        self._lost_with(exc)

    def _lost_with(self, exc: Optional[BaseException]) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self.lost is None and self._pending_lost is None:
            self._pending_lost = (exc,)
            if self._depth == 0:
                if self.reactor is not None:  # maybe inside a timer: as the real one
                    self.reactor.call_soon(self._call, lambda: None)
                else:  # driven by the test itself
                    self._call(lambda: None)

    # -- the transport interface --------------------------------------------------

    def write(self, data: Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self.closed or not data:
            return
        if self.eof_written:
            raise RuntimeError("write() after write_eof()")
        self.writes.append(bytes(data))
        if self.peer_reading and not self.pending:
            self.written += data
            return
        limit = self.max_write_buffer
        if limit is not None and len(self.pending) + len(data) > limit:
            self.aborted = True
            self._force_close(WriteBufferFull.past(len(self.pending) + len(data), limit))
            return
        if not self.pending and self.write_timeout is not None:
            self.pending += data
            self._watch_for_stall(self.write_timeout)
        else:
            self.pending += data
        if not self.writing_paused and len(self.pending) > self.buffer_limits[1]:
            self.writing_paused = True
            assert self.protocol is not None
            self._call(self.protocol.pause_writing)

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        self.write(b"".join(chunks))

    def write_eof(self) -> None:
        """Half-close: the EOF is sent (``eof_sent``) once the buffer has
        drained."""
        if not self.closed and not self.eof_written:
            self.eof_written = True
            if not self.pending:
                self.eof_sent = True

    def can_write_eof(self) -> bool:
        return True

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Stop reading and close once the buffer has drained; with a
        ``reason``, a flush that stalls is cut after the write timeout (or
        ``FLUSH_AFTER_DEADLINE``)."""
        if self.closed:
            return
        self.closed = True
        self.reading = False
        self._cancel("idle")
        self._cancel("lifetime")
        self._close_reason = reason
        if not self.pending:
            self._lost_with(reason)
        elif reason is not None:
            self._watch_for_stall(self.write_timeout or FLUSH_AFTER_DEADLINE)

    def abort(self) -> None:
        """Close now, dropping anything still buffered."""
        if self.lost is None and self._pending_lost is None and (self.pending or not self.closed):
            self.aborted = True
            self._force_close(None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if not self.closed and (self._inbox or not self._peer_eof):
            if not self.reading and self.reactor is not None:
                self._last_read = self.reactor.time()  # idle counts from here
            self.reading = True
            self._deliver()

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return len(self.pending)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        return self.buffer_limits

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        low, high = water_marks(high, low)
        self.buffer_limits = (low, high)
        if not self.writing_paused and len(self.pending) > high and self.protocol is not None:
            self.writing_paused = True
            self._call(self.protocol.pause_writing)
        elif self.writing_paused and len(self.pending) <= low:
            self._resume_writing()

    def set_max_write_buffer(self, size: Optional[int]) -> None:
        self.max_write_buffer = size

    def get_max_write_buffer(self) -> Optional[int]:
        return self.max_write_buffer

    def set_write_timeout(self, seconds: Optional[float]) -> None:
        self.write_timeout = seconds or None
        if self.lost is None and self._pending_lost is None:
            timeout = self.write_timeout
            if self.closed and self._close_reason is not None:
                timeout = timeout or FLUSH_AFTER_DEADLINE  # closing for a reason: still cut
            self._watch_for_stall(timeout)

    def get_write_timeout(self) -> Optional[float]:
        return self.write_timeout

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        value = self.reactor if name == "reactor" else self._extra.get(name)
        return default if value is None else value

    def get_protocol(self) -> Optional[Protocol]:
        return self.protocol

    def set_protocol(self, protocol: Protocol) -> None:
        """As the stream transport's: later callbacks go to ``protocol``."""
        if self.lost is not None:
            raise RuntimeError("set_protocol(): the connection is already lost")
        self.protocol = protocol

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
