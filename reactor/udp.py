"""UDP: datagram endpoints, ``listen_udp`` and ``connect_udp``.

Theory of operation
-------------------
A ``UDPTransport`` serves one ``DatagramProtocol`` over one or more
datagram sockets: ``listen_udp`` on ``localhost`` binds 127.0.0.1 and ::1,
as ``listen_tcp`` does, and a reply goes out of the socket of the
destination's family.  Each socket has its own ``IOHandler`` registered
with the reactor through the public boundary.

Reads are bounded: each readiness event reads at most ``read_batch``
datagrams, so a flood at a UDP port cannot starve the other connections of
the same reactor; the rest wait in the kernel's buffer (which drops what
overflows, as UDP may).  Each read asks for one byte more than
``max_datagram_size``: a datagram that fills it was larger than the limit,
and is reported to ``error_received`` as ``DatagramTruncated`` rather than
delivered cut short.

``sendto`` sends at once when it can.  A datagram the kernel cannot take
now (a full send buffer) waits in the endpoint's queue, and the protocol
hears ``pause_writing`` past the high-water mark and ``resume_writing`` at
the low one, as on a stream.  A send that fails (``ECONNREFUSED`` on a
connected endpoint whose peer has no socket, ``EMSGSIZE``) goes to
``error_received``; the endpoint carries on.  So does an exception raised
by ``datagram_received``: there is no connection to blame, and closing the
endpoint would let one bad datagram stop the service for every peer.
"""

from __future__ import annotations

import collections
import errno
import socket
import struct
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Optional, Tuple

from .loop import EVENT_READ, EVENT_WRITE
from .tcp import listen_addresses, resolve
from .transports import Buffer, DatagramTransport, DatagramTruncated, water_marks

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import DatagramProtocol

__all__ = ["UDPTransport", "listen_udp", "connect_udp", "DEFAULT_MAX_DATAGRAM"]

#: The largest UDP payload there is (65,535 less the headers), so that no
#: real datagram is reported as truncated by default.
DEFAULT_MAX_DATAGRAM = 65535

DatagramFactory = Callable[[], "DatagramProtocol"]


class _Endpoint:
    """The reactor's handler for one socket of a ``UDPTransport``."""

    __slots__ = ("sock", "transport", "queue")

    def __init__(self, sock: socket.socket, transport: "UDPTransport") -> None:
        self.sock = sock
        self.transport = transport
        #: Datagrams the kernel could not take yet: (data, addr).
        self.queue: Deque[Tuple[bytes, Any]] = collections.deque()

    def handle_io(self, mask: int) -> None:
        if mask & EVENT_WRITE:
            self.transport.flush(self)
        if mask & EVENT_READ:
            self.transport.read(self)


