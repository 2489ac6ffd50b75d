"""A stream transport over any connected, non-blocking stream socket.

Theory of operation
-------------------
Interest follows state.  ``_wanted_mask()`` derives what the selector should
watch from the transport's state: readable while reading is wanted (not
paused, no EOF yet, not closing), writable only while the write buffer holds
something.  ``_update_interest()`` touches the reactor only when that mask
changes: ``add_handler`` the first time, ``update_handler`` after (with 0
while nothing is wanted, so the socket stays ours), ``remove_handler`` once
the connection is lost.  What the reactor watches is kept in the state too,
so ``handle_io`` can check its interest (``IOHandler``'s rule) with one
AND.

``write()`` tries ``send()`` at once and buffers only what the kernel did not
take, so the common case costs one system call and no selector change.  The
buffer is a ``bytearray``: appending is amortised O(1) and so is deleting
the sent prefix.  Crossing the high-water mark calls the protocol's
``pause_writing()``; draining to the low-water mark calls
``resume_writing()``.

Closing comes in three kinds.  ``close()`` stops reading and closes once the
buffer is flushed.  ``abort()`` drops the buffer and closes now.  An OS error
(``_fatal``) is an abort that carries the error.  All three end in
``_schedule_lost``, which unregisters the socket at once and queues
``connection_lost`` for the loop to call: it is never called from inside
another callback, and exactly once.  The socket is closed right after.

Errors say whose fault they are.  A peer reset is routine: it reaches
``connection_lost`` and nothing is logged.  An exception from the protocol
goes to the reactor's exception handler with this transport as context and
aborts this connection only.

Every transport belongs to a ``TransportGroup`` while it is open: its
listener's, or its reactor's own for every other one (outgoing, adopted).
One object per reactor keeps the groups that have members and answers the
reactor's shutdown and close hooks for all of them, so ``shutdown(grace)``
asks every open transport and ``close()`` aborts whatever is left.

Memory: a server keeps one transport per connection, most of them idle, so
a transport has slots and no buffer object until something is buffered;
its settings are one object shared by every transport of a listener, and
its state is one int of flag bits.
"""

from __future__ import annotations

import enum
import errno
import socket
import struct
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from .deadlines import DeadlineQueue
from .loop import EVENT_READ, EVENT_WRITE
from .transports import Buffer, DeadlineExceeded, Transport, WriteBufferFull, deadline_message

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["StreamTransport", "TransportGroup", "TransportSettings", "TransportState",
           "DEFAULT_SETTINGS", "DEFAULT_MAX_WRITE_BUFFER", "ROUTINE_ERRORS",
           "transport_settings", "connect_accepted_socket", "peercred"]


#: Errors a peer can cause at any time.  They close the connection and reach
#: ``connection_lost`` but are not reported as failures.
ROUTINE_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                  TimeoutError)
_ROUTINE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED",
                                      "ENOTCONN", "ESHUTDOWN", "EHOSTUNREACH", "ENETUNREACH")
    if hasattr(errno, name))

_TRY_AGAIN = (BlockingIOError, InterruptedError)

#: "Nothing buffered": shared by every idle transport and never mutated (a
#: transport makes its own bytearray when it first has to buffer).
_NO_BUFFER = bytearray()


class TransportState(enum.IntFlag):
    """A transport's state, one bit per fact (``StreamTransport.state``)."""

    #: ``close()``, ``abort()`` or an error happened: no more writes.
    CLOSING = 1
    #: ``connection_lost`` is scheduled or done.
    LOST = 2
    #: ``write_eof()`` was called.
    EOF_REQUESTED = 4
    #: The peer sent EOF.
    EOF_RECEIVED = 8
    #: ``pause_reading()`` is in force.
    READING_PAUSED = 16
    #: The protocol was told ``pause_writing()``.
    WRITING_PAUSED = 32
    #: The socket is registered with the reactor (watched or not).
    REGISTERED = 64
    #: The reactor watches the socket for reading (``EVENT_READ << 7``).
    WATCHING_READ = 128
    #: The reactor watches the socket for writing (``EVENT_WRITE << 7``).
    WATCHING_WRITE = 256


# The same bits as plain ints for the code that tests them: an IntFlag
# operation runs enum's Python-level __and__, an int one a single C
# operation, and these tests run per chunk (benchmarks/instructions.py).
_CLOSING = TransportState.CLOSING.value
_LOST = TransportState.LOST.value
_EOF_REQUESTED = TransportState.EOF_REQUESTED.value
_EOF_RECEIVED = TransportState.EOF_RECEIVED.value
_READING_PAUSED = TransportState.READING_PAUSED.value
_WRITING_PAUSED = TransportState.WRITING_PAUSED.value
_WATCHING_READ = TransportState.WATCHING_READ.value
_WATCHING_WRITE = TransportState.WATCHING_WRITE.value
_REGISTERED = TransportState.REGISTERED.value
_NO_WRITES = _CLOSING | _EOF_REQUESTED  # write() must not send
_WATCHING_SHIFT = 7  # state >> 7 is the mask the reactor watches
_STATE_BITS = _REGISTERED - 1  # everything but REGISTERED and the watching bits
# An idle connection's state, REGISTERED | WATCHING_READ, is 192: an int
# CPython keeps cached (up to 256), where 320 cost 32 bytes per connection
# (benchmarks/run.py's memory row).
assert _REGISTERED | _WATCHING_READ <= 256
assert _WATCHING_READ == EVENT_READ << _WATCHING_SHIFT
assert _WATCHING_WRITE == EVENT_WRITE << _WATCHING_SHIFT


