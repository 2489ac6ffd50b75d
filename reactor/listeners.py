"""The accept loop: listening sockets in, connected transports out.

Theory of operation
-------------------
A ``Listener`` serves one or more listening sockets that are already bound
and listening (``reactor.tcp.listen_tcp`` makes them for TCP); what kind of
socket they are does not matter here.  Each readiness event accepts at most
``accept_batch`` connections, so a flood of connects cannot starve the
connections already open.  Each accepted socket gets a protocol from the
factory and a ``StreamTransport`` in the listener's ``TransportGroup``,
which answers ``connections`` and the graceful ``shutdown``.

Running out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS,
ENOMEM), or any other unexpected ``accept`` error, is reported once; then the
listener stops watching its sockets for ``accept_retry_delay`` seconds at a
time instead of spinning on a readiness it cannot serve, until an accept
succeeds.  Waiting clients stay in the kernel's backlog and are accepted
when it resumes.  A client that gave up before we accepted it
(ECONNABORTED, EPROTO) is skipped silently.

Limits refuse without accepting where they can.  At ``max_connections``
open connections the listener stops watching its sockets (the kernel's
backlog holds whoever comes next) and starts again as soon as one leaves:
nobody is accepted only to be closed.  A peer address that already has
``max_connections_per_host`` is closed at once, and so is a connection
the factory answers with ``None``; both are counted in ``stats()``.

A listener stops accepting when the reactor shuts down or closes (its
hooks); its connections, like every transport's, are reached through their
group, also once the listener itself is closed.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from .addresses import format_address
from .loop import EVENT_READ
from .streams import StreamTransport, TransportGroup, TransportSettings

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["Listener", "ProtocolFactory"]

logger = logging.getLogger("reactor")

_RESOURCE_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
_CLIENT_GONE_ERRNOS = frozenset((errno.ECONNABORTED, getattr(errno, "EPROTO", -1)))

ProtocolFactory = Callable[[], "Protocol"]


class _ListeningSocket:
    """The reactor's handler for one listening socket of a Listener."""

    __slots__ = ("sock", "listener")

    def __init__(self, sock: socket.socket, listener: "Listener") -> None:
        self.sock = sock
        self.listener = listener

    def handle_io(self, mask: int) -> None:
        # Only ever watched for reading: any event means "try accept()".
        self.listener._accept_from(self.sock)

    def __repr__(self) -> str:
        return f"<listening socket of {self.listener!r}>"


