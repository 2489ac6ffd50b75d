"""A stream transport over one connected, non-blocking TCP socket.

Theory of operation
-------------------
Interest follows state.  ``_wanted_mask()`` derives what the selector should
watch from the transport's flags: readable while reading is wanted (not
paused, no EOF yet, not closing), writable only while the write buffer holds
something.  ``_update_interest()`` touches the selector only when that mask
changes, registering on the first non-zero mask and unregistering at zero.

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
"""

from __future__ import annotations

import errno
import selectors
import socket
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Tuple, Union

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol

__all__ = ["Transport", "ROUTINE_ERRORS", "DEFAULT_TRANSPORT_CONFIG"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

#: Errors a peer can cause at any time.  They close the connection and reach
#: ``connection_lost`` but are not reported as failures.
ROUTINE_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                  TimeoutError)

_TRY_AGAIN = (BlockingIOError, InterruptedError)

#: "Nothing buffered": shared by every idle transport and never mutated (a
#: transport makes its own bytearray when it first has to buffer).
_NO_BUFFER = bytearray()

# A transport's state is one int of these bits rather than six attributes:
# servers keep one transport per connection, and every slot costs memory.
_CLOSING = 1          # close(), abort() or an error happened: no more writes
_LOST = 2             # connection_lost is scheduled or done
_EOF_REQUESTED = 4    # write_eof() was called
_EOF_RECEIVED = 8     # the peer sent FIN
_READING_PAUSED = 16  # pause_reading() is in force
_WRITING_PAUSED = 32  # the protocol was told pause_writing()

_STATE_BITS = 63
_NO_WRITES = _CLOSING | _EOF_REQUESTED  # write() must not send
# Above them, what the selector is watching (EVENT_READ | EVENT_WRITE).
_MASK_SHIFT = 6
_WATCHING_READ = EVENT_READ << _MASK_SHIFT
_WATCHING_WRITE = EVENT_WRITE << _MASK_SHIFT

#: (low water, high water, write timeout): asyncio's limits, no timeout.
Config = Tuple[int, int, Optional[float]]
DEFAULT_TRANSPORT_CONFIG: Config = (16384, 65536, None)

Buffer = Union[bytes, bytearray, memoryview]