#: The default cap on one transport's write buffer: 64 MiB, a thousand
#: times the high-water mark.  A protocol that honours ``pause_writing``
#: never comes near it, and one large write (a file sent whole) fits; a
#: protocol that ignores flow control is stopped before one connection can
#: hold more than this.
DEFAULT_MAX_WRITE_BUFFER = 64 * 1024 * 1024


class TransportSettings:
    """Settings shared by every transport of one listener or connect: one
    object for all of them rather than one value per connection.  Treat it
    as immutable; a transport whose own settings change gets a copy
    (``replace``)."""

    __slots__ = ("low_water", "high_water", "write_timeout", "idle_timeout", "max_lifetime",
                 "max_write_buffer")

    def __init__(self, low_water: int = 16384, high_water: int = 65536,
                 write_timeout: Optional[float] = None, idle_timeout: Optional[float] = None,
                 max_lifetime: Optional[float] = None,
                 max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER) -> None:
        if not high_water >= low_water >= 0:
            raise ValueError(f"need high ({high_water!r}) >= low ({low_water!r}) >= 0")
        if max_write_buffer is not None and max_write_buffer < 0:
            raise ValueError(f"max_write_buffer must be >= 0 or None, not {max_write_buffer!r}")
        for name, value in (("write timeout", write_timeout), ("idle timeout", idle_timeout),
                            ("max lifetime", max_lifetime)):
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0 or None, not {value!r}")
        #: Flow control: ``resume_writing`` at or below ``low_water`` buffered
        #: bytes, ``pause_writing`` above ``high_water`` (asyncio's defaults).
        self.low_water = low_water
        self.high_water = high_water
        # The deadlines, in seconds; None (or 0) for none.  See
        # StreamTransport.set_write_timeout and its neighbours.
        self.write_timeout = write_timeout or None
        self.idle_timeout = idle_timeout or None
        self.max_lifetime = max_lifetime or None
        #: The most a write buffer may hold (None: no limit); a write() that
        #: would pass it aborts the connection.
        self.max_write_buffer = max_write_buffer

    def replace(self, **changes: Any) -> "TransportSettings":
        """A copy with ``changes`` applied."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return TransportSettings(**values)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"TransportSettings({fields})"


#: What a transport uses when given no settings.
DEFAULT_SETTINGS = TransportSettings()


def transport_settings(*, write_timeout: Optional[float] = None,
                       idle_timeout: Optional[float] = None,
                       max_lifetime: Optional[float] = None,
                       max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER
                       ) -> TransportSettings:
    """The settings for the keywords every listen and connect call takes,
    shared: ``DEFAULT_SETTINGS`` when none is given."""
    if not (write_timeout or idle_timeout or max_lifetime) \
            and max_write_buffer == DEFAULT_MAX_WRITE_BUFFER:
        return DEFAULT_SETTINGS
    return TransportSettings(write_timeout=write_timeout, idle_timeout=idle_timeout,
                             max_lifetime=max_lifetime, max_write_buffer=max_write_buffer)

#: Seconds a connection closed by a deadline may take to flush what it had
#: written, if it has no write timeout of its own: enough for a goodbye to
#: reach a slow reader, short enough that a peer that stopped reading
#: cannot keep the connection long past its deadline.
FLUSH_AFTER_DEADLINE = 10.0


def peercred(sock: socket.socket) -> Optional[Tuple[int, int, int]]:
    """The ``(pid, uid, gid)`` of a Unix socket's peer, as the kernel saw
    it at connect; ``None`` for other sockets or where the system cannot
    say (``SO_PEERCRED`` is Linux's)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None or sock.family != getattr(socket, "AF_UNIX", None):
        return None
    pid, uid, gid = struct.unpack("iII", sock.getsockopt(socket.SOL_SOCKET, option,
                                                         struct.calcsize("iII")))
    return pid, uid, gid


def connect_accepted_socket(reactor: "Reactor", protocol_factory: Callable[[], "Protocol"],
                            sock: socket.socket, *, write_timeout: Optional[float] = None,
                            idle_timeout: Optional[float] = None,
                            max_lifetime: Optional[float] = None,
                            max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER,
                            group: Optional["TransportGroup"] = None) -> "StreamTransport":
    """Wrap an already-connected stream socket (TCP or Unix: accepted
    elsewhere, inherited, from ``socketpair()``...) in a transport and start
    it: ``protocol_factory()`` gets ``connection_made`` before this returns.
    The transport owns the socket from now on.  The deadline keywords are
    ``listen_tcp``'s.  (asyncio's ``connect_accepted_socket``.)"""
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"need a stream socket, not {sock!r}")
    sock.setblocking(False)
    settings = transport_settings(write_timeout=write_timeout, idle_timeout=idle_timeout,
                                  max_lifetime=max_lifetime, max_write_buffer=max_write_buffer)
    transport = StreamTransport(reactor, sock, protocol_factory(), settings=settings,
                                group=group)
    transport.start("adopted")
    return transport