class UDPTransport(DatagramTransport):
    """A datagram endpoint over ``sockets`` (bound, and connected to
    ``peer`` if given); made by ``listen_udp`` and ``connect_udp``.
    ``start()`` registers the sockets and calls ``connection_made``."""

    #: Datagrams read per readiness event, per socket.
    read_batch = 64

    def __init__(self, reactor: "Reactor", sockets: List[socket.socket],
                 protocol: "DatagramProtocol", *, peer: Any = None,
                 max_datagram_size: int = DEFAULT_MAX_DATAGRAM) -> None:
        if max_datagram_size < 1:
            raise ValueError(f"max_datagram_size must be at least 1, not {max_datagram_size!r}")
        self._reactor = reactor
        self._protocol: Optional[DatagramProtocol] = protocol
        self._endpoints = [_Endpoint(sock, self) for sock in sockets]
        self._peer = peer
        self.max_datagram_size = max_datagram_size
        self._buffered = 0
        self._low, self._high = 16384, 65536
        self._paused = False
        self._closing = False
        self._reason: Optional[BaseException] = None  # for connection_lost, after close()
        self._done = False  # sockets closed, connection_lost scheduled
        self._shutdown_waiters: List[Callable[[], None]] = []

    # -- life ---------------------------------------------------------------

    def start(self) -> None:
        for endpoint in self._endpoints:
            endpoint.sock.setblocking(False)
            self._reactor.add_handler(endpoint.sock, EVENT_READ, endpoint)
        self._reactor.add_shutdown_hook(self._on_shutdown)
        self._reactor.add_close_hook(self.abort)
        protocol = self._protocol
        assert protocol is not None
        failures: List[Exception] = []
        self._reactor.call_user(protocol.connection_made, self, on_error=failures.append,
                                protocol=protocol, transport=self)
        if failures:
            self._finish(failures[0])  # as a stream does: that endpoint is aborted

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Stop receiving, send what is queued, then close;
        ``connection_lost(reason)`` follows."""
        if self._closing:
            return
        self._closing = True
        self._reason = reason
        if self._buffered:
            for endpoint in self._endpoints:
                self._update(endpoint)
        else:
            self._finish(reason)

    def abort(self) -> None:
        if not self._done:
            self._closing = True
            self._finish(None)

    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self) -> Optional["DatagramProtocol"]:
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"socket"`` (the first), ``"sockets"``, ``"sockname"``,
        ``"peername"`` (connected endpoints) or ``"reactor"``."""
        if name == "reactor":
            return self._reactor
        if name == "peername":
            return default if self._peer is None else self._peer
        if name == "sockets":
            return [endpoint.sock for endpoint in self._endpoints]
        if not self._endpoints or self._done:
            return default
        sock = self._endpoints[0].sock
        if name == "socket":
            return sock
        if name == "sockname":
            return sock.getsockname()
        return default

    def __repr__(self) -> str:
        state = " closed" if self._done else " closing" if self._closing else ""
        names = ", ".join(str(endpoint.sock.getsockname()) for endpoint in self._endpoints
                          if not self._done)
        return f"<UDPTransport {names}{state}>"

    # -- sending ------------------------------------------------------------

    def sendto(self, data: Buffer, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if isinstance(data, memoryview):
            data = data.cast("B")  # len() in bytes, whatever the item size
        if self._closing:
            return
        if self._peer is not None:
            if addr is not None and tuple(addr[:2]) != tuple(self._peer[:2]):
                raise ValueError(f"this endpoint is connected to {self._peer!r}; "
                                 f"sendto() cannot reach {addr!r}")
            addr = None
        elif addr is None:
            raise ValueError("sendto() needs an address on an endpoint that is not connected")
        endpoint, addr = self._route(addr)
        if not endpoint.queue:
            try:
                if addr is None:
                    endpoint.sock.send(data)
                else:
                    endpoint.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._call("error_received", exc)
                return
        endpoint.queue.append((bytes(data), addr))
        self._buffered += len(data)
        self._update(endpoint)
        if not self._paused and self._buffered > self._high:
            self._paused = True
            self._call("pause_writing")

    def _route(self, addr: Any) -> Tuple[_Endpoint, Any]:
        """The endpoint whose family can reach ``addr``, and ``addr`` as
        that socket needs it (IPv4 as mapped IPv6 on a dual-stack one)."""
        if addr is None:
            return self._endpoints[0], None
        ipv6 = ":" in str(addr[0])
        for endpoint in self._endpoints:
            if (endpoint.sock.family == socket.AF_INET6) == ipv6:
                return endpoint, addr
        if not ipv6:
            for endpoint in self._endpoints:  # a dual-stack socket takes IPv4 as mapped
                if not endpoint.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                    return endpoint, ("::ffff:" + str(addr[0]), addr[1])
        family = "IPv6" if ipv6 else "IPv4"
        raise ValueError(f"no {family} socket here to send to {addr!r}")

    def flush(self, endpoint: _Endpoint) -> None:
        """The socket is writable: send what waits (``IOHandler`` work)."""
        queue = endpoint.queue
        while queue:
            data, addr = queue[0]
            try:
                if addr is None:
                    endpoint.sock.send(data)
                else:
                    endpoint.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                queue.popleft()  # that datagram is lost; go on
                self._buffered -= len(data)
                self._call("error_received", exc)
                if self._done:  # the protocol aborted
                    return
                continue
            queue.popleft()
            self._buffered -= len(data)
        if self._paused and self._buffered <= self._low:
            self._paused = False
            self._call("resume_writing")
        if self._closing and not self._buffered:
            self._finish(self._reason)
        elif not self._done:
            self._update(endpoint)

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        self._low, self._high = water_marks(high, low)

    # -- receiving ------------------------------------------------------------

    def read(self, endpoint: _Endpoint) -> None:
        """The socket is readable: at most ``read_batch`` datagrams."""
        limit = self.max_datagram_size
        sock = endpoint.sock
        for _ in range(self.read_batch):
            if self._closing:
                return
            try:
                data, addr = sock.recvfrom(limit + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP unreachable on a connected endpoint, ...
                self._call("error_received", exc)
                continue
            if len(data) > limit:
                self._call("error_received", DatagramTruncated(addr, limit))
                continue
            self._call("datagram_received", data, addr)

    # -- multicast ------------------------------------------------------------

    def join_multicast(self, group: str, interface: Optional[str] = None) -> None:
        """Receive the datagrams sent to multicast ``group`` (IPv4: on the
        interface with address ``interface``; IPv6: on the interface so
        named), on the sockets of its family."""
        self._membership(group, interface, join=True)

    def leave_multicast(self, group: str, interface: Optional[str] = None) -> None:
        self._membership(group, interface, join=False)

    def _membership(self, group: str, interface: Optional[str], join: bool) -> None:
        ipv6 = ":" in group
        if ipv6:
            index = socket.if_nametoindex(interface) if interface else 0
            request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
            level, option = socket.IPPROTO_IPV6, (socket.IPV6_JOIN_GROUP if join
                                                  else socket.IPV6_LEAVE_GROUP)
        else:
            request = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
            level, option = socket.IPPROTO_IP, (socket.IP_ADD_MEMBERSHIP if join
                                                else socket.IP_DROP_MEMBERSHIP)
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        sockets = [e.sock for e in self._endpoints if e.sock.family == family]
        if not sockets:
            raise ValueError(f"no {'IPv6' if ipv6 else 'IPv4'} socket here for group {group}")
        for sock in sockets:
            sock.setsockopt(level, option, request)

    # -- internals --------------------------------------------------------------

    def _call(self, name: str, *args: Any) -> None:
        protocol = self._protocol
        if protocol is not None:
            self._reactor.call_user(getattr(protocol, name), *args, protocol=protocol,
                                    transport=self)

    def _update(self, endpoint: _Endpoint) -> None:
        events = (0 if self._closing else EVENT_READ) | (EVENT_WRITE if endpoint.queue else 0)
        self._reactor.update_handler(endpoint.sock, events, endpoint)

    def _on_shutdown(self, grace: float, done: Callable[[], None]) -> None:
        self._shutdown_waiters.append(done)  # called once connection_lost has run
        self.close()

    def _finish(self, exc: Optional[BaseException]) -> None:
        if self._done:
            return
        self._done = self._closing = True
        reactor = self._reactor
        reactor.remove_shutdown_hook(self._on_shutdown)
        reactor.remove_close_hook(self.abort)
        for endpoint in self._endpoints:
            endpoint.queue.clear()
            reactor.remove_handler(endpoint.sock)
            endpoint.sock.close()
        self._buffered = 0
        reactor.call_soon(self._lost, exc)

    def _lost(self, exc: Optional[BaseException]) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            self._reactor.call_user(protocol.connection_lost, exc, protocol=protocol,
                                    transport=self)
        waiters, self._shutdown_waiters = self._shutdown_waiters, []
        for done in waiters:
            done()


def listen_udp(reactor: "Reactor", protocol_factory: DatagramFactory, host: Any = "localhost",
               port: int = 0, *, reuse_port: bool = False, allow_broadcast: bool = False,
               max_datagram_size: int = DEFAULT_MAX_DATAGRAM) -> UDPTransport:
    """Receive datagrams on ``host``:``port`` (``host`` as for
    ``listen_tcp``: ``localhost`` is both loopbacks, on one port) and return
    the started ``UDPTransport``.  ``reuse_port`` lets several sockets share
    the port (the kernel spreads datagrams over them); ``allow_broadcast``
    permits sending to broadcast addresses."""
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    addresses = listen_addresses(reactor, host, port)
    # With port 0 the first socket picks the port and the others must get
    # the same one; if another program holds it on a later address, start
    # again with a fresh port (a few times), as listen_tcp does.
    attempts = 5 if port == 0 and len(addresses) > 1 else 1
    for attempt in range(attempts):
        try:
            sockets = _bind_all(addresses, port, reuse_port, allow_broadcast)
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
    try:
        transport = UDPTransport(reactor, sockets, protocol_factory(),
                                 max_datagram_size=max_datagram_size)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    transport.start()
    return transport


def _bind_all(addresses: List[Any], port: int, reuse_port: bool,
              allow_broadcast: bool) -> List[socket.socket]:
    """One bound datagram socket per address, all on one port; all closed
    if any fails."""
    sockets: List[socket.socket] = []
    try:
        chosen = port
        for family, addr in addresses:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if allow_broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if family == socket.AF_INET6:
                dual_stack = len(addresses) == 1 and addr[0] == "::"
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
            try:
                sock.bind((addr[0], chosen) + tuple(addr[2:]))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen for datagrams on "
                              f"{addr[0]} port {chosen}: {exc.strerror}") from exc
            chosen = sock.getsockname()[1]
        return sockets
    except BaseException:
        for sock in sockets:
            sock.close()
        raise


def connect_udp(reactor: "Reactor", protocol_factory: DatagramFactory, host: str, port: int, *,
                local_addr: Optional[Tuple[str, int]] = None,
                max_datagram_size: int = DEFAULT_MAX_DATAGRAM) -> UDPTransport:
    """A datagram endpoint connected to ``host``:``port`` (resolved here,
    once; ``localhost`` is 127.0.0.1): ``sendto(data)`` needs no address,
    only that peer's datagrams are received, and an ICMP port-unreachable
    arrives as ``error_received(ConnectionRefusedError)``."""
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    if host == "localhost":
        infos: List[Any] = [(socket.AF_INET, 0, 0, "", ("127.0.0.1", port))]
    else:
        infos = resolve(reactor, host, port)
    usable = [info for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not usable:
        raise OSError(f"{host!r} resolved to no IPv4 or IPv6 address")
    family, _, _, _, addr = usable[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if local_addr is not None:
            sock.bind(local_addr)
        sock.connect(addr)
        transport = UDPTransport(reactor, [sock], protocol_factory(),
                                 peer=sock.getpeername()[:2],
                                 max_datagram_size=max_datagram_size)
    except BaseException:
        sock.close()
        raise
    transport.start()
    return transport
