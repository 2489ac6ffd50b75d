"""The transport interfaces: what a protocol may ask of its connection.

This module is documentation with types.  The concrete classes live in
their own modules (``reactor.streams.StreamTransport`` for connected stream
sockets); a protocol only ever relies on what is written here, so the same
protocol runs over TCP, over a test double (``reactor.testing``), or over
anything else that keeps this contract.  The names and meanings are
asyncio's.

The contract every transport keeps with its protocol:

- ``connection_made(transport)`` first, ``connection_lost(exc)`` exactly
  once and last, never from inside another protocol callback;
- ``write()`` never blocks: what the peer cannot take yet is buffered, and
  the protocol hears ``pause_writing()`` when the buffer passes the
  high-water mark and ``resume_writing()`` when it drains to the low one;
  a write that would take the buffer past its hard limit
  (``max_write_buffer``) aborts the connection with ``WriteBufferFull``;
- ``close()`` flushes, then closes; ``abort()`` closes now and drops the
  buffer; either way ``connection_lost(None)`` follows;
- an exception raised by a protocol callback is reported to the reactor's
  exception handler and aborts that connection only; ``connection_lost``
  then receives the exception;
- a deadline that passes (idle, lifetime, write stall) is offered to the
  protocol's ``deadline_exceeded``, then closes the connection:
  ``connection_lost`` receives the ``DeadlineExceeded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional, Tuple, Union

if TYPE_CHECKING:  # pragma: no cover
    from .protocols import DatagramProtocol, Protocol

__all__ = ["BaseTransport", "ReadTransport", "WriteTransport", "Transport", "Buffer",
           "DeadlineExceeded", "WriteBufferFull", "deadline_message", "water_marks",
           "DatagramTransport",
           "DatagramTruncated"]

Buffer = Union[bytes, bytearray, memoryview]


class DeadlineExceeded(TimeoutError):
    """A connection's deadline passed: ``Protocol.deadline_exceeded`` and
    then ``connection_lost`` receive it.  ``kind`` is ``"idle"`` (no bytes
    received for ``timeout`` seconds), ``"lifetime"`` (open that long),
    ``"write"`` (buffered output made no progress that long) or
    ``"message"`` (a frame begun and not finished that long: see
    ``reactor.framed``)."""

    def __init__(self, kind: str, timeout: float, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.timeout = timeout


def deadline_message(kind: str, timeout: float, waiting: int = 0) -> str:
    """What a ``DeadlineExceeded`` of ``kind`` says (idle, lifetime, or a
    write stall with ``waiting`` bytes in the buffer)."""
    if kind == "idle":
        return f"no data received for {timeout:g}s"
    if kind == "write":
        return (f"peer stopped reading: nothing sent for {timeout:g}s with "
                f"{waiting} bytes waiting")
    return f"connection open for {timeout:g}s, its longest allowed"


def water_marks(high: Optional[int] = None, low: Optional[int] = None,
                default_high: int = 65536) -> Tuple[int, int]:
    """``(low, high)`` for ``set_write_buffer_limits(high, low)``: with only
    ``high``, ``low`` is a quarter of it; with only ``low``, ``high`` is four
    times it; ``ValueError`` unless ``high >= low >= 0``."""
    if high is None:
        high = default_high if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"need high ({high!r}) >= low ({low!r}) >= 0")
    return low, high


class WriteBufferFull(BufferError):
    """A ``write()`` would have taken the write buffer past its limit
    (``max_write_buffer``): the connection is aborted and
    ``connection_lost`` receives this."""

    @classmethod
    def past(cls, size: int, limit: int) -> "WriteBufferFull":
        """The error for a write that would buffer ``size`` bytes."""
        return cls(f"write() would buffer {size} bytes, past max_write_buffer ({limit}): "
                   f"the peer is not reading and the protocol kept writing "
                   f"(ignoring pause_writing?)")


class BaseTransport:
    """What every transport offers."""

    __slots__ = ()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Optional information about the connection: ``"peername"``,
        ``"sockname"`` and ``"socket"`` for sockets, ``"reactor"`` for the
        reactor it runs on; ``default`` for anything the transport does not
        know."""
        raise NotImplementedError

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""
        raise NotImplementedError

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Close after flushing what was written; ``connection_lost(reason)``
        follows (``None``: a clean close).  Idempotent."""
        raise NotImplementedError

    def get_protocol(self) -> Optional[Union["Protocol", "DatagramProtocol"]]:
        """The protocol, or ``None`` once ``connection_lost`` has been called."""
        raise NotImplementedError

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        """Close when nothing has been received for ``seconds`` (``None``:
        never); see ``Protocol.deadline_exceeded``."""
        raise NotImplementedError

    def get_idle_timeout(self) -> Optional[float]:
        raise NotImplementedError

    def set_max_lifetime(self, seconds: Optional[float]) -> None:
        """Close ``seconds`` after the connection opened (``None``: never)."""
        raise NotImplementedError

    def get_max_lifetime(self) -> Optional[float]:
        raise NotImplementedError


class ReadTransport(BaseTransport):
    """The receiving half."""

    __slots__ = ()

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``: the
        peer is slowed down by the kernel's flow control."""
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def is_reading(self) -> bool:
        raise NotImplementedError


class WriteTransport(BaseTransport):
    """The sending half."""

    __slots__ = ()

    def write(self, data: Buffer) -> None:
        """Send ``data`` without blocking; see the module docstring."""
        raise NotImplementedError

    def writelines(self, chunks: Iterable[Buffer]) -> None:
        """Write each chunk in turn."""
        self.write(b"".join(chunks))

    def write_eof(self) -> None:
        """Half-close: no more writes; the peer sees EOF once the buffer is
        flushed.  Reading goes on."""
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        raise NotImplementedError

    def abort(self) -> None:
        """Close now, dropping anything still buffered;
        ``connection_lost(None)`` follows.  Idempotent."""
        raise NotImplementedError

    def get_write_buffer_size(self) -> int:
        raise NotImplementedError

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        """``(low, high)``: the water marks of flow control."""
        raise NotImplementedError

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        """Set the water marks.  With only ``high``, ``low`` is a quarter of
        it; with only ``low``, ``high`` is four times it."""
        raise NotImplementedError


class Transport(ReadTransport, WriteTransport):
    """A bidirectional stream: what ``Protocol.connection_made`` receives."""

    __slots__ = ()


class DatagramTruncated(OSError):
    """A datagram larger than the endpoint's read buffer arrived from
    ``addr``: it was dropped whole, not delivered cut short."""

    def __init__(self, addr: Any, limit: int) -> None:
        super().__init__(f"a datagram from {addr!r} was larger than the {limit}-byte read "
                         f"buffer: dropped")
        self.addr = addr
        self.limit = limit


class DatagramTransport(BaseTransport):
    """A datagram endpoint: what ``DatagramProtocol.connection_made``
    receives."""

    __slots__ = ()

    def sendto(self, data: Buffer, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (``None`` on a connected endpoint:
        to its peer).  Never blocks: what the kernel cannot take now waits
        in the buffer, with ``pause_writing`` past the high-water mark."""
        raise NotImplementedError

    def abort(self) -> None:
        """Close now, dropping unsent datagrams; ``connection_lost(None)``
        follows."""
        raise NotImplementedError

    def get_write_buffer_size(self) -> int:
        """Bytes of datagrams waiting to be sent."""
        raise NotImplementedError

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        raise NotImplementedError

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        raise NotImplementedError