class _Stall:
    """Kept while output is buffered and must make progress in time: a
    write timeout is set, or a deadline is closing the connection."""

    __slots__ = ("timer", "progress", "timeout", "reason")

    def __init__(self, progress: float, timeout: float) -> None:
        #: The pending stall check, or ``None``.
        self.timer: Optional[TimerHandle] = None
        #: When ``send()`` last took bytes (or buffering began).
        self.progress = progress
        #: Seconds without progress allowed.
        self.timeout = timeout
        #: Why the connection is closing once flushed (a deadline, say).
        self.reason: Optional[BaseException] = None


class StreamTransport(Transport):
    """A connected stream socket as a ``Transport``.

    ``sock`` must be connected and non-blocking; the transport owns it from
    now on and closes it after ``connection_lost``.  Nothing happens until
    ``start()``.  ``settings`` (shared, see ``TransportSettings``) default to
    ``DEFAULT_SETTINGS``.  From ``start()`` until ``connection_lost`` it is a
    member of ``group``, by default its reactor's own group, which
    ``Reactor.shutdown`` and ``Reactor.close`` reach.  Listeners and
    connectors make these for you; make one yourself to serve a socket you
    got elsewhere.  One garbage-collected while open warns
    (``ResourceWarning``) and closes its socket.
    """

    #: Bytes asked of ``recv()`` per readiness event.
    max_read_size = 65536
    #: Default high-water mark for ``set_write_buffer_limits()``.
    default_high_water = DEFAULT_SETTINGS.high_water

    __slots__ = ("_reactor", "_sock", "_protocol", "_buffer", "_flags", "_settings",
                 "_group", "_stall", "_last_read", "__weakref__")

    def __init__(self, reactor: "Reactor", sock: socket.socket, protocol: "Protocol", *,
                 settings: Optional[TransportSettings] = None,
                 group: Optional["TransportGroup"] = None) -> None:
        self._reactor = reactor
        self._sock = sock
        self._protocol: Optional[Protocol] = protocol
        self._buffer = _NO_BUFFER
        self._flags = 0  # TransportState bits
        self._settings = settings or DEFAULT_SETTINGS
        self._group = group if group is not None else _ReactorState.of(reactor).default
        self._stall: Optional[_Stall] = None
        #: When bytes last arrived (the step's time: no clock read per chunk).
        self._last_read = reactor.step_time

    def start(self, cause: str = "connected") -> Optional[Exception]:
        """Begin reading and call the protocol's ``connection_made``.  Returns
        the exception ``connection_made`` raised (it has been reported and
        the connection is being aborted), or ``None``."""
        reactor = self._reactor
        reactor.counters.connections_opened += 1
        if reactor.tracer is not None:
            self._trace_state("open", cause, old="new")
        self._group.add(self)
        self._update_interest()
        self._last_read = now = reactor.time()
        settings = self._settings
        if settings.idle_timeout or settings.max_lifetime:
            state = self._group.state()
            if settings.idle_timeout:
                state.idle_queue(settings.idle_timeout).touch(self, now)
            if settings.max_lifetime:
                state.lifetime_queue(settings.max_lifetime).touch(self, now)
        failures: List[Exception] = []
        protocol = self._protocol
        callback = (getattr(protocol, "connection_made", None)
                    or _missing_callback(protocol, "connection_made"))
        reactor.call_user(callback, self, on_error=failures.append, protocol=protocol,
                          transport=self)
        if failures:
            self._force_close(failures[0])
            return failures[0]
        return None

    @property
    def state(self) -> TransportState:
        """The state bits, by name (for debugging and tests)."""
        return TransportState(self._flags)

    # -- interest -------------------------------------------------------------

    def _wanted_mask(self) -> int:
        mask = EVENT_WRITE if self._buffer else 0
        if not self._flags & (_CLOSING | _READING_PAUSED | _EOF_RECEIVED):
            mask |= EVENT_READ
        return mask

    def _update_interest(self) -> None:
        flags = self._flags
        reactor = self._reactor
        if flags & _LOST:
            if flags & _REGISTERED:
                reactor.remove_handler(self._sock)
                self._flags = flags & _STATE_BITS
            return
        mask = self._wanted_mask()
        if not flags & _REGISTERED:
            reactor.add_handler(self._sock, mask, self)
        elif mask != (flags >> _WATCHING_SHIFT) & 3:
            reactor.update_handler(self._sock, mask, self)
        else:
            return
        self._flags = (flags & _STATE_BITS) | (mask << _WATCHING_SHIFT) | _REGISTERED

    # -- events from the loop ---------------------------------------------------

    def handle_io(self, mask: int) -> None:
        """Called by the reactor when the socket is ready (``IOHandler``)."""
        # Interest is checked from our state, not only the mask (IOHandler's
        # rule).  The read path is written out here rather than in methods
        # of its own, and calls data_received without call_user(): it runs
        # once per chunk received (benchmarks/instructions.py).
        if mask & EVENT_READ and self._flags & _WATCHING_READ:
            try:
                data = self._sock.recv(self.max_read_size)
            except _TRY_AGAIN:
                data = None
            except OSError as exc:
                self._fatal(exc)
                return
            if data:
                reactor = self._reactor
                self._last_read = reactor.step_time
                reactor.counters.bytes_in += len(data)
                if reactor.tracer is not None:
                    reactor.tracer.record("read", reactor.tracer.id_of(self),
                                          f"{len(data)} bytes")
                protocol = self._protocol
                try:
                    protocol.data_received(data)  # type: ignore[union-attr]
                except Exception as exc:
                    reactor.report_error(exc, getattr(protocol, "data_received", None)
                                         or _missing_callback(protocol, "data_received"),
                                         protocol=protocol, transport=self)
                    self._force_close(exc)
            elif data is not None:
                self._read_eof()
        if mask & EVENT_WRITE and self._flags & _WATCHING_WRITE:
            self._write_ready()

    def _read_eof(self) -> None:
        if self._reactor.tracer is not None:
            self._trace_state("half-closed", "peer sent EOF")
        self._flags |= _EOF_RECEIVED
        self._update_interest()
        if not self._call_protocol("eof_received"):
            self.close()  # a no-op if eof_received raised: that aborted us

    def _write_ready(self) -> None:
        buffer = self._buffer
        try:
            sent = self._sock.send(buffer)
        except _TRY_AGAIN:
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del buffer[:sent]
        self._reactor.counters.bytes_out += sent
        if self._reactor.tracer is not None:
            self._note_sent(sent)
        if sent and self._stall is not None:
            self._stall.progress = self._reactor.time()
        if buffer:
            if self._flags & _WRITING_PAUSED and len(buffer) <= self._settings.low_water:
                self._resume_protocol()
            return
        self._buffer = _NO_BUFFER  # drained: let its memory go
        self._update_interest()
        if self._flags & _WRITING_PAUSED:
            self._resume_protocol()
            if self._buffer:
                # resume_writing() wrote more than the kernel took (and may
                # have called close() or write_eof()): finish that first.
                return
        if self._flags & _CLOSING:
            self._schedule_lost(self._stall.reason if self._stall is not None else None)
        elif self._flags & _EOF_REQUESTED:
            self._shutdown_write()

    # -- the Transport interface ------------------------------------------------

    def write(self, data: Buffer) -> None:
        """Send ``data``: as much as the kernel takes now, the rest buffered
        and sent as the socket becomes writable.  A no-op once the transport
        is closing; ``RuntimeError`` after ``write_eof()``."""
        # The hot path: one type test and one flag test before send()
        # (benchmarks/instructions.py).
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
            if isinstance(data, memoryview) and data.itemsize != 1:
                data = data.cast("B")  # lengths and slices in bytes
        if self._flags & _NO_WRITES or not data:
            if self._flags & _CLOSING or not data:
                return
            raise RuntimeError("write() after write_eof()")
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except _TRY_AGAIN:
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            reactor = self._reactor
            reactor.counters.bytes_out += sent
            if reactor.tracer is not None:
                self._note_sent(sent)
            if sent == len(data):
                return
            limit = self._settings.max_write_buffer
            if limit is not None and len(data) - sent > limit:
                self._overflow(len(data) - sent, limit)
                return
            self._buffer = bytearray(memoryview(data)[sent:])
            self._update_interest()
            if self._settings.write_timeout is not None:
                self._watch_for_stall(self._settings.write_timeout)
        else:
            limit = self._settings.max_write_buffer
            if limit is not None and len(self._buffer) + len(data) > limit:
                self._overflow(len(self._buffer) + len(data), limit)
                return
            self._buffer += data
        if not self._flags & _WRITING_PAUSED and len(self._buffer) > self._settings.high_water:
            self._flags |= _WRITING_PAUSED
            self._call_protocol("pause_writing")

    def write_eof(self) -> None:
        """Half-close: send FIN once the buffer has drained.  Reading goes on.
        Calling it again, or after ``close()``, does nothing."""
        if self._flags & (_CLOSING | _EOF_REQUESTED):
            return
        self._flags |= _EOF_REQUESTED
        if not self._buffer:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Stop reading, flush the write buffer, then close.
        ``connection_lost(reason)`` follows (with a reason, a flush that
        stalls is aborted after ``FLUSH_AFTER_DEADLINE`` or the write
        timeout).  Idempotent."""
        self._close_with(reason)

    def abort(self) -> None:
        """Close now, dropping anything still buffered.
        ``connection_lost(None)`` follows.  Idempotent."""
        self._force_close(None)

    def is_closing(self) -> bool:
        """True once ``close()``/``abort()`` was called or the connection
        failed."""
        return bool(self._flags & _CLOSING)

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``; the
        kernel's buffer then fills and TCP slows the peer down."""
        if not self._flags & _READING_PAUSED:
            self._flags |= _READING_PAUSED
            self._update_interest()

    def resume_reading(self) -> None:
        """Undo ``pause_reading()``; the idle deadline counts from here."""
        if self._flags & _READING_PAUSED:
            self._flags &= ~_READING_PAUSED
            self._last_read = self._reactor.time()
            self._update_interest()

    def is_reading(self) -> bool:
        return bool(self._flags & _WATCHING_READ)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        """``(low, high)``."""
        return self._settings.low_water, self._settings.high_water

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        """Set the high- and low-water marks.  With only ``high``, ``low`` is
        a quarter of it; with only ``low``, ``high`` is four times it."""
        if high is None:
            high = self.default_high_water if low is None else 4 * low
        if low is None:
            low = high // 4
        self._settings = self._settings.replace(low_water=low, high_water=high)
        if not self._flags & _WRITING_PAUSED and len(self._buffer) > high:
            self._flags |= _WRITING_PAUSED
            self._call_protocol("pause_writing")
        elif self._flags & _WRITING_PAUSED and len(self._buffer) <= low:
            self._resume_protocol()

    def set_max_write_buffer(self, size: Optional[int]) -> None:
        """The most the write buffer may hold, in bytes (``None``: no
        limit; the default is ``DEFAULT_MAX_WRITE_BUFFER``).  A ``write()``
        that would pass it aborts the connection with ``WriteBufferFull``:
        a protocol that ignores ``pause_writing`` cannot exhaust memory."""
        if size != self._settings.max_write_buffer:
            self._settings = self._settings.replace(max_write_buffer=size)

    def get_max_write_buffer(self) -> Optional[int]:
        return self._settings.max_write_buffer

    def set_write_timeout(self, seconds: Optional[float]) -> None:
        """Abort the connection when data has been waiting in the write
        buffer and the peer has taken none of it for ``seconds``: a peer
        that stops reading cannot pin memory forever.  The protocol hears of
        it in ``deadline_exceeded``, and ``connection_lost`` receives a
        ``DeadlineExceeded`` of kind ``"write"``.  ``None`` or 0: never."""
        self._settings = self._settings.replace(write_timeout=seconds)
        stall = self._stall
        if self._settings.write_timeout is None:
            if stall is not None and stall.reason is None and stall.timer is not None:
                stall.timer.cancel()
                self._stall = None
        elif self._buffer:
            self._watch_for_stall(self._settings.write_timeout)

    def get_write_timeout(self) -> Optional[float]:
        return self._settings.write_timeout

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Close the connection when nothing has been received for
        ``seconds`` (counted from the last bytes that arrived); the protocol
        hears of it in ``deadline_exceeded``, and ``connection_lost``
        receives a ``DeadlineExceeded`` of kind ``"idle"``.  ``None`` or 0:
        never.  No timer is touched per read: see ``reactor.deadlines``."""
        self._change_deadline("idle_timeout", seconds)

    def get_idle_timeout(self) -> Optional[float]:
        return self._settings.idle_timeout

    def set_max_lifetime(self, seconds: Optional[float]) -> None:
        """Close the connection ``seconds`` after it was opened, busy or not
        (counted from now if it had no lifetime before); as for
        ``set_idle_timeout``, with kind ``"lifetime"``.  ``None`` or 0:
        never."""
        self._change_deadline("max_lifetime", seconds)

    def get_max_lifetime(self) -> Optional[float]:
        return self._settings.max_lifetime

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"peername"``, ``"sockname"``, ``"socket"``, ``"reactor"`` (the
        one this transport runs on), or ``"peercred"`` (a Unix socket's peer
        as ``(pid, uid, gid)``, on Linux); ``default`` for anything else, or
        once the socket is closed.  Asked of the socket each time (nothing
        is cached per connection), so keep what you need from
        ``connection_made``."""
        try:
            if name == "peername":
                return self._sock.getpeername()
            if name == "sockname":
                return self._sock.getsockname()
            if name == "peercred":
                return peercred(self._sock) or default
        except OSError:
            return default
        if name == "reactor":
            return self._reactor
        return self._sock if name == "socket" else default

    def get_protocol(self) -> Optional["Protocol"]:
        """The protocol, or ``None`` once ``connection_lost`` has been called."""
        return self._protocol

    def set_protocol(self, protocol: "Protocol") -> None:
        """Hand the connection to ``protocol``: every later callback goes
        to it (``connection_made`` is not called again).  ``start_tls``
        puts its TLS layer here this way.  ``RuntimeError`` once
        ``connection_lost`` has been called."""
        if self._protocol is None:
            raise RuntimeError("set_protocol(): the connection is already lost")
        self._protocol = protocol

    def request_shutdown(self) -> None:
        """Ask the protocol to finish, for a graceful shutdown: unless its
        ``shutdown_requested()`` returns true, close (after flushing).  Does
        nothing once the transport is closing."""
        if not self._flags & _CLOSING and not self._call_protocol("shutdown_requested"):
            self.close()

    def __repr__(self) -> str:
        flags = self._flags
        state = "closed" if flags & _LOST else "closing" if flags & _CLOSING else "open"
        try:
            fd = self._sock.fileno()
        except OSError:  # pragma: no cover
            fd = -1
        return f"<{type(self).__name__} fd={fd} {state} buffered={len(self._buffer)}>"

    # -- internals --------------------------------------------------------------

    def _call_protocol(self, name: str, *args: Any) -> Any:
        """Call the protocol's callback ``name`` through ``call_user``: an
        exception is reported with this connection as context and aborts
        it (``connection_lost`` receives the exception).  A protocol that
        lacks the callback (not a ``Protocol`` subclass) fails the same way,
        with ``AttributeError``."""
        return self._reactor.call_user(getattr(self._protocol, name, None)
                                       or _missing_callback(self._protocol, name), *args,
                                       on_error=self._force_close,
                                       protocol=self._protocol, transport=self)

    def _overflow(self, size: int, limit: int) -> None:
        exc = WriteBufferFull.past(size, limit)
        self._reactor.call_exception_handler({
            "message": "write buffer limit exceeded; connection aborted",
            "exception": exc,
            "protocol": self._protocol,
            "transport": self,
        })
        self._force_close(exc)

    def _close_with(self, reason: Optional[BaseException]) -> None:
        """``close()``, with ``reason`` for ``connection_lost``; a flush
        that then stalls is aborted (``FLUSH_AFTER_DEADLINE``)."""
        if self._flags & _CLOSING:
            return
        if self._reactor.tracer is not None:
            self._trace_state("closing", f"{reason}; flushing first" if reason
                              else "close() called; flushing first")
        self._flags |= _CLOSING
        self._update_interest()
        if not self._buffer:
            self._schedule_lost(reason)
        elif reason is not None:
            self._watch_for_stall(self._settings.write_timeout or FLUSH_AFTER_DEADLINE, reason)

    # -- deadlines ------------------------------------------------------------------

    def _deadline_passed(self, kind: str, timeout: float) -> None:
        """One of our deadlines passed: the protocol may keep the connection
        (that deadline starts over); otherwise it closes with the reason."""
        if self._flags & _CLOSING:
            return
        message = self._stall_message(timeout) if kind == "write" \
            else deadline_message(kind, timeout)
        exc = DeadlineExceeded(kind, timeout, message)
        if self._reactor.tracer is not None:
            tracer = self._reactor.tracer
            tracer.record("timeout", tracer.id_of(self), message)
        keep = self._call_protocol("deadline_exceeded", exc)
        if self._flags & _CLOSING:
            return  # the protocol closed or aborted (or raised)
        if keep:
            # Starts over with the setting as it is now: the hook may have
            # changed it (and so put us in that timeout's queue already).
            now = self._reactor.time()
            settings = self._settings
            if kind == "write":
                if settings.write_timeout and self._buffer:
                    self._watch_for_stall(settings.write_timeout)
            elif kind == "idle":
                self._last_read = now
                if settings.idle_timeout:
                    self._group.state().idle_queue(settings.idle_timeout).touch(self, now)
            elif settings.max_lifetime:
                self._group.state().lifetime_queue(settings.max_lifetime).touch(self, now)
        elif kind == "write":
            self._force_close(exc)  # flushing is what cannot happen
        else:
            self._close_with(exc)

    def _stall_message(self, timeout: float) -> str:
        return deadline_message("write", timeout, len(self._buffer))

    def _on_idle_due(self, now: float) -> None:
        """The idle queue's call: the real last read decides.  While the
        protocol has paused reading, nothing is read but the peer is not
        idle: look again a whole timeout later."""
        timeout = self._settings.idle_timeout
        if self._flags & _CLOSING or timeout is None:
            return
        if self._flags & _READING_PAUSED:
            self._group.state().idle_queue(timeout).touch(self, now)
        elif self._last_read + timeout <= now:
            self._deadline_passed("idle", timeout)
        else:  # bytes came since we were queued: queue again from them
            self._group.state().idle_queue(timeout).touch(self, self._last_read)

    def _on_lifetime_due(self, now: float) -> None:
        timeout = self._settings.max_lifetime
        if not self._flags & _CLOSING and timeout is not None:
            self._deadline_passed("lifetime", timeout)

    def _change_deadline(self, name: str, seconds: Optional[float]) -> None:
        old = getattr(self._settings, name)
        if (seconds or None) == old:
            return  # no copy of shared settings for nothing
        self._settings = self._settings.replace(**{name: seconds})
        seconds = getattr(self._settings, name)
        if not self._flags & _REGISTERED:
            return  # not started (it joins the queues then), or gone
        state = self._group.state()
        if name == "idle_timeout":
            if old:
                state.idle_queue(old).discard(self)
            if seconds:
                state.idle_queue(seconds).touch(self, self._last_read)
            return
        opened = self._reactor.time()
        if old:
            queue = state.lifetime_queue(old)
            deadline = queue.deadline_of(self)
            if deadline is not None:
                opened = deadline - old
            queue.discard(self)
        if seconds:
            state.lifetime_queue(seconds).touch(self, opened)

    def _watch_for_stall(self, timeout: float,
                         reason: Optional[BaseException] = None) -> None:
        # Lazy: one timer per stall period, none per write.  A timer left
        # over from an earlier stall fires early, finds progress, re-arms.
        now = self._reactor.time()
        stall = self._stall
        if stall is None:
            stall = self._stall = _Stall(now, timeout)
        stall.progress = now
        stall.timeout = timeout
        if reason is not None:
            stall.reason = reason
        if stall.timer is not None and stall.timer.when > now + timeout:
            stall.timer.cancel()  # a shorter limit now applies
            stall.timer = None
        if stall.timer is None:
            stall.timer = self._reactor.call_at(now + timeout, self._check_stall)

    def _check_stall(self) -> None:
        stall = self._stall
        if stall is None:  # pragma: no cover  (cancelled with the connection)
            return
        stall.timer = None
        if self._flags & _LOST or not self._buffer:
            self._stall = None
            return
        deadline = stall.progress + stall.timeout
        if self._reactor.time() < deadline:
            stall.timer = self._reactor.call_at(deadline, self._check_stall)
        elif stall.reason is not None:
            self._force_close(stall.reason)  # closing for a deadline, and the flush stalled
        elif self._flags & _CLOSING:  # close() is flushing, and the flush stalled
            self._force_close(DeadlineExceeded(
                "write", stall.timeout, self._stall_message(stall.timeout)))
        else:
            self._deadline_passed("write", stall.timeout)

    def _note_sent(self, sent: int) -> None:
        """Trace a send (the caller has counted it)."""
        tracer = self._reactor.tracer
        if tracer is not None and sent:
            tracer.record("write", tracer.id_of(self), f"{sent} bytes")

    def _state_name(self) -> str:
        """The state as a word, for traces (derived from the flags)."""
        flags = self._flags
        if flags & _LOST:
            return "closed"
        if flags & _CLOSING:
            return "closing"
        if flags & _EOF_RECEIVED:
            return "half-closed"
        return "write-shut" if flags & _EOF_REQUESTED else "open"

    def _trace_state(self, new: str, cause: str, old: Optional[str] = None) -> None:
        """Record a state change (callers check that tracing is on)."""
        tracer = self._reactor.tracer
        assert tracer is not None
        tracer.record("state", tracer.id_of(self),
                      f"{old or self._state_name()} -> {new}: {cause}")

    def _shutdown_write(self) -> None:
        if self._reactor.tracer is not None:
            self._trace_state("write-shut", "write_eof(): FIN sent",
                              old="half-closed" if self._flags & _EOF_RECEIVED else "open")
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal(exc)

    def _resume_protocol(self) -> None:
        self._flags &= ~_WRITING_PAUSED
        self._call_protocol("resume_writing")

    def _fatal(self, exc: OSError) -> None:
        """The socket failed.  Peer resets are routine and only reach
        ``connection_lost``; anything else is reported too."""
        if not isinstance(exc, ROUTINE_ERRORS) and exc.errno not in _ROUTINE_ERRNOS:
            self._reactor.call_exception_handler({
                "message": "socket error on transport",
                "exception": exc,
                "protocol": self._protocol,
                "transport": self,
            })
        self._force_close(exc)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._flags & _LOST:
            return
        if self._reactor.tracer is not None:
            self._trace_state("closing", f"aborted ({exc!r})" if exc else "abort() called")
        # Nothing is buffered any more, so the protocol must never be told
        # to resume writing.
        self._flags = (self._flags | _CLOSING) & ~_WRITING_PAUSED
        self._buffer = _NO_BUFFER
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: Optional[BaseException]) -> None:
        if self._flags & _LOST:
            return
        self._flags |= _LOST
        self._update_interest()  # unregisters: no further events for us
        settings = self._settings
        if settings.idle_timeout or settings.max_lifetime:
            state = self._group.state()
            if settings.idle_timeout:
                state.idle_queue(settings.idle_timeout).discard(self)
            if settings.max_lifetime:
                state.lifetime_queue(settings.max_lifetime).discard(self)
        if self._stall is not None:
            if self._stall.timer is not None:
                self._stall.timer.cancel()
            self._stall = None
        self._reactor.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        reactor = self._reactor
        if self._protocol is not None:
            protocol = self._protocol
            callback = (getattr(protocol, "connection_lost", None)
                        or _missing_callback(protocol, "connection_lost"))
            self._protocol = None
            reactor.call_user(callback, exc, protocol=protocol, transport=self)
        self._sock.close()
        reactor.counters.connections_closed += 1
        if reactor.tracer is not None:
            self._trace_state("closed", "connection_lost called", old="closing")
        self._group.discard(self)

    def __del__(self) -> None:
        # Only a transport nothing refers to any more gets here: never
        # started, or dropped with its whole reactor.  Its socket must not
        # stay open until the interpreter exits.
        sock = getattr(self, "_sock", None)  # None if __init__ itself failed
        if sock is not None and not self._flags & _LOST and sock.fileno() >= 0:
            try:
                warnings.warn(f"unclosed transport {self!r}", ResourceWarning, stacklevel=2,
                              source=self)
            finally:
                sock.close()


