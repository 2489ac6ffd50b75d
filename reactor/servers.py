"""Listeners (accept) and connectors (connect): where transports come from.

Theory of operation
-------------------
A ``Listener`` owns one listening socket per address its host resolved to
(``localhost`` gives 127.0.0.1 and ::1), all bound to the same port: the
first bind picks the port when asked for port 0, the others reuse it.  The
host ``"::"`` is one dual-stack socket that also takes IPv4 clients.  Each
readiness event accepts at most ``accept_batch`` connections, so a flood of
connects cannot starve the connections already open.

Running out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS,
ENOMEM), or any other unexpected ``accept`` error, is reported once; then the
listener stops watching its sockets for ``accept_retry_delay`` seconds at a
time instead of spinning on a readiness it cannot serve, until an accept
succeeds.  Waiting clients stay in the kernel's backlog and are accepted
when it resumes.  A client that gave up before we
accepted it (ECONNABORTED, EPROTO) is skipped silently.

A ``Connector`` makes one outgoing connection without ever blocking the loop:
host names are resolved in a worker thread, ``connect()`` is non-blocking and
completion is learned from writability and ``SO_ERROR``.  Each resolved
address is tried in turn.  The outcome is delivered exactly once: to the done
callbacks if any were added, otherwise (failures only) to the reactor's
exception handler, so a failure is never silently lost.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Set, Tuple, Union

from .transports import DEFAULT_TRANSPORT_CONFIG, Transport

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["Listener", "Connector", "ConnectError", "DEFAULT_BACKLOG", "format_address"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

_RESOURCE_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
_CLIENT_GONE_ERRNOS = frozenset((errno.ECONNABORTED, getattr(errno, "EPROTO", -1)))

#: Pending connections the kernel may queue per listening socket (it caps
#: this at net.core.somaxconn).  Generous, because some stacks reset rather
#: than drop the connections that overflow it during a burst.
DEFAULT_BACKLOG = 1024

ProtocolFactory = Callable[[], "Protocol"]
Hosts = Union[None, str, Sequence[str]]


class ConnectError(ConnectionError):
    """A ``connect_tcp`` that failed: ``host``, ``port`` and the underlying
    error (also as ``__cause__``) say why."""

    def __init__(self, host: str, port: int, reason: BaseException) -> None:
        super().__init__(f"cannot connect to {_format_hostport(host, port)}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


def _format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_address(address: Any) -> str:
    """A socket address for people: ``ip:port``, or ``[ip]:port`` for IPv6."""
    if isinstance(address, tuple) and len(address) >= 2:
        return _format_hostport(str(address[0]), address[1])
    return str(address)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def resolve(reactor: "Reactor", host: str, port: int, flags: int = 0) -> Any:
    """``reactor.getaddrinfo`` for TCP, with every way a bad name can fail
    turned into ``socket.gaierror`` (Python's IDNA codec raises
    ``UnicodeError`` for an over-long label before any lookup happens)."""
    try:
        return reactor.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
    except UnicodeError as exc:
        raise socket.gaierror(socket.EAI_NONAME, f"invalid host name: {exc}") from None


_ipv6_loopback: Optional[bool] = None


def _has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (cached: it does not change)."""
    global _ipv6_loopback
    if _ipv6_loopback is None:
        _ipv6_loopback = False
        if socket.has_ipv6:
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
                    probe.bind(("::1", 0))
                _ipv6_loopback = True
            except OSError:
                pass
    return _ipv6_loopback


