"""Two protocols connected to each other."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any, Callable, Tuple

from ..loop import Reactor
from ..protocols import Protocol
from ..streams import StreamTransport

__all__ = ["ConnectedPair"]


class ConnectedPair:
    """Two protocols talking through real ``StreamTransport`` objects over a
    TCP connection on the loopback interface: the real buffering, flow
    control, half-close and ``connection_lost`` ordering.

    ``server`` and ``client`` are the transports (the names only say which
    protocol was given first).  ``run_until`` steps the reactor;
    ``reset(transport)`` makes the other side reset the connection; ``close()``
    aborts both and runs until their ``connection_lost`` calls are done.
    """

    def __init__(self, reactor: Reactor, server_protocol: Protocol,
                 client_protocol: Protocol) -> None:
        self.reactor = reactor
        a, b = _loopback_pair()
        self.server = StreamTransport(reactor, a, server_protocol)
        self.client = StreamTransport(reactor, b, client_protocol)
        self.server.start("accepted")
        self.client.start("connected")

    def run_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        """Step the reactor until ``predicate()`` is true; ``AssertionError``
        after ``timeout`` real seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {timeout}s")
            self.reactor.run_once(0.01)

    def reset(self, victim: StreamTransport) -> None:
        """Fault injection: the other side aborts with a TCP reset (RST), so
        ``victim`` fails as any transport whose peer reset the connection
        does: its protocol's ``connection_lost`` gets ``ConnectionResetError``
        once the reset arrives (run the reactor for that)."""
        other = self.client if victim is self.server else self.server
        sock = other.get_extra_info("socket")
        # Linger on, with a zero timeout: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        other.abort()

    def close(self) -> None:
        for transport in (self.server, self.client):
            transport.abort()
        self.run_until(lambda: self.server.get_protocol() is None
                       and self.client.get_protocol() is None)


def _loopback_pair() -> Tuple[socket.socket, socket.socket]:
    """A connected pair of non-blocking TCP sockets on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        try:
            server, _ = listener.accept()
        except BaseException:  # pragma: no cover  (loopback accept failing)
            client.close()
            raise
    for sock in (server, client):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server, client
