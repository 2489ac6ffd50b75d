"""TCP: binding listeners, resolving names, making connections.

Theory of operation
-------------------
``listen_tcp`` binds one listening socket per address its host resolves to
(``localhost`` gives 127.0.0.1 and ::1), all on the same port: the first
bind picks the port when asked for port 0, the others reuse it.  The host
``"::"`` is one dual-stack socket that also takes IPv4 clients.  The sockets
are handed to a ``reactor.listeners.Listener``, which accepts on them.

A ``Connector`` (``connect_tcp``) makes one outgoing connection without ever
blocking the loop: host names are resolved in a worker thread,
``connect()`` is non-blocking and completion is learned from writability
and ``SO_ERROR``.  Each resolved address is tried in turn.  The outcome is
delivered exactly once: to the done callbacks if any were added, otherwise
(failures only) to the reactor's exception handler, so a failure is never
silently lost.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl as ssl_module
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple, Union

from .addresses import format_address
from .listeners import Listener, ProtocolFactory
from .loop import EVENT_WRITE
from .streams import (
    DEFAULT_MAX_WRITE_BUFFER,
    DEFAULT_SETTINGS,
    StreamTransport,
    TransportGroup,
    TransportSettings,
    transport_settings,
)
from .tls import (
    HANDSHAKE_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    TLSLayer,
    client_tls_factory,
    describe_tls_error,
    tls_factory,
)
from .transports import Transport

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["listen_tcp", "connect_tcp", "Connector", "ConnectError", "DEFAULT_BACKLOG",
           "resolve", "has_ipv6_loopback", "adopt_listening", "listen_addresses"]

#: Pending connections the kernel may queue per listening socket (it caps
#: this at net.core.somaxconn).  Generous, because some stacks reset rather
#: than drop the connections that overflow it during a burst.
DEFAULT_BACKLOG = 1024

Hosts = Union[None, str, Sequence[str]]
Address = Tuple[int, Any]  # (family, sockaddr)


class ConnectError(ConnectionError):
    """A ``connect_tcp`` (or ``connect_unix``) that failed: ``host``,
    ``port`` (``None`` for a Unix socket, whose path is ``host``) and the
    underlying error (also as ``__cause__``) say why."""

    def __init__(self, host: str, port: Optional[int], reason: BaseException) -> None:
        where = format_address(host if port is None else (host, port))  # None: a Unix path
        why = (f"TLS handshake failed: {describe_tls_error(reason)}"
               if isinstance(reason, ssl_module.SSLError) else str(reason))
        super().__init__(f"cannot connect to {where}: {why}")
        self.host = host
        self.port = port
        self.reason = reason


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


def has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (asked once: it does not change)."""
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


