"""Pipes: stream transports over pipes, FIFOs and terminals.

Theory of operation
-------------------
A pipe has two ends and each end goes one way, so there are two transports.
``connect_read_pipe`` wraps the read end: ``data_received`` for what
arrives (at most ``read_size`` bytes per readiness event, one read),
``eof_received`` and then ``connection_lost(None)`` when the writer closes.
``connect_write_pipe`` wraps the write end: ``write`` sends at once what
the pipe takes and buffers the rest, with ``pause_writing`` and
``resume_writing`` at the water marks; ``write_eof`` and ``close`` close
the pipe once the buffer is flushed.  The write end is also watched for
reading: a pipe whose reader has gone reports an error condition there,
so a dead reader is noticed (``BrokenPipeError``) even when nothing is
being written.

The deadlines of stream transports apply: ``set_max_lifetime`` on both
ends, ``set_idle_timeout`` on the read end (time with reading paused does
not count), ``set_write_timeout`` on the write end (data waiting and none of
it taken for that long).  Each is one timer per transport that, when it
fires early, looks at the real time of the last progress and re-arms.  The
protocol hears ``deadline_exceeded``; unless it returns true the end is
closed and ``connection_lost`` receives the ``DeadlineExceeded``.

Both put their descriptor in non-blocking mode.  Regular files cannot be
watched by ``epoll`` (a file is always ready) and are refused with
``ValueError``; read them in a thread (``run_in_thread``).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .loop import EVENT_READ, EVENT_WRITE
from .streams import DEFAULT_MAX_WRITE_BUFFER
from .transports import (
    Buffer,
    DeadlineExceeded,
    ReadTransport,
    WriteBufferFull,
    WriteTransport,
    deadline_message,
    water_marks,
)

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["ReadPipeTransport", "WritePipeTransport", "connect_read_pipe",
           "connect_write_pipe"]

ProtocolFactory = Callable[[], "Protocol"]


def _is_fifo(fd: int) -> bool:
    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def _fileno(pipe: Any) -> int:
    fd = pipe if isinstance(pipe, int) else pipe.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)):
        raise ValueError(f"descriptor {fd} is not a pipe, FIFO, socket or terminal "
                         f"(a regular file cannot be watched: read it in a thread)")
    return fd


class _PipeTransport:
    """What both ends share: the descriptor, the protocol, closing once."""

    def __init__(self, reactor: "Reactor", pipe: Any, protocol: "Protocol") -> None:
        self._reactor = reactor
        self._pipe = pipe
        self._fd = _fileno(pipe)
        self._protocol: Optional[Protocol] = protocol
        self._closing = False
        self._closed = False
        self._timeouts: Dict[str, float] = {}       # kind -> seconds
        self._timers: Dict[str, TimerHandle] = {}
        self._since: Dict[str, float] = {}          # kind -> when it last started over
        os.set_blocking(self._fd, False)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"pipe"`` (what was given) or ``"reactor"``."""
        if name == "pipe":
            return self._pipe
        if name == "reactor":
            return self._reactor
        return default

    def get_protocol(self) -> Optional["Protocol"]:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def fileno(self) -> int:
        return self._fd

    def _call(self, name: str, *args: Any) -> Any:
        protocol = self._protocol
        if protocol is None:
            return None
        failures: List[Exception] = []
        result = self._reactor.call_user(getattr(protocol, name), *args,
                                         on_error=failures.append, protocol=protocol,
                                         transport=self)
        if failures:
            self._shut(failures[0])
        return result

    # -- deadlines ----------------------------------------------------------------

    def set_max_lifetime(self, seconds: Optional[float]) -> None:
        """Close ``seconds`` after now (``None``: never)."""
        self._set_deadline("lifetime", seconds)

    def get_max_lifetime(self) -> Optional[float]:
        return self._timeouts.get("lifetime")

    def _set_deadline(self, kind: str, seconds: Optional[float]) -> None:
        old = self._timers.pop(kind, None)
        if old is not None:
            old.cancel()
        if not seconds:
            self._timeouts.pop(kind, None)
            return
        self._timeouts[kind] = seconds
        self._since[kind] = self._reactor.time()
        self._arm(kind)

    def _arm(self, kind: str) -> None:
        if not self._closing:
            when = self._since[kind] + self._timeouts[kind]
            self._timers[kind] = self._reactor.call_at(when, self._due, kind)

    def _progress(self, kind: str) -> None:
        """Progress for the ``kind`` deadline: it counts from now."""
        if kind in self._timeouts:
            self._since[kind] = self._reactor.time()

    def _stalled(self, kind: str) -> bool:
        """Whether the ``kind`` deadline applies now (idle: reading;
        write: data waiting)."""
        return True

    def _due(self, kind: str) -> None:
        del self._timers[kind]
        if self._closing or kind not in self._timeouts:
            return
        now = self._reactor.time()
        if not self._stalled(kind):
            self._since[kind] = now  # nothing to wait for: start over
        if self._since[kind] + self._timeouts[kind] > now:
            self._arm(kind)  # progress since it was armed
            return
        timeout = self._timeouts[kind]
        exc = DeadlineExceeded(kind, timeout, deadline_message(kind, timeout, self._waiting()))
        keep = self._call("deadline_exceeded", exc)
        if self._closing:
            return
        if keep:
            self._since[kind] = now
            self._arm(kind)
        else:
            self._shut(exc)

    def _waiting(self) -> int:
        return 0

    def _shut(self, exc: Optional[BaseException]) -> None:
        """Close the descriptor now; ``connection_lost(exc)`` next step."""
        if self._closed:
            return
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._closing = self._closed = True
        self._reactor.remove_handler(self._fd)
        self._reactor.remove_close_hook(self.abort)
        if hasattr(self._pipe, "close"):
            self._pipe.close()
        else:
            os.close(self._fd)
        self._reactor.call_soon(self._lost, exc)

    def _lost(self, exc: Optional[BaseException]) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            self._reactor.call_user(protocol.connection_lost, exc, protocol=protocol,
                                    transport=self)

    def abort(self) -> None:
        self._shut(None)

    def __repr__(self) -> str:
        state = " closed" if self._closed else " closing" if self._closing else ""
        return f"<{type(self).__name__} fd={self._fd}{state}>"


