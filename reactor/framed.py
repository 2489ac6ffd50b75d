"""Protocols that speak in frames: lines, and length-prefixed messages.

Subclass ``LineProtocol`` and override ``line_received(line)``; send with
``send_line(line)``.  Subclass ``LengthPrefixedProtocol`` and override
``message_received(message)``; send with ``send_message(message)``.  The
framing is a ``reactor.framing`` framer, so the protocol sees the same
frames whatever the segmentation, and never buffers more than its limit.

Theory of operation
-------------------
``data_received`` feeds the framer and hands each complete frame to
``frame_received`` (``line_received``, ``message_received``).  A frame over
the limit calls ``frame_too_long(exc)``, whose default closes the
connection with the ``FrameTooLong`` as its reason (``connection_lost``
receives it); the frames that came before it are delivered first.  An EOF
in the middle of a frame closes with ``IncompleteFrame`` as the reason, so
a message cut short is never mistaken for a clean end.

``message_timeout`` (a class attribute, seconds; ``None``: none) is the
slowloris defence: once a frame has begun, the whole of it must arrive
within that time.  It runs on the deadlines' machinery: all protocols with
the same timeout share one ``DeadlineQueue`` per reactor, touched when a
frame begins and when one ends, never per read.  When it passes, the
protocol's ``deadline_exceeded`` hook hears of it (``kind`` ``"message"``)
and, unless it returns true, the connection is closed with that reason.

``LineProtocol`` can leave line mode: ``set_raw_mode()`` sends what follows,
the rest of the current chunk included, to ``raw_data_received(data)``;
``set_line_mode(extra)`` goes back, framing ``extra`` first (Twisted's
``setRawMode``/``setLineMode``).

These protocols keep ``self.transport`` (set in ``connection_made``: a
subclass that overrides it calls ``super().connection_made(transport)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from .deadlines import DeadlineQueue
from .framing import Framer, FrameTooLong, IncompleteFrame, LengthPrefixFramer, LineFramer
from .protocols import Protocol
from .transports import DeadlineExceeded

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .transports import Transport

__all__ = ["FramedProtocol", "LineProtocol", "LengthPrefixedProtocol"]


class FramedProtocol(Protocol):
    """The common part: a framer fed by ``data_received``, the too-long
    hook, and the message deadline.  Subclasses give ``make_framer()`` and
    ``frame_received(frame)``."""

    #: Seconds a frame may take to arrive once begun (``None``: no limit).
    message_timeout: Optional[float] = None

    transport: Optional["Transport"] = None
    _framer: Optional[Framer] = None
    #: When the frame being received began (None: no frame under way).
    _frame_began: Optional[float] = None
    #: A frame was too long: the framer is done.
    _broken = False

    def make_framer(self) -> Framer:  # pragma: no cover  (always overridden)
        raise NotImplementedError

    def frame_received(self, frame: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def frame_too_long(self, exc: FrameTooLong) -> None:
        """A frame passed the limit; nothing more will be framed.  The
        default closes the connection (flushing what was written) with
        ``exc`` as the reason ``connection_lost`` receives."""
        if self.transport is not None:
            self.transport.close(exc)

    # -- Protocol callbacks ----------------------------------------------------------

    def connection_made(self, transport: "Transport") -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        framer = self._framer
        if framer is None:
            framer = self._framer = self.make_framer()
        elif self._broken:
            return  # frame_too_long kept the connection: nothing more is framed
        try:
            frames = framer.feed(data)
        except FrameTooLong as exc:
            self._broken = True
            self._deliver(exc.frames)
            self._message_deadline(framer)
            self.frame_too_long(exc)
            return
        self._deliver(frames)
        if self.message_timeout is not None:
            self._message_deadline(framer)

    def eof_received(self) -> Optional[bool]:
        """The peer finished sending.  Part of a frame left over means the
        stream was cut short: the connection closes with ``IncompleteFrame``
        as the reason.  Either way the transport then closes (override and
        return true to keep writing after the peer's EOF)."""
        framer = self._framer
        if framer is not None and framer.pending and self.transport is not None:
            self.transport.close(IncompleteFrame(framer.pending))
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        """Stops the message deadline; override, calling this, to hear of it."""
        self._stop_message_deadline()

    # -- internals ---------------------------------------------------------------------

    def _deliver(self, frames: List[bytes]) -> None:
        for frame in frames:
            self.frame_received(frame)

    def _message_deadline(self, framer: Framer) -> None:
        """Start the deadline when a frame begins, stop it when none is
        under way: two queue operations per frame, none per chunk."""
        timeout = self.message_timeout
        if timeout is None:
            return
        if framer.pending and self._frame_began is None:
            reactor = self._reactor()
            if reactor is not None:
                self._frame_began = reactor.time()
                _message_queue(reactor, timeout).touch(self, self._frame_began)
        elif not framer.pending and self._frame_began is not None:
            self._stop_message_deadline()

    def _stop_message_deadline(self) -> None:
        if self._frame_began is not None:
            self._frame_began = None
            reactor = self._reactor()
            if reactor is not None and self.message_timeout is not None:
                _message_queue(reactor, self.message_timeout).discard(self)

    def _reactor(self) -> Optional["Reactor"]:
        if self.transport is None:
            return None
        reactor: Optional[Reactor] = self.transport.get_extra_info("reactor")
        return reactor

    def _message_due(self, now: float) -> None:
        """The message deadline passed for the frame under way."""
        self._frame_began = None
        timeout = self.message_timeout
        transport = self.transport
        if timeout is None or transport is None or transport.is_closing():
            return
        exc = DeadlineExceeded("message", timeout,
                               f"message not complete within {timeout:g}s")
        if self.deadline_exceeded(exc):
            framer = self._framer
            if framer is not None and framer.pending:  # it starts over
                self._message_deadline(framer)
        else:
            transport.close(exc)


def _message_queue(reactor: "Reactor", timeout: float) -> DeadlineQueue:
    """The reactor's queue of framed protocols with this message timeout,
    by when their frame began."""
    return reactor.shared((_message_queue, timeout),
                          lambda: DeadlineQueue(reactor, FramedProtocol._message_due,
                                                offset=timeout))


class LineProtocol(FramedProtocol):
    """Lines ending with ``delimiter``; override ``line_received``."""

    #: What ends a line (not part of it).  ``b"\\r\\n"`` for protocols
    #: that require CRLF; with ``b"\\n"`` a line sent with CRLF keeps its
    #: ``\\r``.
    delimiter = b"\n"
    #: The longest line accepted (bytes, the delimiter not counted).
    max_line_length = 16384

    _raw = False

    def make_framer(self) -> Framer:
        return LineFramer(self.delimiter, self.max_line_length)

    def line_received(self, line: bytes) -> None:
        """Called with each line, without its delimiter."""

    def raw_data_received(self, data: bytes) -> None:
        """Called with the bytes that arrive in raw mode."""

    def send_line(self, line: bytes) -> None:
        """Write ``line`` and the delimiter."""
        assert self.transport is not None, "send_line() before connection_made()"
        self.transport.write(bytes(line) + self.delimiter)

    def set_raw_mode(self) -> None:
        """From now on, bytes go to ``raw_data_received`` unframed: the rest
        of the current chunk (the lines after this one, and any partial
        line) first."""
        self._raw = True

    def set_line_mode(self, extra: bytes = b"") -> None:
        """Back to lines; ``extra`` is framed first, as if just received."""
        self._raw = False
        if extra:
            self.data_received(extra)

    def frame_received(self, frame: bytes) -> None:
        self.line_received(frame)

    def data_received(self, data: bytes) -> None:
        if self._raw:
            self.raw_data_received(data)
        else:
            super().data_received(data)

    def _deliver(self, frames: List[bytes]) -> None:
        for index, frame in enumerate(frames):
            self.line_received(frame)
            if self._raw:  # switched in line_received: the rest is raw
                framer = self._framer
                assert framer is not None
                rest = b"".join(line + self.delimiter for line in frames[index + 1:])
                rest += framer.take_pending()
                self._stop_message_deadline()
                if rest:
                    self.raw_data_received(rest)
                return


class LengthPrefixedProtocol(FramedProtocol):
    """Messages preceded by their length; override ``message_received``."""

    #: Bytes in the length header: 1, 2, 4 or 8.
    prefix_size = 4
    #: ``"big"`` (network order) or ``"little"``.
    byteorder = "big"
    #: The longest message accepted, in bytes.
    max_message_length = 65536

    def make_framer(self) -> Framer:
        return LengthPrefixFramer(self.prefix_size, self.byteorder, self.max_message_length)

    def message_received(self, message: bytes) -> None:
        """Called with each complete message."""

    def send_message(self, message: bytes) -> None:
        """Write ``message`` with its length header."""
        assert self.transport is not None, "send_message() before connection_made()"
        framer = self._framer
        if framer is None:
            framer = self._framer = self.make_framer()
        self.transport.write(framer.encode(message))

    def frame_received(self, frame: bytes) -> None:
        self.message_received(frame)