class Listener:
    """Accepts connections on ``sockets`` (bound, listening, non-blocking;
    the listener owns them from now on) and gives each a protocol from
    ``protocol_factory`` and a ``StreamTransport`` with ``settings``.
    ``prepare(sock)``, if given, is called on each accepted socket first
    (TCP sets ``TCP_NODELAY`` there).  ``max_connections`` and
    ``max_connections_per_host`` limit what is open at once (see the
    module docstring); a factory that returns ``None`` refuses that
    connection.
    """

    #: Connections accepted per readiness event, per socket.
    accept_batch = 64
    #: Seconds to stop accepting after running out of descriptors or memory.
    accept_retry_delay = 0.25

    def __init__(self, reactor: "Reactor", protocol_factory: ProtocolFactory,
                 sockets: Sequence[socket.socket], *,
                 settings: Optional[TransportSettings] = None,
                 prepare: Optional[Callable[[socket.socket], None]] = None,
                 max_connections: Optional[int] = None,
                 max_connections_per_host: Optional[int] = None) -> None:
        for name, limit in (("max_connections", max_connections),
                            ("max_connections_per_host", max_connections_per_host)):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be at least 1 or None, not {limit!r}")
        self._reactor = reactor
        self._protocol_factory = protocol_factory
        self._settings = settings  # shared by every transport accepted here
        self._prepare = prepare
        self._handles = [_ListeningSocket(sock, self) for sock in sockets]
        self._max_connections = max_connections
        self._max_per_host = max_connections_per_host
        # Only with a per-host limit: open connections by host, and each
        # transport's host (its socket is closed by the time it leaves).
        self._host_counts: Dict[str, int] = {}
        self._host_of: Dict[StreamTransport, str] = {}
        limited = max_connections is not None or max_connections_per_host is not None
        self._group = TransportGroup(reactor, self._connection_left if limited else None)
        self._closed = False
        self._watching = True  # the listening sockets are watched for accept()
        self._paused_timer: Optional[TimerHandle] = None
        #: Counts of what happened on accept (for statistics and tests).
        self.accepted = 0
        self.accept_errors = 0
        self._starved = False  # out of descriptors/memory and already said so
        # Kept after close(), so a closed listener still says where it was.
        self._addresses = [sock.getsockname() for sock in sockets]
        for handle in self._handles:
            reactor.add_handler(handle.sock, EVENT_READ, handle)
        reactor.add_shutdown_hook(self._stop_accepting)
        reactor.add_close_hook(self.close)

    # -- what users see -----------------------------------------------------------

    @property
    def sockets(self) -> List[socket.socket]:
        """The listening sockets (do not close them yourself)."""
        return [handle.sock for handle in self._handles]

    @property
    def addresses(self) -> List[Tuple[Any, ...]]:
        """The bound ``sockname`` of each listening socket (still known
        after ``close()``)."""
        return list(self._addresses)

    @property
    def port(self) -> int:
        """The port every socket of this listener is (or was) bound to."""
        return int(self._addresses[0][1])

    @property
    def connections(self) -> Set[StreamTransport]:
        """The transports accepted here and not yet closed."""
        return set(self._group)

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop accepting and close the listening sockets.  Connections
        already accepted are left alone.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._watching = False
        self._reactor.remove_shutdown_hook(self._stop_accepting)
        self._reactor.remove_close_hook(self.close)
        if self._paused_timer is not None:
            self._paused_timer.cancel()
            self._paused_timer = None
        for handle in self._handles:
            self._reactor.remove_handler(handle.sock)
            handle.sock.close()
        self._handles = []

    def shutdown(self, grace: float = 5.0,
                 on_done: Optional[Callable[[], None]] = None) -> None:
        """Graceful stop: close the listening sockets now, ask each open
        connection's protocol to finish (``shutdown_requested``; by default
        its transport is closed after flushing), abort whatever is still open
        ``grace`` seconds later, and call ``on_done()`` once every connection
        is gone.  (``Reactor.shutdown`` does this for every listener.)"""
        self.close()
        self._group.shutdown(grace, on_done)

    def _stop_accepting(self, grace: float, done: Callable[[], None]) -> None:
        # The reactor's shutdown hook: the connections are asked through
        # their group, like every other transport.
        self.close()
        done()

    def __repr__(self) -> str:
        where = ", ".join(format_address(address) for address in self._addresses)
        return f"<Listener {where}{' closed' if self._closed else ''}>"

    # -- accepting ----------------------------------------------------------------

    def _accept_from(self, sock: socket.socket) -> None:
        for _ in range(self.accept_batch):
            if not self._watching:
                return
            if self._max_connections is not None and len(self._group) >= self._max_connections:
                self._reactor.counters.accept_pauses += 1
                self._update_watching()  # the backlog holds the rest meanwhile
                return
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _CLIENT_GONE_ERRNOS:
                    continue
                self._accept_failed(exc)
                return
            self.accepted += 1
            self._starved = False
            self._serve(conn, addr)

    def _accept_failed(self, exc: OSError) -> None:
        # Whatever it is (EMFILE, ENOBUFS, EPERM from a firewall hook...),
        # retrying at once would spin: pause, retry later, and say so once
        # per run of failures rather than once per retry.
        self.accept_errors += 1
        self._reactor.counters.accept_errors += 1
        if not self._starved:
            self._starved = True
            kind = "out of resources" if exc.errno in _RESOURCE_ERRNOS else "unexpected error"
            self._reactor.call_exception_handler({
                "message": (f"accept() failed ({kind}); pausing this listener and retrying "
                            f"every {self.accept_retry_delay}s until it succeeds"),
                "exception": exc,
                "listener": self,
            })
        self._paused_timer = self._reactor.call_later(self.accept_retry_delay,
                                                      self._resume_accepting)
        self._update_watching()

    def _resume_accepting(self) -> None:
        self._paused_timer = None
        self._update_watching()

    def _update_watching(self) -> None:
        """Watch the listening sockets exactly while accepting is allowed:
        not closed, not pausing after an accept error, not at the limit.
        Unwatched, they stay ours (see Reactor.update_handler)."""
        full = (self._max_connections is not None
                and len(self._group) >= self._max_connections)
        wanted = not self._closed and self._paused_timer is None and not full
        if wanted != self._watching and not self._closed:
            for handle in self._handles:
                self._reactor.update_handler(handle.sock, EVENT_READ if wanted else 0, handle)
        self._watching = wanted

    def _connection_left(self, transport: StreamTransport) -> None:
        host = self._host_of.pop(transport, None)
        if host is not None:
            left = self._host_counts[host] - 1
            if left:
                self._host_counts[host] = left
            else:
                del self._host_counts[host]
        if not self._watching:
            self._update_watching()

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        reactor = self._reactor
        host = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        if self._max_per_host is not None and \
                self._host_counts.get(host, 0) >= self._max_per_host:
            conn.close()
            reactor.counters.refused_per_host += 1
            logger.warning("refused a connection from %s: it has %d open already "
                           "(max_connections_per_host)", host, self._max_per_host)
            return
        conn.setblocking(False)
        failures: List[Exception] = []
        if self._prepare is not None:
            reactor.call_user(self._prepare, conn, on_error=failures.append, listener=self)
        protocol = None
        if not failures:
            protocol = reactor.call_user(self._protocol_factory, on_error=failures.append,
                                         listener=self)
        if protocol is None:
            conn.close()
            if not failures:  # the factory said no: a refusal, not an error
                reactor.counters.refused_by_factory += 1
            return
        transport = StreamTransport(reactor, conn, protocol, settings=self._settings,
                                    group=self._group)
        if self._max_per_host is not None:
            self._host_of[transport] = host
            self._host_counts[host] = self._host_counts.get(host, 0) + 1
        if reactor.tracer is not None:
            reactor.tracer.record("accept", reactor.tracer.id_of(transport), "from " +
                                  format_address(transport.get_extra_info("peername")))
        transport.start("accepted")
