"""The framed protocols over real loopback TCP: a line echo server with a
message deadline serves a normal client and cuts off one that trickles."""

from __future__ import annotations

import socket
import time
from typing import List, Optional

import pytest

from reactor import DeadlineExceeded, LineProtocol, Reactor

pytestmark = pytest.mark.timeout(30)


class EchoLines(LineProtocol):
    message_timeout = 0.3
    lost: List[Optional[BaseException]]

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self.lost = []

    def line_received(self, line: bytes) -> None:
        self.send_line(line[::-1])

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        self.lost.append(exc)


def test_lines_over_tcp_and_a_trickler_cut_off(reactor: Reactor, run) -> None:
    made: List[EchoLines] = []
    listener = reactor.listen_tcp(lambda: made.append(EchoLines()) or made[-1], "127.0.0.1", 0)
    good = socket.create_connection(("127.0.0.1", listener.port))
    slow = socket.create_connection(("127.0.0.1", listener.port))
    try:
        run(reactor, lambda: len(made) == 2)
        good.setblocking(False)
        replies = b""
        started = time.monotonic()
        slow.send(b"t")
        while time.monotonic() - started < 1.0:
            for piece in (b"hel", b"lo\nwor", b"ld\n"):
                good.send(piece)
                reactor.run_once(0.01)
            try:
                slow.send(b"r")  # a byte every step: the line never ends
            except OSError:
                pass
            try:
                replies += good.recv(65536)
            except BlockingIOError:
                pass
        trickler = made[1]
        assert trickler.lost and isinstance(trickler.lost[0], DeadlineExceeded)
        assert trickler.lost[0].kind == "message"
        assert replies.startswith(b"olleh\ndlrow\n") and not made[0].lost
    finally:
        good.close()
        slow.close()
        listener.close()
        for transport in listener.connections:
            transport.abort()
