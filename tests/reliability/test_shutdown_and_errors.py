"""Reliability items 9, 11 and 18: accept and connect errors, framing on
real sockets, and the graceful-shutdown hook."""

from __future__ import annotations

import errno
import random
import socket
from typing import Any, List, Optional

import pytest

from reactor import ConnectError, Protocol, Reactor
from reactor.conversations import Settings, serve

pytestmark = pytest.mark.timeout(60)


class Tracked(Protocol):
    def __init__(self, finish_on_request: Optional[bool] = None) -> None:
        self.finish_on_request = finish_on_request
        self.requested = 0
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)

    def shutdown_requested(self) -> Optional[bool]:
        self.requested += 1
        if self.finish_on_request:
            self.transport.write(b"goodbye")
            self.transport.close()
        return self.finish_on_request is not None  # None: let the listener close


def test_listener_shutdown_asks_flushes_and_aborts_stragglers(reactor: Reactor, run) -> None:
    """Item 18."""
    made: List[Tracked] = []
    kinds = [None, True, False]  # default close; finishes itself; never finishes

    def factory() -> Tracked:
        made.append(Tracked(kinds[len(made)]))
        return made[-1]

    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    peers = [socket.create_connection(("127.0.0.1", listener.port)) for _ in kinds]
    try:
        run(reactor, lambda: len(made) == 3)
        made[0].transport.write(b"in flight")
        done: List[bool] = []
        listener.shutdown(grace=0.3, on_done=lambda: done.append(True))
        assert listener.is_closed()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
        run(reactor, lambda: made[0].lost and made[1].lost)
        assert not made[2].lost and not done  # the third is still finishing
        run(reactor, lambda: done, timeout=5)
        assert done == [True]
        assert [p.requested for p in made] == [1, 1, 1]
        assert [len(p.lost) for p in made] == [1, 1, 1]
        peers[0].settimeout(5)
        assert peers[0].recv(100) == b"in flight"
        peers[1].settimeout(5)
        assert peers[1].recv(100) == b"goodbye"
    finally:
        for s in peers:
            s.close()


def test_reactor_shutdown_stops_run_with_a_deadline(reactor: Reactor, run) -> None:
    """Item 18: Reactor.shutdown covers every listener and stops the loop."""
    lines: List[str] = []
    echo = serve(reactor, "echo", "127.0.0.1", 0, log=lines.append)
    ack = serve(reactor, "ack", "127.0.0.1", 0, log=lines.append)
    peers = [socket.create_connection(("127.0.0.1", echo.port)),
             socket.create_connection(("127.0.0.1", ack.port))]
    try:
        run(reactor, lambda: echo.connections and ack.connections)
        reactor.call_soon(reactor.shutdown, 5.0)
        reactor.run()  # returns once both listeners' connections are gone
        assert echo.is_closed() and ack.is_closed()
        assert not echo.connections and not ack.connections
    finally:
        for s in peers:
            s.close()


def test_shutdown_with_nothing_open_just_stops(reactor: Reactor) -> None:
    reactor.call_soon(reactor.shutdown)
    reactor.run()


@pytest.mark.parametrize("code", [errno.ECONNABORTED, errno.ENOBUFS])
def test_accept_errors_reported_once_and_service_continues(reactor: Reactor, run, errors,
                                                           code: int) -> None:
    """Item 9 (accept side)."""
    made: List[Tracked] = []
    listener = reactor.listen_tcp(lambda: made.append(Tracked()) or made[-1], "127.0.0.1", 0)
    listener.accept_retry_delay = 0.05
    handle = listener._handles[0]
    real = handle.sock

    class Failing:
        left = 2

        def accept(self) -> Any:
            if Failing.left:
                Failing.left -= 1
                raise OSError(code, "simulated")
            return real.accept()

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    handle.sock = Failing()  # type: ignore[assignment]
    peers = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(3)]
    try:
        run(reactor, lambda: len(made) == 3)
        expected = 0 if code == errno.ECONNABORTED else 1  # a vanished client is routine
        assert len(errors) == expected
    finally:
        handle.sock = real
        for p in made:
            p.transport.close()
        for s in peers:
            s.close()
        listener.close()


def test_connect_errors_reported_once_nothing_leaks(reactor: Reactor, run, errors) -> None:
    """Item 9 (connect side): refused, unknown host, timeout; then a good
    connection on the same reactor still works."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    def resolver(host, port, *args):  # type: ignore[no-untyped-def]
        if host == "nowhere.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return socket.getaddrinfo("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM)

    reactor.getaddrinfo = resolver  # type: ignore[assignment]
    outcomes: List[Any] = []
    attempts = [("127.0.0.1", closed_port, ConnectionRefusedError),
                ("nowhere.invalid", 80, socket.gaierror)]
    for host, port, _ in attempts:
        reactor.connect_tcp(Tracked, host, port, timeout=5).add_done_callback(
            lambda c: outcomes.append(c.error))
    run(reactor, lambda: len(outcomes) == 2)
    reactor.run_once(0)
    assert len(outcomes) == 2
    assert errors == []  # delivered to the done callbacks, not reported twice
    for error, (_, _, reason) in zip(sorted(outcomes, key=lambda e: e.host),
                                     sorted(attempts, key=lambda a: a[0])):
        assert isinstance(error, ConnectError) and isinstance(error.reason, reason)
    listener = reactor.listen_tcp(Tracked, "127.0.0.1", 0)
    good: List[Any] = []
    reactor.connect_tcp(Tracked, "127.0.0.1", listener.port).add_done_callback(good.append)
    run(reactor, lambda: good)
    assert good[0].error is None
    good[0].transport.close()
    for t in listener.connections:
        t.close()
    run(reactor, lambda: not listener.connections)
    listener.close()
    reactor._executor.shutdown(wait=True)  # type: ignore[union-attr]


def test_framing_on_real_sockets_one_byte_coalesced_and_split(reactor: Reactor, run) -> None:
    """Item 11 over TCP: the read server logs the same lines for one-byte
    writes, 100 messages in one segment, and a random split."""
    messages = [b"message %03d" % i for i in range(100)]
    stream = b"".join(m + b"\0" for m in messages)
    expected = [f"-->{m.decode()}" for m in messages] + ["Ending connection"]
    rng = random.Random(11)
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    ways = {
        "one byte": [stream[i:i + 1] for i in range(len(stream))],
        "coalesced": [stream],
        "random split": [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])],
    }
    for name, pieces in ways.items():
        lines: List[str] = []
        listener = serve(reactor, "read", "127.0.0.1", 0, log=lines.append,
                         settings=Settings(idle_timeout=10))
        with socket.create_connection(("127.0.0.1", listener.port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in pieces:
                s.sendall(piece)
                if len(pieces) > 1:
                    reactor.run_once(0)  # let the server see each piece apart
        run(reactor, lambda lines=lines: "Ending connection" in lines)
        assert [ln for ln in lines if ln.startswith("-->") or ln == "Ending connection"] == \
            expected, name
        run(reactor, lambda listener=listener: not listener.connections)
        listener.close()