def set_nodelay(sock: socket.socket) -> None:
    """Send small writes at once (no Nagle delay): what a request/response
    protocol wants, and what asyncio does."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover  (not TCP after all; nothing to tune)
        pass


# -- listening ----------------------------------------------------------------------


def listen_tcp(reactor: "Reactor", protocol_factory: ProtocolFactory,
               host: Hosts = "localhost", port: int = 0, *, backlog: int = DEFAULT_BACKLOG,
               reuse_address: bool = True, write_timeout: Optional[float] = None,
               idle_timeout: Optional[float] = None,
               max_lifetime: Optional[float] = None,
               max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER,
               max_connections: Optional[int] = None,
               max_connections_per_host: Optional[int] = None,
               sock: Optional[socket.socket] = None,
               ssl: Optional["ssl_module.SSLContext"] = None,
               ssl_handshake_timeout: float = HANDSHAKE_TIMEOUT,
               ssl_shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> Listener:
    """Listen for TCP connections and return the ``Listener``.

    ``host`` is a name, an address, or a list of them.  ``None`` or ``""``
    means every interface (dual-stack ``::`` where IPv6 exists);
    ``"localhost"`` means 127.0.0.1 and ::1 (where IPv6 exists).  ``port=0``
    lets the kernel pick one port, shared by all of the listener's sockets.
    Resolving ``host`` blocks briefly; it happens once, here.

    Every connection gets the deadlines given, in seconds (``None``: none):
    ``idle_timeout`` (nothing received for that long), ``max_lifetime``
    (open that long) and ``write_timeout`` (output stalled that long).  See
    ``Protocol.deadline_exceeded`` and ``StreamTransport.set_idle_timeout``.
    ``max_write_buffer`` caps each one's write buffer (``None``: no cap; see
    ``StreamTransport.set_max_write_buffer``).

    ``max_connections`` stops accepting while that many are open (waiting
    clients stay in the kernel's backlog); ``max_connections_per_host``
    closes at once a connection whose peer address already has that many.
    A factory that returns ``None`` refuses that one connection.

    ``sock`` adopts a TCP socket that is already bound (by a supervisor, or
    inherited): ``host`` and ``port`` are then not used, and the listener
    owns the socket from now on.

    ``ssl`` (a server ``SSLContext``) runs TLS on every connection
    (``reactor.tls``): the protocol sees plaintext once the handshake is
    done, within ``ssl_handshake_timeout`` seconds.
    """
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    if ssl is not None:
        protocol_factory = tls_factory(protocol_factory, ssl, server_side=True,
                                       handshake_timeout=ssl_handshake_timeout,
                                       shutdown_timeout=ssl_shutdown_timeout)
    settings = transport_settings(write_timeout=write_timeout, idle_timeout=idle_timeout,
                                  max_lifetime=max_lifetime, max_write_buffer=max_write_buffer)
    if sock is not None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) \
                or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"listen_tcp(sock=) needs a bound TCP socket, not {sock!r}")
        sockets = [adopt_listening(sock, backlog)]
    else:
        sockets = _bind_all(listen_addresses(reactor, host, port), port, backlog,
                            reuse_address)
    try:
        return Listener(reactor, protocol_factory, sockets, settings=settings,
                        prepare=set_nodelay, max_connections=max_connections,
                        max_connections_per_host=max_connections_per_host)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise


def adopt_listening(sock: socket.socket, backlog: int) -> socket.socket:
    """A bound socket made ready for a ``Listener``: listening (again, with
    ``backlog``, if it already was) and non-blocking."""
    try:
        sock.getsockname()
        sock.listen(backlog)
    except OSError as exc:
        raise ValueError(f"cannot listen on the socket given: {exc}") from exc
    sock.setblocking(False)
    return sock


def listen_addresses(reactor: "Reactor", host: Hosts, port: int) -> List[Address]:
    """The ``(family, sockaddr)`` pairs a listener on ``host`` binds: see
    ``listen_tcp``."""
    if not host:
        host = "::" if socket.has_ipv6 else "0.0.0.0"
    hosts = [host] if isinstance(host, str) else list(host)
    seen: List[Address] = []
    for name in hosts:
        if name == "localhost":
            # RFC 6761: localhost is the loopback, whatever /etc/hosts
            # says; many systems list only 127.0.0.1 there.
            infos: List[Tuple[Any, ...]] = [(socket.AF_INET, 0, 0, "", ("127.0.0.1", port))]
            if has_ipv6_loopback():
                infos.append((socket.AF_INET6, 0, 0, "", ("::1", port, 0, 0)))
        else:
            infos = resolve(reactor, name, port, socket.AI_PASSIVE)
        for family, _type, _proto, _canon, addr in infos:
            if family in (socket.AF_INET, socket.AF_INET6) and (family, addr) not in seen:
                seen.append((family, addr))
    if not seen:
        raise OSError(f"{host!r} resolved to no IPv4 or IPv6 address")
    return seen


def _bind_all(addresses: List[Address], port: int, backlog: int,
              reuse_address: bool) -> List[socket.socket]:
    # With port 0 the first socket picks the port and the others must get
    # the same one; if another program holds it on a later address, start
    # again with a fresh port (a few times) rather than fail.
    attempts = 5 if port == 0 and len(addresses) > 1 else 1
    for attempt in range(attempts):
        sockets: List[socket.socket] = []
        try:
            _bind_sockets(sockets, addresses, port, backlog, reuse_address)
            return sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _bind_sockets(sockets: List[socket.socket], addresses: List[Address], port: int,
                  backlog: int, reuse_address: bool) -> None:
    """Bind one socket per address into ``sockets`` (so that the caller can
    close them all if one fails)."""
    chosen = port
    for family, addr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sockets.append(sock)
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # A lone "::" is dual-stack; beside an IPv4 socket for the
            # same port, an IPv6 one must leave IPv4 alone.
            dual_stack = len(addresses) == 1 and addr[0] == "::"
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        addr = (addr[0], chosen) + tuple(addr[2:])
        try:
            sock.bind(addr)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on "
                          f"{format_address((str(addr[0]), chosen))}: {exc.strerror}") from exc
        sock.listen(backlog)
        sock.setblocking(False)
        chosen = sock.getsockname()[1]


# -- connecting ---------------------------------------------------------------------


def connect_tcp(reactor: "Reactor", protocol_factory: ProtocolFactory, host: str, port: int,
                *, timeout: Optional[float] = 30.0, write_timeout: Optional[float] = None,
                idle_timeout: Optional[float] = None, max_lifetime: Optional[float] = None,
                max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER,
                local_addr: Optional[Tuple[str, int]] = None,
                group: Optional[TransportGroup] = None,
                ssl: Union[None, bool, "ssl_module.SSLContext"] = None,
                server_hostname: Optional[str] = None,
                ssl_handshake_timeout: float = HANDSHAKE_TIMEOUT,
                ssl_shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> "Connector":
    """Open a TCP connection without blocking; see ``Connector``.  The
    deadline keywords are ``listen_tcp``'s.  ``ssl`` (a client
    ``SSLContext``, or ``True`` for the default one) runs TLS, checking the
    certificate against ``server_hostname`` (default: ``host``)."""
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    if ssl:
        protocol_factory = client_tls_factory(protocol_factory, ssl, server_hostname or host,
                                      ssl_handshake_timeout, ssl_shutdown_timeout)
    return Connector(reactor, protocol_factory, host, port, timeout=timeout,
                     settings=transport_settings(write_timeout=write_timeout,
                                                 idle_timeout=idle_timeout,
                                                 max_lifetime=max_lifetime,
                                                 max_write_buffer=max_write_buffer),
                     local_addr=local_addr, group=group)


DoneCallback = Callable[["Connector"], None]

_AF_UNIX = getattr(socket, "AF_UNIX", -1)

#: Seconds between tries to connect to a Unix socket whose backlog is full.
UNIX_RETRY_DELAY = 0.01


class Connector:
    """One outgoing TCP connection in progress; returned by ``connect_tcp``.

    When it finishes, each done callback is called once with the connector:
    on success ``transport`` and ``protocol`` are set and ``error`` is
    ``None``; on failure ``error`` is a ``ConnectError`` (its ``reason`` is
    the OS error, ``TimeoutError`` or ``socket.gaierror``).  A failure with no
    done callback goes to the reactor's exception handler instead.  The
    protocol is created only once the connection is made, and its
    ``connection_made`` runs before the done callbacks.  If the factory or
    ``connection_made`` raises, that is reported as any callback error is,
    the connection is aborted, and the connect counts as failed:
    ``error.reason`` is that exception.

    ``timeout`` (seconds, ``None`` for none) covers resolving and connecting;
    ``settings`` are the transport's (``connect_tcp`` makes them).
    ``local_addr`` (``(host, port)``) binds the socket before connecting, e.g.
    to pick the source address; addresses of the other family are skipped.
    ``group`` is the ``TransportGroup`` the connection joins (by default the
    reactor's own): its ``on_leave`` hears when the connection is gone.
    ``addresses`` (``(family, sockaddr)`` pairs) are tried instead of
    resolving ``host``: ``connect_unix`` gives ``[(AF_UNIX, path)]``.

    Over TLS (a ``TLSLayer`` client from the factory, as ``ssl=`` makes
    it) the connect finishes when the handshake does: ``protocol`` and
    ``transport`` are then the application's protocol and its
    ``TLSTransport``, and a failed handshake is the ``ConnectError``'s
    reason (an ``ssl.SSLCertVerificationError``, say).  ``stream`` is
    always the stream transport underneath (the same as ``transport``
    without TLS).
    """

    def __init__(self, reactor: "Reactor", protocol_factory: ProtocolFactory,
                 host: str, port: Optional[int], *, timeout: Optional[float] = 30.0,
                 settings: Optional[TransportSettings] = None,
                 local_addr: Optional[Tuple[str, int]] = None,
                 group: Optional[TransportGroup] = None,
                 addresses: Optional[List[Address]] = None) -> None:
        self._reactor = reactor
        self._group = group
        self._local_addr = local_addr
        self._settings = settings or DEFAULT_SETTINGS
        self._protocol_factory = protocol_factory
        self.host = host
        self.port = port
        self.transport: Optional[Transport] = None
        self.protocol: Optional[Protocol] = None
        self.stream: Optional[StreamTransport] = None
        self.error: Optional[ConnectError] = None
        self._done = False
        self._handshaking = False  # connected; the TLS handshake is under way
        self._callbacks: List[DoneCallback] = []
        self._sock: Optional[socket.socket] = None
        self._addresses: List[Address] = []
        self._last_error: Optional[BaseException] = None
        self._timer: Optional[TimerHandle] = None
        self._retry: Optional[TimerHandle] = None
        # Closing the reactor cancels a connect still under way, so that
        # its socket is closed then and not left to the garbage collector.
        reactor.add_close_hook(self.cancel)
        if timeout is not None:
            self._timer = reactor.call_later(timeout, self._timed_out, timeout)
        if addresses is not None:  # nothing to resolve (a Unix socket's path)
            reactor.call_soon(self._start, list(addresses))
        elif _is_ip_literal(host):
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
        assert self.port is not None, "only a TCP connector resolves"
        return resolve(self._reactor, self.host, self.port)

    # -- public -------------------------------------------------------------------

    def done(self) -> bool:
        return self._done and not self._handshaking

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(connector)`` when finished (at once, via the loop, if it
        already has)."""
        if self.done():
            self._reactor.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def cancel(self) -> None:
        """Give up.  Done callbacks are not called; no socket is left open
        (one in its TLS handshake is aborted)."""
        self._reactor.remove_close_hook(self.cancel)
        if not self._done:
            self._done = True
            self._callbacks = []
            self._cleanup()
        elif self._handshaking:
            self._handshaking = False
            self._callbacks = []
            assert self.stream is not None
            self.stream.abort()

    def __repr__(self) -> str:
        state = ("connected" if self.transport else "failed" if self.error
                 else "in the TLS handshake" if self._handshaking
                 else "cancelled" if self._done else "connecting")
        where = format_address(self.host if self.port is None else (self.host, self.port))
        return f"<Connector {where} {state}>"

    # -- the steps ----------------------------------------------------------------

    def _resolved(self, infos: Any, exc: Optional[BaseException]) -> None:
        if self._done:
            return
        if exc is not None:
            self._fail(exc)
            return
        addresses = [(info[0], info[4]) for info in infos
                     if info[0] in (socket.AF_INET, socket.AF_INET6)]
        if not addresses:
            self._fail(OSError(f"{self.host!r} resolved to no IPv4 or IPv6 address"))
            return
        self._start(addresses)

    def _start(self, addresses: List[Address]) -> None:
        if not self._done:
            self._addresses = addresses
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
            if family == _AF_UNIX and code == errno.EAGAIN:
                # A Unix listener's backlog is full: this connect did not
                # start (no EINPROGRESS for Unix sockets); try again soon.
                sock.close()
                self._addresses.insert(0, (family, addr))
                self._retry = self._reactor.call_later(UNIX_RETRY_DELAY, self._try_next)
                return
            if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EINTR):
                self._sock = sock
                self._reactor.add_handler(sock, EVENT_WRITE, self)
                return
            sock.close()
            self._last_error = OSError(code, os.strerror(code))
        self._fail(self._last_error or OSError("no address to try"))

    def handle_io(self, mask: int) -> None:
        """The socket became writable: the connect finished, one way or the
        other (``IOHandler``)."""
        sock = self._sock
        if sock is None or self._done:
            return
        self._reactor.remove_handler(sock)
        self._sock = None
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            sock.close()
            self._last_error = OSError(code, os.strerror(code))  # picks the subclass
            self._try_next()
            return
        self._connected(sock)

    def _connected(self, sock: socket.socket) -> None:
        if sock.family != _AF_UNIX:
            set_nodelay(sock)
        self._done = True
        self._cancel_timer()
        failures: List[Exception] = []
        protocol = self._reactor.call_user(self._protocol_factory, on_error=failures.append,
                                           connector=self)
        if failures or protocol is None:
            sock.close()
            reason = failures[0] if failures else TypeError("the protocol factory returned None")
            self._finish(ConnectError(self.host, self.port, reason), reported=bool(failures))
            return
        stream = StreamTransport(self._reactor, sock, protocol, settings=self._settings,
                                 group=self._group)
        self.stream = stream
        tls = protocol if isinstance(protocol, TLSLayer) and not protocol.server_side else None
        if tls is not None:
            self._handshaking = True
            tls.add_handshake_callback(lambda exc: self._handshaken(tls, exc))
        else:
            self.protocol, self.transport = protocol, stream
        failure = stream.start()
        if failure is not None:
            self._handshaking = False
            # connection_made raised: the transport has reported it and
            # aborted the connection, so this connect failed after all.
            self._finish(ConnectError(self.host, self.port, failure), reported=True)
        elif tls is None:
            self._finish(None)

    def _handshaken(self, tls: TLSLayer, exc: Optional[BaseException]) -> None:
        if not self._handshaking:
            return  # cancelled, or the layer's connection_made failed (finished)
        self._handshaking = False
        if exc is not None:
            self._finish(ConnectError(self.host, self.port, exc),
                         reported=exc is tls.app_error)
            return
        self.protocol, self.transport = tls.app, tls.transport
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
            self._reactor.remove_handler(self._sock)
            self._sock.close()
            self._sock = None

    def _cancel_timer(self) -> None:
        for timer in (self._timer, self._retry):
            if timer is not None:
                timer.cancel()
        self._timer = self._retry = None

    def _finish(self, error: Optional[ConnectError], reported: bool = False) -> None:
        self._reactor.remove_close_hook(self.cancel)
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
            self._reactor.call_user(fn, self, connector=self)
