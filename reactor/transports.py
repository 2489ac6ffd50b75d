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
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Tuple, Union

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["Transport", "ROUTINE_ERRORS"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

#: Errors a peer can cause at any time.  They close the connection and reach
#: ``connection_lost`` but are not reported as failures.
ROUTINE_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                  TimeoutError)

_TRY_AGAIN = (BlockingIOError, InterruptedError)

Buffer = Union[bytes, bytearray, memoryview]


class Transport:
    """A connected TCP stream.  Created by listeners and connectors; user
    code receives it in ``Protocol.connection_made``."""

    #: Bytes asked of ``recv()`` per readiness event.
    max_read_size = 65536
    #: Default write-buffer limits (asyncio's): pause above 64 KiB, resume at
    #: 16 KiB.
    default_high_water = 65536

    __slots__ = ("_reactor", "_sock", "_protocol", "_buffer", "_mask",
                 "_closing", "_lost", "_eof_requested", "_eof_received",
                 "_reading_paused", "_writing_paused", "_high", "_low",
                 "_extra", "_owner", "_write_timeout", "_stall_timer", "_last_progress",
                 "_id", "__weakref__")

    def __init__(self, reactor: "Reactor", sock: socket.socket,
                 protocol: "Protocol", owner: Any = None) -> None:
        self._reactor = reactor
        self._sock = sock
        self._protocol: Optional[Protocol] = protocol
        self._buffer = bytearray()
        self._mask = 0
        self._closing = False        # close(), abort() or an error happened
        self._lost = False           # connection_lost is scheduled or done
        self._eof_requested = False  # write_eof() was called
        self._eof_received = False
        self._reading_paused = False
        self._writing_paused = False
        self._high = self.default_high_water
        self._low = self.default_high_water // 4
        self._extra: Optional[Dict[str, Any]] = None
        self._owner = owner          # a Listener, told when we are gone
        self._id = reactor._new_connection_id()  # for traces and logs
        self._write_timeout: Optional[float] = None
        self._stall_timer: Optional[TimerHandle] = None
        self._last_progress = 0.0    # when send() last took bytes, while buffering

    def _start(self, cause: str = "connected") -> None:
        """Begin reading and tell the protocol.  Called by the creator."""
        self._trace_state("new", "open", cause)
        self._update_interest()
        try:
            self._protocol.connection_made(self)  # type: ignore[union-attr]
        except Exception as exc:
            self._user_error(exc, "connection_made")

    # -- interest -------------------------------------------------------------

    def _wanted_mask(self) -> int:
        if self._lost:
            return 0
        mask = EVENT_WRITE if self._buffer else 0
        if not (self._closing or self._reading_paused or self._eof_received):
            mask |= EVENT_READ
        return mask

    def _update_interest(self) -> None:
        mask = self._wanted_mask()
        if mask == self._mask:
            return
        reactor = self._reactor
        if self._mask == 0:
            reactor._register(self._sock, mask, self)
        elif mask == 0:
            reactor._unregister(self._sock)
        else:
            reactor._modify(self._sock, mask, self)
        self._mask = mask

    # -- events from the loop ---------------------------------------------------

    def _handle_io(self, mask: int) -> None:
        # Check our current interest, not only the event: this step's event
        # list can hold readiness we stopped caring about earlier in the step.
        if mask & EVENT_READ and self._mask & EVENT_READ:
            self._read_ready()
        if mask & EVENT_WRITE and self._mask & EVENT_WRITE:
            self._write_ready()

    def _read_ready(self) -> None:
        try:
            data = self._sock.recv(self.max_read_size)
        except _TRY_AGAIN:
            return
        except OSError as exc:
            self._fatal(exc)
            return
        if data:
            reactor = self._reactor
            reactor._stats.bytes_in += len(data)
            if reactor.tracer is not None:
                reactor.tracer.record("read", self._id, f"{len(data)} bytes")
            try:
                self._protocol.data_received(data)  # type: ignore[union-attr]
            except Exception as exc:
                self._user_error(exc, "data_received")
        else:
            self._read_eof()

    def _read_eof(self) -> None:
        self._trace_state("open", "half-closed", "peer sent EOF")
        self._eof_received = True
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
        self._note_sent(sent)
        if sent and self._write_timeout is not None:
            self._last_progress = self._reactor.time()
        if buffer:
            if self._writing_paused and len(buffer) <= self._low:
                self._resume_protocol()
            return
        self._update_interest()
        if self._writing_paused:
            self._resume_protocol()
            if self._buffer:
                # resume_writing() wrote more than the kernel took (and may
                # have called close() or write_eof()): finish that first.
                return
        if self._closing:
            self._schedule_lost(None)
        elif self._eof_requested:
            self._shutdown_write()

    # -- the public interface -------------------------------------------------

    def write(self, data: Buffer) -> None:
        """Send ``data``: as much as the kernel takes now, the rest buffered
        and sent as the socket becomes writable.  A no-op once the transport
        is closing; ``RuntimeError`` after ``write_eof()``."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self._closing or not data:
            return
        if self._eof_requested:
            raise RuntimeError("write() after write_eof()")
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except _TRY_AGAIN:
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            self._note_sent(sent)
            if sent == len(data):
                return
            self._buffer += memoryview(data)[sent:]
            self._update_interest()
            if self._write_timeout is not None:
                self._watch_for_stall()
        else:
            self._buffer += data
        if not self._writing_paused and len(self._buffer) > self._high:
            self._writing_paused = True
            self._call_protocol("pause_writing")

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        """Write each chunk in turn (joined first: one system call)."""
        self.write(b"".join(chunks))

    def write_eof(self) -> None:
        """Half-close: send FIN once the buffer has drained.  Reading goes on.
        Calling it again, or after ``close()``, does nothing."""
        if self._closing or self._eof_requested:
            return
        self._eof_requested = True
        if not self._buffer:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        """Stop reading, flush the write buffer, then close.
        ``connection_lost(None)`` follows.  Idempotent."""
        if self._closing:
            return
        self._trace_state("open", "closing", "close() called; flushing first")
        self._closing = True
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
        return self._closing

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``; the
        kernel's buffer then fills and TCP slows the peer down."""
        if not self._reading_paused:
            self._reading_paused = True
            self._update_interest()

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._update_interest()

    def is_reading(self) -> bool:
        return bool(self._mask & EVENT_READ)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        """``(low, high)``."""
        return self._low, self._high

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
        self._high, self._low = high, low
        if not self._writing_paused and len(self._buffer) > high:
            self._writing_paused = True
            self._call_protocol("pause_writing")
        elif self._writing_paused and len(self._buffer) <= low:
            self._resume_protocol()

    def set_write_timeout(self, seconds: Optional[float]) -> None:
        """Abort the connection with ``TimeoutError`` if data has been
        waiting in the write buffer and the peer has taken none of it for
        ``seconds``: a peer that stops reading cannot pin memory forever.
        ``None`` (the default) or 0 waits forever."""
        if seconds is not None and seconds < 0:
            raise ValueError(f"write timeout must be >= 0 or None, not {seconds!r}")
        self._write_timeout = seconds or None
        if self._write_timeout is not None and self._buffer:
            self._watch_for_stall()

    def get_write_timeout(self) -> Optional[float]:
        return self._write_timeout

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"peername"``, ``"sockname"`` or ``"socket"``; ``default`` for
        anything else or when the socket can no longer say."""
        extra = self._extra
        if extra is None:
            extra = self._extra = {"socket": self._sock}
        if name not in extra:
            try:
                if name == "peername":
                    extra[name] = self._sock.getpeername()
                elif name == "sockname":
                    extra[name] = self._sock.getsockname()
            except OSError:
                return default
        return extra.get(name, default)

    def get_protocol(self) -> Optional["Protocol"]:
        return self._protocol

    def __repr__(self) -> str:
        state = "closed" if self._lost else "closing" if self._closing else "open"
        try:
            fd = self._sock.fileno()
        except OSError:  # pragma: no cover
            fd = -1
        return f"<Transport #{self._id} fd={fd} {state} buffered={len(self._buffer)}>"

    # -- internals --------------------------------------------------------------

    def _watch_for_stall(self) -> None:
        # Lazy: one timer per stall period, none per write.  A timer left
        # over from an earlier stall fires early, finds progress, re-arms.
        self._last_progress = self._reactor.time()
        if self._stall_timer is None:
            self._stall_timer = self._reactor.call_at(
                self._last_progress + self._write_timeout, self._check_stall)  # type: ignore[operator]

    def _check_stall(self) -> None:
        self._stall_timer = None
        timeout = self._write_timeout
        if self._lost or not self._buffer or timeout is None:
            return
        deadline = self._last_progress + timeout
        if self._reactor.time() >= deadline:
            self._fatal(TimeoutError(
                f"peer stopped reading: nothing sent for {timeout:g}s with "
                f"{len(self._buffer)} bytes waiting"))
        else:
            self._stall_timer = self._reactor.call_at(deadline, self._check_stall)

    def _note_sent(self, sent: int) -> None:
        reactor = self._reactor
        reactor._stats.bytes_out += sent
        if reactor.tracer is not None and sent:
            reactor.tracer.record("write", self._id, f"{sent} bytes")

    def _trace_state(self, old: str, new: str, cause: str) -> None:
        tracer = self._reactor.tracer
        if tracer is not None:
            tracer.record("state", self._id, f"{old} -> {new}: {cause}")

    def _shutdown_write(self) -> None:
        self._trace_state("open", "write-shut", "write_eof(): FIN sent")
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal(exc)

    def _resume_protocol(self) -> None:
        self._writing_paused = False
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
        if self._lost:
            return
        self._trace_state("open", "closing", f"aborted ({exc!r})" if exc else "abort() called")
        self._closing = True
        self._buffer.clear()
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: Optional[BaseException]) -> None:
        if self._lost:
            return
        self._lost = True
        self._update_interest()  # unregisters: no further events for us
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
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
            self._trace_state("closing", "closed", "connection_lost called")
            owner, self._owner = self._owner, None
            if owner is not None:
                owner._connection_gone(self)


_ROUTINE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED",
                                      "ENOTCONN", "ESHUTDOWN", "EHOSTUNREACH", "ENETUNREACH")
    if hasattr(errno, name))