class TransportGroup:
    """Open transports that take part in a graceful shutdown together.

    A listener keeps one for the connections it accepted (its
    ``connections``); every other transport joins its reactor's own group.
    Members join at ``start()`` and leave after ``connection_lost``.
    ``on_leave(transport)``, if given, is called as each one leaves.
    """

    def __init__(self, reactor: "Reactor",
                 on_leave: Optional[Callable[["StreamTransport"], Any]] = None) -> None:
        self._reactor = reactor
        self._members: Set[StreamTransport] = set()
        self._on_leave = on_leave
        self._state: Optional[_ReactorState] = None
        self._shutdown_timer: Optional[TimerHandle] = None
        self._on_done: List[Callable[[], Any]] = []

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator["StreamTransport"]:
        return iter(list(self._members))

    def add(self, transport: "StreamTransport") -> None:
        if not self._members:
            self.state().live.add(self)
        self._members.add(transport)

    def discard(self, transport: "StreamTransport") -> None:
        self._members.discard(transport)
        if not self._members:
            self.state().live.discard(self)
        if self._on_leave is not None:
            self._reactor.call_user(self._on_leave, transport, transport=transport)
        if self._shutdown_timer is not None:
            self._check_shutdown_done()

    def shutdown(self, grace: float = 5.0, on_done: Optional[Callable[[], Any]] = None) -> None:
        """Ask each member to finish (``StreamTransport.request_shutdown``),
        abort whatever is still open ``grace`` seconds later, and call
        ``on_done()`` once none is left.  A second call adds its
        ``on_done`` and keeps the first deadline."""
        if on_done is not None:
            self._on_done.append(on_done)
        if self._shutdown_timer is None:
            self._shutdown_timer = self._reactor.call_later(grace, self.abort)
            for transport in self:
                transport.request_shutdown()
        self._check_shutdown_done()

    def abort(self) -> None:
        """Abort every member now."""
        for transport in self:
            transport.abort()

    def state(self) -> "_ReactorState":
        """What the stream layer keeps for this group's reactor."""
        if self._state is None:
            self._state = _ReactorState.of(self._reactor)
        return self._state

    def _check_shutdown_done(self) -> None:
        if self._members or self._shutdown_timer is None:
            return
        self._shutdown_timer.cancel()
        self._shutdown_timer = None  # done: a later shutdown starts afresh
        callbacks, self._on_done = self._on_done, []
        for fn in callbacks:
            self._reactor.call_user(fn)


