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

Both put their descriptor in non-blocking mode.  Regular files cannot be
watched by ``epoll`` (a file is always ready) and are refused with
``ValueError``; read them in a thread (``run_in_thread``).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from .loop import EVENT_READ, EVENT_WRITE
from .streams import DEFAULT_MAX_WRITE_BUFFER
from .transports import Buffer, ReadTransport, WriteBufferFull, WriteTransport

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol

__all__ = ["ReadPipeTransport", "WritePipeTransport", "connect_read_pipe",
           "connect_write_pipe"]

ProtocolFactory = Callable[[], "Protocol"]


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

    def _shut(self, exc: Optional[BaseException]) -> None:
        """Close the descriptor now; ``connection_lost(exc)`` next step."""
        if self._closed:
            return
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


class WritePipeTransport(_PipeTransport, WriteTransport):
    """The write end of a pipe, as a transport; see the module docstring."""

    def start(self) -> None:
        self._buffer = bytearray()
        self._low, self._high = 16384, 65536
        self._max: Optional[int] = DEFAULT_MAX_WRITE_BUFFER
        self._paused = False
        self._reason: Optional[BaseException] = None
        # Watched for reading: a reader that goes away shows up there.
        self._reactor.add_handler(self._fd, EVENT_READ, self)
        self._reactor.add_close_hook(self.abort)
        self._call("connection_made", self)

    def handle_io(self, mask: int) -> None:
        if self._closed:
            return
        if mask & EVENT_READ:
            # Nothing is ever read from a write end: readiness here is the
            # error condition of a pipe whose reader has closed it.
            self._shut(BrokenPipeError(errno.EPIPE, "the pipe's reader has closed it"))
        elif mask & EVENT_WRITE:
            self._flush()

    def write(self, data: Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
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
            self._reactor.update_handler(self._fd, EVENT_READ | EVENT_WRITE, self)
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
        if self._paused and len(self._buffer) <= self._low:
            self._paused = False
            self._call("resume_writing")
        if not self._buffer and not self._closed:
            if self._closing:
                self._shut(self._reason)
            else:
                self._reactor.update_handler(self._fd, EVENT_READ, self)

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
        if high is None:
            high = 65536 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"need high ({high!r}) >= low ({low!r}) >= 0")
        self._low, self._high = low, high

    def set_max_write_buffer(self, size: Optional[int]) -> None:
        self._max = size


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