class ReadPipeTransport(_PipeTransport, ReadTransport):
    """The read end of a pipe, as a transport; see the module docstring."""

    #: Bytes read per readiness event (one read).
    read_size = 65536

    def start(self) -> None:
        self._reactor.add_handler(self._fd, EVENT_READ, self)
        self._reactor.add_close_hook(self.abort)
        self._reading = True
        self._call("connection_made", self)

    def handle_io(self, mask: int) -> None:
        if self._closed or not self._reading:
            return
        try:
            data = os.read(self._fd, self.read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._shut(exc)
            return
        if data:
            self._progress("idle")
            self._call("data_received", data)
            return
        self._closing = True  # the writer closed: EOF, then the end
        self._call("eof_received")
        self._shut(None)

    def close(self, reason: Optional[BaseException] = None) -> None:
        self._shut(reason)

    def pause_reading(self) -> None:
        if not self._closed and self._reading:
            self._reading = False
            self._reactor.update_handler(self._fd, 0, self)

    def resume_reading(self) -> None:
        if not self._closed and not self._reading:
            self._reading = True
            self._reactor.update_handler(self._fd, EVENT_READ, self)

    def is_reading(self) -> bool:
        return not self._closed and self._reading

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Close when nothing has arrived for ``seconds`` while reading
        (``None``: never)."""
        self._set_deadline("idle", seconds)

    def get_idle_timeout(self) -> Optional[float]:
        return self._timeouts.get("idle")

    def _stalled(self, kind: str) -> bool:
        return kind != "idle" or self._reading


class WritePipeTransport(_PipeTransport, WriteTransport):
    """The write end of a pipe, as a transport; see the module docstring."""

    def start(self) -> None:
        self._buffer = bytearray()
        self._low, self._high = 16384, 65536
        self._max: Optional[int] = DEFAULT_MAX_WRITE_BUFFER
        self._paused = False
        self._reason: Optional[BaseException] = None
        # A FIFO's write end is watched for reading: a reader that goes
        # away shows up there as an error.  (On a terminal or a socket
        # readability means input, not a departure.)
        self._idle_events = EVENT_READ if _is_fifo(self._fd) else 0
        self._reactor.add_handler(self._fd, self._idle_events, self)
        self._reactor.add_close_hook(self.abort)
        self._call("connection_made", self)

    def handle_io(self, mask: int) -> None:
        if self._closed:
            return
        if mask & EVENT_READ and self._idle_events:
            # Nothing is ever read from a FIFO's write end: readiness here is
            # the error condition of a pipe whose reader has closed it.  It
            # is an error only if something was left unsent.
            self._shut(BrokenPipeError(errno.EPIPE, "the pipe's reader has closed it")
                       if self._buffer else None)
        elif mask & EVENT_WRITE:
            self._flush()

    def write(self, data: Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if isinstance(data, memoryview):
            data = data.cast("B")  # slices and len() in bytes, whatever the item size
        if self._closing or not data:
            return
        if not self._buffer:
            try:
                sent = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._shut(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._progress("write")  # a stall counts from the first byte left waiting
            self._reactor.update_handler(self._fd, self._idle_events | EVENT_WRITE, self)
        if self._max is not None and len(self._buffer) + len(data) > self._max:
            self._shut(WriteBufferFull.past(len(self._buffer) + len(data), self._max))
            return
        self._buffer += data
        if not self._paused and len(self._buffer) > self._high:
            self._paused = True
            self._call("pause_writing")

    def _flush(self) -> None:
        try:
            sent = os.write(self._fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._shut(exc)
            return
        del self._buffer[:sent]
        self._progress("write")
        if self._paused and len(self._buffer) <= self._low:
            self._paused = False
            self._call("resume_writing")
        if not self._buffer and not self._closed:
            if self._closing:
                self._shut(self._reason)
            else:
                self._reactor.update_handler(self._fd, self._idle_events, self)

    def write_eof(self) -> None:
        """Close the pipe once the buffer is flushed: its reader sees EOF."""
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def close(self, reason: Optional[BaseException] = None) -> None:
        if self._closing:
            return
        self._closing = True
        self._reason = reason
        if not self._buffer:
            self._shut(reason)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        self._low, self._high = water_marks(high, low)

    def set_max_write_buffer(self, size: Optional[int]) -> None:
        self._max = size

    def set_write_timeout(self, seconds: Optional[float]) -> None:
        """Close when data has waited ``seconds`` with none of it taken by
        the reader (``None``: never)."""
        self._set_deadline("write", seconds)

    def get_write_timeout(self) -> Optional[float]:
        return self._timeouts.get("write")

    def _stalled(self, kind: str) -> bool:
        return kind != "write" or bool(self._buffer)

    def _waiting(self) -> int:
        return len(self._buffer)


def connect_read_pipe(reactor: "Reactor", protocol_factory: ProtocolFactory,
                      pipe: Any) -> ReadPipeTransport:
    """Read ``pipe`` (a file object or descriptor of a pipe, FIFO or
    terminal) through a started transport; it owns the descriptor."""
    transport = ReadPipeTransport(reactor, pipe, protocol_factory())
    transport.start()
    return transport


def connect_write_pipe(reactor: "Reactor", protocol_factory: ProtocolFactory,
                       pipe: Any) -> WritePipeTransport:
    """Write to ``pipe`` through a started transport; it owns the
    descriptor."""
    transport = WritePipeTransport(reactor, pipe, protocol_factory())
    transport.start()
    return transport