class _ReactorState:
    """What the stream layer keeps per reactor: its own transport group,
    the groups that have members (behind one shutdown hook and one close
    hook), and the deadline queues, one per kind and timeout value."""

    __slots__ = ("reactor", "default", "live", "_queues")

    @staticmethod
    def of(reactor: "Reactor") -> "_ReactorState":
        return reactor.shared(_ReactorState, lambda: _ReactorState(reactor))

    def __init__(self, reactor: "Reactor") -> None:
        self.reactor = reactor
        self.live: Set[TransportGroup] = set()
        self.default = TransportGroup(reactor)
        self.default._state = self
        self._queues: Dict[Tuple[str, float], DeadlineQueue] = {}
        reactor.add_shutdown_hook(self.shutdown)
        reactor.add_close_hook(self.close)

    def idle_queue(self, timeout: float) -> DeadlineQueue:
        """The queue of transports with this idle timeout, by last read."""
        return self._queue("idle", timeout, StreamTransport._on_idle_due)

    def lifetime_queue(self, timeout: float) -> DeadlineQueue:
        """The queue of transports with this lifetime, by opening time."""
        return self._queue("lifetime", timeout, StreamTransport._on_lifetime_due)

    def _queue(self, kind: str, timeout: float,
               on_due: Callable[[Any, float], Any]) -> DeadlineQueue:
        queue = self._queues.get((kind, timeout))
        if queue is None:
            queue = self._queues[kind, timeout] = DeadlineQueue(self.reactor, on_due,
                                                                 offset=timeout)
        return queue

    def shutdown(self, grace: float, done: Callable[[], Any]) -> None:
        groups = list(self.live)
        remaining = [len(groups)]

        def group_done() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                done()

        if not groups:
            done()
        for group in groups:
            group.shutdown(grace, group_done)

    def close(self) -> None:
        # Those already closing were closed by their owners: no warning for
        # them, but they are aborted too (their flush would never finish).
        open_count = sum(not t.is_closing() for group in self.live for t in group)
        for group in list(self.live):
            group.abort()  # their connection_lost calls run during close()
        if not open_count:
            return
        warnings.warn(f"the reactor was closed with {open_count} transport(s) still open; "
                      f"they were aborted", ResourceWarning, stacklevel=2, source=self.reactor)


def _missing_callback(protocol: Any, name: str) -> Callable[[], None]:
    """Stands in for a callback a duck-typed protocol does not have: calling
    it raises the ``AttributeError``, so the error takes the usual path."""
    def missing() -> None:
        raise AttributeError(f"{type(protocol).__name__} has no {name}(): "
                             f"subclass reactor.Protocol for the defaults")
    missing.__qualname__ = f"{type(protocol).__name__}.{name}"
    return missing