def _prepare_accepted(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover  (not TCP; nothing to tune)
        pass


class _ListeningSocket:
    """The selector's handle for one listening socket of a Listener."""

    __slots__ = ("sock", "listener")

    def __init__(self, sock: socket.socket, listener: "Listener") -> None:
        self.sock = sock
        self.listener = listener

    def _handle_io(self, mask: int) -> None:
        self.listener._accept_from(self.sock)


class Listener:
    """Accepts TCP connections and gives each a protocol and a transport.

    ``host`` is a name, an address, or a list of them.  ``None`` or ``""``
    means every interface (dual-stack ``::`` where IPv6 exists);
    ``"localhost"`` means 127.0.0.1 and ::1 (where IPv6 exists).  ``port=0``
    lets the kernel pick one port, shared by all of this listener's sockets.
    Resolving ``host`` blocks briefly; it happens once, in ``listen_tcp``.
    """

    #: Connections accepted per readiness event, per socket.
    accept_batch = 64
    #: Seconds to stop accepting after running out of descriptors or memory.
    accept_retry_delay = 0.25

    def __init__(self, reactor: "Reactor", protocol_factory: ProtocolFactory,
                 host: Hosts, port: int, *, backlog: int = DEFAULT_BACKLOG,
                 reuse_address: bool = True, write_timeout: Optional[float] = None) -> None:
        self._reactor = reactor
        # One settings tuple shared by every transport accepted here.
        low, high, _ = DEFAULT_TRANSPORT_CONFIG
        self._transport_config = (low, high, write_timeout or None)
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._reuse_address = reuse_address
        self._handles: List[_ListeningSocket] = []
        self._connections: Set[Transport] = set()
        self._closed = False
        self._paused_timer: Optional[TimerHandle] = None
        self._shutdown_timer: Optional[TimerHandle] = None
        self._on_shutdown: List[Callable[[], None]] = []
        #: Counts of what happened on accept (for statistics and tests).
        self.accepted = 0
        self.accept_errors = 0
        self._starved = False  # out of descriptors/memory and already said so
        self._bind_all(self._resolve(host, port), port)
        # Kept after close(), so a closed listener still says where it was.
        self._addresses = [handle.sock.getsockname() for handle in self._handles]
        for handle in self._handles:
            reactor._register(handle.sock, EVENT_READ, handle)
        reactor._listeners.add(self)

    # -- setting up -------------------------------------------------------------

    def _resolve(self, host: Hosts, port: int) -> List[Tuple[int, Any]]:
        if not host:
            host = "::" if socket.has_ipv6 else "0.0.0.0"
        hosts = [host] if isinstance(host, str) else list(host)
        seen: List[Tuple[int, Any]] = []
        for name in hosts:
            if name == "localhost":
                # RFC 6761: localhost is the loopback, whatever /etc/hosts
                # says; many systems list only 127.0.0.1 there.
                infos: List[Tuple[Any, ...]] = [(socket.AF_INET, 0, 0, "", ("127.0.0.1", port))]
                if _has_ipv6_loopback():
                    infos.append((socket.AF_INET6, 0, 0, "", ("::1", port, 0, 0)))
            else:
                infos = resolve(self._reactor, name, port, socket.AI_PASSIVE)
            for family, _type, _proto, _canon, addr in infos:
                if family in (socket.AF_INET, socket.AF_INET6) and (family, addr) not in seen:
                    seen.append((family, addr))
        if not seen:
            raise OSError(f"{host!r} resolved to no IPv4 or IPv6 address")
        return seen

    def _bind_all(self, addresses: List[Tuple[int, Any]], port: int) -> None:
        # With port 0 the first socket picks the port and the others must get
        # the same one; if another program holds it on a later address, start
        # again with a fresh port (a few times) rather than fail.
        attempts = 5 if port == 0 and len(addresses) > 1 else 1
        for attempt in range(attempts):
            try:
                self._bind_sockets(addresses, port)
                return
            except OSError as exc:
                self._close_sockets()
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise

    def _bind_sockets(self, addresses: List[Tuple[int, Any]], port: int) -> None:
        chosen = port
        for family, addr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            self._handles.append(_ListeningSocket(sock, self))
            if self._reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # A lone "::" is dual-stack; beside an IPv4 socket for the
                # same port, an IPv6 one must leave IPv4 alone.
                dual_stack = len(addresses) == 1 and addr[0] == "::"
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                                0 if dual_stack else 1)
            addr = (addr[0], chosen) + tuple(addr[2:])
            try:
                sock.bind(addr)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on "
                              f"{_format_hostport(str(addr[0]), chosen)}: {exc.strerror}") from exc
            sock.listen(self._backlog)
            sock.setblocking(False)
            chosen = sock.getsockname()[1]

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
    def connections(self) -> Set[Transport]:
        """The transports accepted here and not yet closed."""
        return set(self._connections)

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop accepting and close the listening sockets.  Connections
        already accepted are left alone.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._reactor._listeners.discard(self)
        if self._paused_timer is not None:
            self._paused_timer.cancel()
            self._paused_timer = None
        self._close_sockets()

    def shutdown(self, grace: float = 5.0,
                 on_done: Optional[Callable[[], None]] = None) -> None:
        """Graceful stop: close the listening sockets now, ask each open
        connection's protocol to finish (``shutdown_requested``; by default
        its transport is closed after flushing), abort whatever is still open
        ``grace`` seconds later, and call ``on_done()`` once every connection
        is gone."""
        self.close()
        if on_done is not None:
            self._on_shutdown.append(on_done)
        if self._shutdown_timer is None:
            self._shutdown_timer = self._reactor.call_later(grace, self._abort_remaining)
            for transport in list(self._connections):
                protocol = transport.get_protocol()
                try:
                    handles_it = protocol.shutdown_requested() if protocol else None
                except Exception as exc:
                    transport._user_error(exc, "shutdown_requested")
                    continue
                if not handles_it:
                    transport.close()
        self._check_shutdown_done()

    def _abort_remaining(self) -> None:
        for transport in list(self._connections):
            transport.abort()

    def _check_shutdown_done(self) -> None:
        if self._connections or self._shutdown_timer is None:
            return
        self._shutdown_timer.cancel()
        callbacks, self._on_shutdown = self._on_shutdown, []
        for fn in callbacks:
            try:
                fn()
            except Exception as exc:
                self._reactor.call_exception_handler({
                    "message": "exception in shutdown callback",
                    "exception": exc,
                    "callback": fn,
                    "listener": self,
                })

    def _close_sockets(self) -> None:
        for handle in self._handles:
            self._reactor._unregister(handle.sock)
            handle.sock.close()
        self._handles = []

    def __repr__(self) -> str:
        where = ", ".join(_format_hostport(str(a[0]), a[1]) for a in self._addresses)
        return f"<Listener {where}{' closed' if self._closed else ''}>"

    # -- accepting ----------------------------------------------------------------

    def _accept_from(self, sock: socket.socket) -> None:
        for _ in range(self.accept_batch):
            if self._closed or self._paused_timer is not None:
                return
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _CLIENT_GONE_ERRNOS:
                    continue
                self._accept_failed(exc)
                return
            self.accepted += 1
            self._starved = False
            self._serve(conn)

    def _accept_failed(self, exc: OSError) -> None:
        # Whatever it is (EMFILE, ENOBUFS, EPERM from a firewall hook...),
        # retrying at once would spin: pause, retry later, and say so once
        # per run of failures rather than once per retry.
        self.accept_errors += 1
        self._reactor._stats.accept_errors += 1
        if not self._starved:
            self._starved = True
            kind = "out of resources" if exc.errno in _RESOURCE_ERRNOS else "unexpected error"
            self._reactor.call_exception_handler({
                "message": (f"accept() failed ({kind}); pausing this listener and retrying "
                            f"every {self.accept_retry_delay}s until it succeeds"),
                "exception": exc,
                "listener": self,
            })
        for handle in self._handles:
            self._reactor._unregister(handle.sock)
        self._paused_timer = self._reactor.call_later(self.accept_retry_delay,
                                                      self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._paused_timer = None
        if not self._closed:
            for handle in self._handles:
                self._reactor._register(handle.sock, EVENT_READ, handle)

    def _serve(self, conn: socket.socket) -> None:
        _prepare_accepted(conn)
        try:
            protocol = self._protocol_factory()
        except Exception as exc:
            conn.close()
            self._reactor.call_exception_handler({
                "message": "protocol factory raised; connection dropped",
                "exception": exc,
                "listener": self,
            })
            return
        transport = Transport(self._reactor, conn, protocol, owner=self,
                              config=self._transport_config)
        self._connections.add(transport)
        if self._reactor.tracer is not None:
            tracer = self._reactor.tracer
            tracer.record("accept", tracer.id_of(transport), "from " + format_address(
                transport.get_extra_info("peername")))
        transport._start("accepted")

    def _connection_gone(self, transport: Transport) -> None:
        self._connections.discard(transport)
        if self._shutdown_timer is not None:
            self._check_shutdown_done()


DoneCallback = Callable[["Connector"], None]


class Connector:
    """One outgoing TCP connection in progress; returned by ``connect_tcp``.

    When it finishes, each done callback is called once with the connector:
    on success ``transport`` and ``protocol`` are set and ``error`` is
    ``None``; on failure ``error`` is a ``ConnectError`` (its ``reason`` is
    the OS error, ``TimeoutError`` or ``socket.gaierror``).  A failure with no
    done callback goes to the reactor's exception handler instead.  The
    protocol is created only once the connection is made, and its
    ``connection_made`` runs before the done callbacks.  If it raises, that
    is reported as any callback error is, the connection is aborted, and the
    connect counts as failed: ``error.reason`` is that exception.

    ``timeout`` (seconds, ``None`` for none) covers resolving and connecting.
    ``local_addr`` (``(host, port)``) binds the socket before connecting, e.g.
    to pick the source address; addresses of the other family are skipped.
    """

    def __init__(self, reactor: "Reactor", protocol_factory: ProtocolFactory,
                 host: str, port: int, *, timeout: Optional[float] = 30.0,
                 write_timeout: Optional[float] = None,
                 local_addr: Optional[Tuple[str, int]] = None) -> None:
        self._reactor = reactor
        self._local_addr = local_addr
        self._write_timeout = write_timeout
        self._protocol_factory = protocol_factory
        self.host = host
        self.port = port
        self.transport: Optional[Transport] = None
        self.protocol: Optional[Protocol] = None
        self.error: Optional[ConnectError] = None
        self._done = False
        self._callbacks: List[DoneCallback] = []
        self._sock: Optional[socket.socket] = None
        self._addresses: List[Tuple[int, Any]] = []
        self._last_error: Optional[BaseException] = None
        self._timer: Optional[TimerHandle] = None
        if timeout is not None:
            self._timer = reactor.call_later(timeout, self._timed_out, timeout)
        if _is_ip_literal(host):
            # No lookup can block on a literal; still go through the loop so
            # that results are never delivered from inside connect_tcp().
            try:
                reactor.call_soon(self._resolved, self._lookup(), None)
            except OSError as exc:
                reactor.call_soon(self._resolved, None, exc)
        else:
            reactor.run_in_thread(self._lookup).add_done_callback(
                lambda call: self._resolved(None if call.exception() else call.result(),
                                            call.exception()))

    def _lookup(self) -> Any:
        return resolve(self._reactor, self.host, self.port)

    # -- public -------------------------------------------------------------------

    def done(self) -> bool:
        return self._done

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(connector)`` when finished (at once, via the loop, if it
        already has)."""
        if self._done:
            self._reactor.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def cancel(self) -> None:
        """Give up.  Done callbacks are not called; no socket is left open."""
        if not self._done:
            self._done = True
            self._callbacks = []
            self._cleanup()

    def __repr__(self) -> str:
        state = ("connected" if self.transport else "failed" if self.error
                 else "cancelled" if self._done else "connecting")
        return f"<Connector {_format_hostport(self.host, self.port)} {state}>"

    # -- the steps ----------------------------------------------------------------

    def _resolved(self, infos: Any, exc: Optional[BaseException]) -> None:
        if self._done:
            return
        if exc is not None:
            self._fail(exc)
            return
        self._addresses = [(info[0], info[4]) for info in infos
                           if info[0] in (socket.AF_INET, socket.AF_INET6)]
        if not self._addresses:
            self._fail(OSError(f"{self.host!r} resolved to no IPv4 or IPv6 address"))
            return
        self._try_next()

    def _try_next(self) -> None:
        while self._addresses:
            family, addr = self._addresses.pop(0)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                # EMFILE, or EAFNOSUPPORT where IPv6 is disabled: this
                # address is unusable, the next one may not be.
                self._last_error = exc
                continue
            sock.setblocking(False)
            if self._local_addr is not None:
                try:
                    sock.bind(self._local_addr)
                except OSError as exc:  # e.g. an IPv4 source for an IPv6 address
                    sock.close()
                    self._last_error = exc
                    continue
            code = sock.connect_ex(addr)
            if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EINTR):
                self._sock = sock
                self._reactor._register(sock, EVENT_WRITE, self)
                return
            sock.close()
            self._last_error = OSError(code, os.strerror(code))
        self._fail(self._last_error or OSError("no address to try"))

    def _handle_io(self, mask: int) -> None:
        sock = self._sock
        if sock is None or self._done:
            return
        self._reactor._unregister(sock)
        self._sock = None
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            sock.close()
            self._last_error = OSError(code, os.strerror(code))  # picks the subclass
            self._try_next()
            return
        self._connected(sock)

    def _connected(self, sock: socket.socket) -> None:
        _prepare_accepted(sock)
        self._done = True
        self._cancel_timer()
        try:
            protocol = self._protocol_factory()
        except Exception as exc:
            sock.close()
            self._finish(ConnectError(self.host, self.port, exc))
            return
        self.protocol = protocol
        self.transport = Transport(self._reactor, sock, protocol)
        if self._write_timeout:
            self.transport.set_write_timeout(self._write_timeout)
        failure = self.transport._start()
        if failure is not None:
            # connection_made raised: the transport has reported it and
            # aborted the connection, so this connect failed after all.
            self._finish(ConnectError(self.host, self.port, failure), reported=True)
            return
        self._finish(None)

    def _timed_out(self, timeout: float) -> None:
        self._timer = None
        if not self._done:
            self._fail(TimeoutError(f"timed out after {timeout:g}s"))

    def _fail(self, reason: BaseException) -> None:
        self._done = True
        self._cleanup()
        self._finish(ConnectError(self.host, self.port, reason))

    def _cleanup(self) -> None:
        self._cancel_timer()
        if self._sock is not None:
            self._reactor._unregister(self._sock)
            self._sock.close()
            self._sock = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self, error: Optional[ConnectError], reported: bool = False) -> None:
        if error is not None:
            error.__cause__ = error.reason
            self.error = error
        callbacks, self._callbacks = self._callbacks, []
        if error is not None and not callbacks and not reported:
            self._reactor.call_exception_handler({
                "message": "connect_tcp failed and no done callback was added",
                "exception": error,
                "connector": self,
            })
        for fn in callbacks:
            try:
                fn(self)
            except Exception as exc:
                self._reactor.call_exception_handler({
                    "message": f"exception in connector done callback {fn!r}",
                    "exception": exc,
                    "connector": self,
                    "callback": fn,
                })
