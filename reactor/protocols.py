"""The ``Protocol`` base class: what a connection tells the code that owns it.

Subclass ``Protocol`` and override the callbacks you need; the defaults do
nothing.  The reactor calls them, always on its own thread, always from one
step of the loop, one at a time.

The call grammar, for one connection::

    connection_made
    (data_received | pause_writing | resume_writing)*
    [eof_received (data_received is never called after it)]
    connection_lost                    <- exactly once, always last

``shutdown_requested`` may come at any point before ``connection_lost``,
once, when the reactor or listener is shutting down; ``deadline_exceeded``
when one of the transport's deadlines passes (idle, lifetime, write).

``pause_writing`` and ``resume_writing`` alternate, starting with
``pause_writing``.  ``connection_lost`` is called even if ``connection_made``
raised, and it is never called from inside another of these callbacks: it
always starts from the loop itself, in a later callback slot.

An exception raised by one of these callbacks does not escape into the loop.  It goes to
the reactor's exception handler with the connection as context, and that
connection is aborted; every other connection carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .transports import DatagramTransport, DeadlineExceeded, Transport

__all__ = ["Protocol", "DatagramProtocol"]


class Protocol:
    """Base class for stream protocols.  Override what you need."""

    # Empty, so that a subclass may use __slots__ to save memory per
    # connection; one that does not simply gets a __dict__ as usual.
    __slots__ = ()

    def connection_made(self, transport: "Transport") -> None:
        """Called once when the connection is established.

        ``transport`` is the connection; keep it to write and to close.
        Data may be written straight away.
        """

    def data_received(self, data: bytes) -> None:
        """Called with bytes as they arrive, never empty.

        A stream has no message boundaries: one ``write`` by the peer may
        arrive in several calls, and several writes in one call.
        """

    def eof_received(self) -> Optional[bool]:
        """Called once when the peer has half-closed its side (sent FIN).

        Return a false value (the default) and the transport closes itself
        once its write buffer is flushed.  Return true to keep the connection
        half-open: you can still write, and must call ``close()`` yourself.
        """
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        """Called exactly once when the connection is closed.

        ``exc`` is ``None`` after a clean close (``close()``, ``abort()``, or
        the peer closing after ``eof_received``) and the error otherwise,
        e.g. ``ConnectionResetError`` or ``TimeoutError``.  The socket is
        closed right after this returns.
        """

    def shutdown_requested(self) -> Optional[bool]:
        """Called once when the server that accepted this connection starts a
        graceful shutdown (``Listener.shutdown`` or ``Reactor.shutdown``).

        Return a false value (the default) and the transport is closed at
        once, after flushing what was already written.  Return true to finish
        in-flight work first and close the transport yourself; connections
        still open when the shutdown's grace period ends are aborted.
        """
        return None

    def deadline_exceeded(self, exc: "DeadlineExceeded") -> Optional[bool]:
        """Called when one of the transport's deadlines passes: ``exc.kind``
        is ``"idle"`` (nothing received for ``exc.timeout`` seconds),
        ``"lifetime"`` or ``"write"`` (the peer stopped reading).

        Return a false value (the default) and the transport closes, after
        flushing what was written (here a goodbye can still be written;
        a flush that stalls is aborted), and ``connection_lost`` receives
        ``exc``.  Return true to keep the connection: that deadline then
        starts over.
        """
        return None

    def pause_writing(self) -> None:
        """Called when the transport's write buffer rises above its
        high-water mark.  Stop producing data until ``resume_writing``."""

    def resume_writing(self) -> None:
        """Called when the write buffer has drained to the low-water mark
        or below after a ``pause_writing``."""


class DatagramProtocol:
    """Base class for datagram (UDP) protocols.  Override what you need.

    The call grammar, for one endpoint::

        connection_made
        (datagram_received | error_received | pause_writing | resume_writing)*
        connection_lost                    <- exactly once, always last

    There is no connection to lose to a bad peer: an exception raised by
    ``datagram_received`` is reported to the reactor's exception handler
    and the endpoint carries on with the next datagram.
    """

    __slots__ = ()

    def connection_made(self, transport: "DatagramTransport") -> None:
        """The endpoint is ready: keep ``transport`` to ``sendto`` with."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """One datagram from ``addr`` (a ``(host, port)`` tuple)."""

    def error_received(self, exc: Exception) -> None:
        """A send or receive failed: ``ConnectionRefusedError`` on a
        connected endpoint whose peer has no socket (ICMP port
        unreachable), ``DatagramTruncated`` for a datagram larger than the
        read buffer (dropped, never cut), and the like.  The endpoint
        carries on."""

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        """The endpoint is closed (``exc`` is ``None`` for ``close()``)."""

    def pause_writing(self) -> None:
        """Datagrams the kernel could not take yet passed the high-water
        mark; stop sending until ``resume_writing``."""

    def resume_writing(self) -> None:
        """The datagram buffer drained to the low-water mark."""