class Transport:
    """A connected TCP stream.  Created by listeners and connectors; user
    code receives it in ``Protocol.connection_made``."""

    #: Bytes asked of ``recv()`` per readiness event.
    max_read_size = 65536
    #: Default high-water mark for ``set_write_buffer_limits()``.
    default_high_water = DEFAULT_TRANSPORT_CONFIG[1]

    # Slots, and no buffer object until something is buffered: a server holds
    # one transport per connection, most of them idle.
    __slots__ = ("_reactor", "_sock", "_protocol", "_buffer", "_flags", "_config",
                 "_owner", "_stall", "__weakref__")

    def __init__(self, reactor: "Reactor", sock: socket.socket,
                 protocol: "Protocol", owner: Any = None,
                 config: Optional[Config] = None) -> None:
        self._reactor = reactor
        self._sock = sock
        self._protocol: Optional[Protocol] = protocol
        self._buffer = _NO_BUFFER
        self._flags = 0              # the _CLOSING, _LOST, ... bits below
        # (low water, high water, write timeout): shared by every transport of
        # a listener until one of them changes it.
        self._config = config or DEFAULT_TRANSPORT_CONFIG
        self._owner = owner          # a Listener, told when we are gone
        reactor._stats.connections_opened += 1
        # While buffering with a write timeout: [stall timer or None, when send()
        # last took bytes].  None otherwise.
        self._stall: Optional[List[Any]] = None

    def _start(self, cause: str = "connected") -> Optional[Exception]:
        """Begin reading and tell the protocol.  Called by the creator.
        Returns what ``connection_made`` raised (already reported, and the
        connection aborted), or ``None``."""
        if self._reactor.tracer is not None:
            self._trace_state("open", cause, old="new")
        self._update_interest()
        try:
            self._protocol.connection_made(self)  # type: ignore[union-attr]
        except Exception as exc:
            self._user_error(exc, "connection_made")
            return exc
        return None

    # -- interest -------------------------------------------------------------

    def _wanted_mask(self) -> int:
        flags = self._flags
        if flags & _LOST:
            return 0
        mask = EVENT_WRITE if self._buffer else 0
        if not flags & (_CLOSING | _READING_PAUSED | _EOF_RECEIVED):
            mask |= EVENT_READ
        return mask

    def _update_interest(self) -> None:
        mask = self._wanted_mask()
        current = self._flags >> _MASK_SHIFT
        if mask == current:
            return
        reactor = self._reactor
        if current == 0:
            reactor._register(self._sock, mask, self)
        elif mask == 0:
            reactor._unregister(self._sock)
        else:
            reactor._modify(self._sock, mask, self)
        self._flags = (self._flags & _STATE_BITS) | (mask << _MASK_SHIFT)

    # -- events from the loop ---------------------------------------------------

    def _handle_io(self, mask: int) -> None:
        # Check our current interest, not only the event: this step's event
        # list can hold readiness we stopped caring about earlier in the step.
        # The read path is written out here rather than in a method of its
        # own: it runs once per chunk received.
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
                reactor._stats.bytes_in += len(data)
                if reactor.tracer is not None:
                    reactor.tracer.record("read", reactor.tracer.id_of(self),
                                          f"{len(data)} bytes")
                try:
                    self._protocol.data_received(data)  # type: ignore[union-attr]
                except Exception as exc:
                    self._user_error(exc, "data_received")
            elif data is not None:
                self._read_eof()
        if mask & EVENT_WRITE and self._flags & _WATCHING_WRITE:
            self._write_ready()

    def _read_eof(self) -> None:
        if self._reactor.tracer is not None:
            self._trace_state("half-closed", "peer sent EOF")
        self._flags |= _EOF_RECEIVED
        self._update_interest()
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[union-attr]
        except Exception as exc:
            self._user_error(exc, "eof_received")
            return
        if not keep_open:
            self.close()

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
        self._reactor._stats.bytes_out += sent
        if self._reactor.tracer is not None:
            self._note_sent(sent)
        if sent and self._stall is not None:
            self._stall[1] = self._reactor.time()
        if buffer:
            if self._flags & _WRITING_PAUSED and len(buffer) <= self._config[0]:
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
            self._schedule_lost(None)
        elif self._flags & _EOF_REQUESTED:
            self._shutdown_write()

    # -- the public interface -------------------------------------------------

    def write(self, data: Buffer) -> None:
        """Send ``data``: as much as the kernel takes now, the rest buffered
        and sent as the socket becomes writable.  A no-op once the transport
        is closing; ``RuntimeError`` after ``write_eof()``."""
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
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
            reactor._stats.bytes_out += sent
            if reactor.tracer is not None:
                self._note_sent(sent)
            if sent == len(data):
                return
            self._buffer = bytearray(memoryview(data)[sent:])
            self._update_interest()
            if self._config[2] is not None:
                self._watch_for_stall()
        else:
            self._buffer += data
        if not self._flags & _WRITING_PAUSED and len(self._buffer) > self._config[1]:
            self._flags |= _WRITING_PAUSED
            self._call_protocol("pause_writing")

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        """Write each chunk in turn (joined first: one system call)."""
        self.write(b"".join(chunks))

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

    def close(self) -> None:
        """Stop reading, flush the write buffer, then close.
        ``connection_lost(None)`` follows.  Idempotent."""
        if self._flags & _CLOSING:
            return
        if self._reactor.tracer is not None:
            self._trace_state("closing", "close() called; flushing first")
        self._flags |= _CLOSING
        self._update_interest()
        if not self._buffer:
            self._schedule_lost(None)

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
        if self._flags & _READING_PAUSED:
            self._flags &= ~_READING_PAUSED
            self._update_interest()

    def is_reading(self) -> bool:
        return bool(self._flags & _WATCHING_READ)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        """``(low, high)``."""
        return self._config[0], self._config[1]

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        """Set the high- and low-water marks.  With only ``high``, ``low`` is
        a quarter of it; with only ``low``, ``high`` is four times it."""
        if high is None:
            high = self.default_high_water if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"need high ({high!r}) >= low ({low!r}) >= 0")
        self._config = (low, high, self._config[2])
        if not self._flags & _WRITING_PAUSED and len(self._buffer) > high:
            self._flags |= _WRITING_PAUSED
            self._call_protocol("pause_writing")
        elif self._flags & _WRITING_PAUSED and len(self._buffer) <= low:
            self._resume_protocol()

    def set_write_timeout(self, seconds: Optional[float]) -> None:
        """Abort the connection with ``TimeoutError`` if data has been
        waiting in the write buffer and the peer has taken none of it for
        ``seconds``: a peer that stops reading cannot pin memory forever.
        ``None`` (the default) or 0 waits forever."""
        if seconds is not None and seconds < 0:
            raise ValueError(f"write timeout must be >= 0 or None, not {seconds!r}")
        self._config = (self._config[0], self._config[1], seconds or None)
        if seconds and self._buffer:
            self._watch_for_stall()

    def get_write_timeout(self) -> Optional[float]:
        return self._config[2]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"peername"``, ``"sockname"`` or ``"socket"``; ``default`` for
        anything else, or once the socket is closed.  Asked of the socket
        each time (nothing is cached per connection), so keep what you need
        from ``connection_made``."""
        try:
            if name == "peername":
                return self._sock.getpeername()
            if name == "sockname":
                return self._sock.getsockname()
        except OSError:
            return default
        return self._sock if name == "socket" else default

    def get_protocol(self) -> Optional["Protocol"]:
        return self._protocol

    def __repr__(self) -> str:
        flags = self._flags
        state = "closed" if flags & _LOST else "closing" if flags & _CLOSING else "open"
        try:
            fd = self._sock.fileno()
        except OSError:  # pragma: no cover
            fd = -1
        return f"<Transport fd={fd} {state} buffered={len(self._buffer)}>"

    # -- internals --------------------------------------------------------------

    def _watch_for_stall(self) -> None:
        # Lazy: one timer per stall period, none per write.  A timer left
        # over from an earlier stall fires early, finds progress, re-arms.
        timeout = self._config[2]
        assert timeout is not None
        now = self._reactor.time()
        if self._stall is None:
            self._stall = [None, now]
        self._stall[1] = now
        if self._stall[0] is None:
            self._stall[0] = self._reactor.call_at(now + timeout, self._check_stall)

    def _check_stall(self) -> None:
        stall = self._stall
        timeout = self._config[2]
        if stall is None:  # pragma: no cover  (cancelled with the connection)
            return
        stall[0] = None
        if self._flags & _LOST or not self._buffer or timeout is None:
            self._stall = None
            return
        deadline = stall[1] + timeout
        if self._reactor.time() >= deadline:
            self._fatal(TimeoutError(
                f"peer stopped reading: nothing sent for {timeout:g}s with "
                f"{len(self._buffer)} bytes waiting"))
        else:
            stall[0] = self._reactor.call_at(deadline, self._check_stall)

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

    def _call_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except Exception as exc:
            self._user_error(exc, name)

    def _user_error(self, exc: Exception, callback: str) -> None:
        """A protocol callback raised: report it, then abort this connection
        only.  ``connection_lost`` receives the exception."""
        self._reactor.call_exception_handler({
            "message": f"exception in {type(self._protocol).__name__}.{callback}()",
            "exception": exc,
            "callback": callback,
            "protocol": self._protocol,
            "transport": self,
        })
        self._force_close(exc)

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
        if self._stall is not None:
            if self._stall[0] is not None:
                self._stall[0].cancel()
            self._stall = None
        self._reactor.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        protocol, self._protocol = self._protocol, None
        try:
            if protocol is not None:
                protocol.connection_lost(exc)
        except Exception as error:
            self._reactor.call_exception_handler({
                "message": f"exception in {type(protocol).__name__}.connection_lost()",
                "exception": error,
                "callback": "connection_lost",
                "protocol": protocol,
                "transport": self,
            })
        finally:
            self._sock.close()
            self._reactor._stats.connections_closed += 1
            if self._reactor.tracer is not None:
                self._trace_state("closed", "connection_lost called", old="closing")
            owner, self._owner = self._owner, None
            if owner is not None:
                owner._connection_gone(self)


_ROUTINE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED",
                                      "ENOTCONN", "ESHUTDOWN", "EHOSTUNREACH", "ENETUNREACH")
    if hasattr(errno, name))
