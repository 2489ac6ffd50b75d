"""ReconnectingClient on real loopback sockets: the backoff sequence on a
FakeClock against a refused port, a server that goes away and comes back,
stop/shutdown/close at each stage, and errors in user code."""

from __future__ import annotations

import logging
import random
import socket
import time
from typing import Any, Iterator, List, Optional

import pytest

from reactor import Protocol, Reactor, ReconnectingClient
from reactor.reconnect import Attempt, Backoff
from reactor.testing import FakeClock

from ..conftest import run_until

pytestmark = pytest.mark.timeout(30)


class Peer(Protocol):
    """Records its connection's life; says hello on connecting."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.transport: Any = None
        self.data = bytearray()
        self.made = 0
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport: Any) -> None:
        self.made += 1
        self.transport = transport
        if self.greeting:
            transport.write(self.greeting)

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


class Factory:
    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.protocols: List[Peer] = []

    def __call__(self) -> Peer:
        protocol = Peer(self.greeting)
        self.protocols.append(protocol)
        return protocol


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: connects to it are refused,
    and nothing else can take it during the test."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_backoff_sequence_on_a_fake_clock(errors: List[Any], refused_port: int) -> None:
    clock = FakeClock(100.0)
    reactor = Reactor(clock=clock)
    reactor.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    attempts: List[Attempt] = []
    at: List[float] = []

    def on_attempt(attempt: Attempt) -> None:
        attempts.append(attempt)
        at.append(clock.now())

    client = ReconnectingClient(reactor, Factory(), "127.0.0.1", refused_port,
                                initial_delay=1, factor=2, max_delay=8, jitter=0,
                                on_attempt=on_attempt)
    client.start()
    for n in range(1, 8):
        run_until(reactor, lambda n=n: len(attempts) == n)  # refusal arrives in real time
        deadline = reactor.next_deadline()
        assert deadline is not None
        clock.set(deadline)  # jump straight to the retry
    client.stop()
    reactor.close()
    assert [a.number for a in attempts] == list(range(1, 8))
    assert all(isinstance(a.error.reason, ConnectionRefusedError) for a in attempts)
    assert [a.delay for a in attempts] == [1, 2, 4, 8, 8, 8, 8]
    assert [t - 100 for t in at] == [0, 1, 3, 7, 15, 23, 31]
    assert errors == []


def test_jittered_delays_follow_the_backoff(fake_reactor: Reactor, clock: FakeClock,
                                            refused_port: int) -> None:
    attempts: List[Attempt] = []
    client = ReconnectingClient(fake_reactor, Factory(), "127.0.0.1", refused_port,
                                initial_delay=1, factor=3, max_delay=50, jitter=0.5,
                                rng=random.Random(3), on_attempt=attempts.append)
    client.start()
    for n in range(1, 6):
        run_until(fake_reactor, lambda n=n: len(attempts) == n)
        deadline = fake_reactor.next_deadline()
        assert deadline is not None
        assert deadline - clock.now() == pytest.approx(attempts[-1].delay)
        clock.set(deadline)
    client.stop()
    expected = Backoff(1, 3, 50, 0.5, rng=random.Random(3))
    assert [a.delay for a in attempts] == [expected.delay(n) for n in range(1, 6)]
    assert [a.delay for a in attempts] != [1, 3, 9, 27, 50]  # the jitter did something


def test_the_server_goes_away_and_comes_back(reactor: Reactor, errors: List[Any]) -> None:
    server_side = Factory(b"hello from the server")
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    port = listener.port
    client_side = Factory(b"hello from the client")
    attempts: List[Attempt] = []
    client = ReconnectingClient(reactor, client_side, "127.0.0.1", port,
                                initial_delay=0.02, factor=2, max_delay=0.1, jitter=0,
                                on_attempt=attempts.append)
    client.start()
    run_until(reactor, lambda: client_side.protocols
              and client_side.protocols[0].data == b"hello from the server")
    first = client_side.protocols[0]
    assert client.protocol is first and client.transport is first.transport
    run_until(reactor, lambda: server_side.protocols
              and server_side.protocols[0].data == b"hello from the client")

    for outage in range(2):
        # The server goes away: its connection closes and the port refuses.
        listener.close()
        for protocol in server_side.protocols:
            protocol.transport.close()
        current = client_side.protocols[-1]
        before = len(attempts)
        run_until(reactor, lambda current=current, before=before:
                  current.lost and len(attempts) >= before + 3)
        assert current.lost == [None] and current.made == 1
        assert client.protocol is None and client.transport is None
        assert len(client_side.protocols) == outage + 1  # none made for a failed connect
        failed = attempts[before:]
        assert all(isinstance(a.error.reason, ConnectionRefusedError) for a in failed)
        # The loss counts as the first failure (0.02s wait), then it doubles:
        # from the start again after each good connection.
        assert [a.delay for a in failed[:3]] == [0.04, 0.08, 0.1]

        # It comes back on the same port: the client reconnects, new protocol.
        listener = reactor.listen_tcp(server_side, "127.0.0.1", port)
        run_until(reactor, lambda outage=outage: len(client_side.protocols) == outage + 2
                  and client_side.protocols[-1].data == b"hello from the server")
        latest = client_side.protocols[-1]
        assert latest.made == 1 and latest.lost == []
        assert client.protocol is latest
        assert attempts[-1].error is None and attempts[-1].delay is None
    assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))

    client.stop()
    run_until(reactor, lambda: latest.lost)
    assert latest.lost == [None]
    assert client.transport is None and not client.is_running()
    attempts_then = len(attempts)
    deadline = time.monotonic() + 0.3  # several max_delays: nothing more happens
    while time.monotonic() < deadline:
        reactor.run_once(0.02)
    assert len(attempts) == attempts_then and len(client_side.protocols) == 3
    listener.close()
    for protocol in server_side.protocols:
        protocol.transport.abort()
    assert errors == []


def test_each_attempt_is_logged(reactor: Reactor, refused_port: int,
                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reactor.reconnect")
    listener = reactor.listen_tcp(Factory(), "127.0.0.1", 0)
    attempts: List[Attempt] = []
    bad = ReconnectingClient(reactor, Factory(), "127.0.0.1", refused_port,
                             initial_delay=5, jitter=0, on_attempt=attempts.append)
    good = ReconnectingClient(reactor, Factory(), "127.0.0.1", listener.port,
                              on_attempt=attempts.append)
    bad.start()
    good.start()
    run_until(reactor, lambda: len(attempts) == 2)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", f"connected to 127.0.0.1:{listener.port} (attempt 1)") in messages
    assert any(level == "WARNING" and text.startswith(
        f"attempt 1 failed: cannot connect to 127.0.0.1:{refused_port}: ")
        and text.endswith("; next attempt in 5s") for level, text in messages), messages
    good.transport.close()  # lost: logged, and a reconnect planned
    run_until(reactor, lambda: good.transport is None)
    assert any(r.getMessage().startswith(f"connection to 127.0.0.1:{listener.port} lost; "
                                         f"reconnecting in ") for r in caplog.records)
    bad.stop()
    good.stop()
    listener.close()
    for protocol in listener.connections:
        protocol.abort()


def test_stop_while_waiting_cancels_the_retry(fake_reactor: Reactor, clock: FakeClock,
                                              refused_port: int) -> None:
    attempts: List[Attempt] = []
    client = ReconnectingClient(fake_reactor, Factory(), "127.0.0.1", refused_port,
                                on_attempt=attempts.append)
    client.start()
    run_until(fake_reactor, lambda: attempts)
    assert "waiting" in repr(client)
    client.stop()
    assert fake_reactor.next_deadline() is None
    clock.advance(1000)
    fake_reactor.run_once(0)
    assert len(attempts) == 1
    assert repr(client) == (f"<ReconnectingClient 127.0.0.1:{refused_port} stopped, "
                            f"1 attempt(s)>")


def test_stop_while_connecting_closes_the_socket(reactor: Reactor) -> None:
    listener = reactor.listen_tcp(Factory(), "127.0.0.1", 0)
    factory = Factory()
    client = ReconnectingClient(reactor, factory, "127.0.0.1", listener.port)
    client.start()
    assert "connecting" in repr(client)
    client.stop()
    for _ in range(5):
        reactor.run_once(0.01)
    assert factory.protocols == [] and client.transport is None
    assert reactor.registered_count() == 1  # the listener only
    listener.close()
    for transport in listener.connections:
        transport.abort()


def test_start_twice_is_one_client_and_start_after_stop_starts_again(
        reactor: Reactor) -> None:
    listener = reactor.listen_tcp(Factory(), "127.0.0.1", 0)
    factory = Factory()
    client = ReconnectingClient(reactor, factory, "127.0.0.1", listener.port)
    client.start()
    client.start()
    run_until(reactor, lambda: client.transport is not None)
    for _ in range(5):
        reactor.run_once(0.01)
    assert len(factory.protocols) == 1 and client.attempts == 1
    assert "connected" in repr(client)
    client.stop()
    run_until(reactor, lambda: client.transport is None and factory.protocols[0].lost)
    client.start()
    run_until(reactor, lambda: client.transport is not None)
    assert len(factory.protocols) == 2 and client.attempts == 2
    client.stop()
    run_until(reactor, lambda: factory.protocols[1].lost)
    listener.close()
    for transport in listener.connections:
        transport.abort()


def test_a_failing_connection_made_counts_as_a_failed_attempt(
        fake_reactor: Reactor, clock: FakeClock, errors: List[Any]) -> None:
    listener = fake_reactor.listen_tcp(Factory(), "127.0.0.1", 0)

    class Broken(Peer):
        def connection_made(self, transport: Any) -> None:
            raise RuntimeError("cannot start")

    made: List[Broken] = []
    made_at: List[float] = []
    attempts: List[Attempt] = []

    def factory() -> Broken:
        made.append(Broken())
        made_at.append(clock.now())
        return made[-1]

    client = ReconnectingClient(fake_reactor, factory, "127.0.0.1", listener.port,
                                initial_delay=1, jitter=0, on_attempt=attempts.append)
    client.start()
    for n in range(1, 5):
        # Each failed connection is lost too; that must not plan a second retry.
        run_until(fake_reactor, lambda n=n: len(attempts) == n and made[-1].lost)
        deadline = fake_reactor.next_deadline()
        assert deadline is not None
        clock.set(deadline)
    client.stop()
    assert all(isinstance(a.error.reason, RuntimeError) for a in attempts)
    assert [a.delay for a in attempts] == [1, 2, 4, 8]
    assert [t - 1000 for t in made_at] == [0, 1, 3, 7]
    assert client.transport is None
    assert [str(e["exception"]) for e in errors] == ["cannot start"] * 4
    listener.close()
    for transport in listener.connections:
        transport.abort()
    run_until(fake_reactor, lambda: not listener.connections)


def test_an_on_attempt_that_raises_is_reported_and_the_client_carries_on(
        reactor: Reactor, errors: List[Any]) -> None:
    listener = reactor.listen_tcp(Factory(), "127.0.0.1", 0)

    def on_attempt(attempt: Attempt) -> None:
        raise ValueError("bad callback")

    client = ReconnectingClient(reactor, Factory(), "127.0.0.1", listener.port,
                                on_attempt=on_attempt)
    client.start()
    run_until(reactor, lambda: errors)
    assert isinstance(errors[0]["exception"], ValueError)
    assert errors[0]["client"] is client
    assert client.transport is not None and not client.transport.is_closing()
    client.stop()
    listener.close()
    for transport in listener.connections:
        transport.abort()
    run_until(reactor, lambda: client.transport is None)


def test_on_attempt_may_stop_the_client(reactor: Reactor) -> None:
    listener = reactor.listen_tcp(Factory(), "127.0.0.1", 0)
    factory = Factory()
    client: Optional[ReconnectingClient] = None

    def on_attempt(attempt: Attempt) -> None:
        assert client is not None
        client.stop()

    client = ReconnectingClient(reactor, factory, "127.0.0.1", listener.port,
                                on_attempt=on_attempt)
    client.start()
    run_until(reactor, lambda: factory.protocols and factory.protocols[0].lost)
    assert client.transport is None and not client.is_running()
    listener.close()
    for transport in listener.connections:
        transport.abort()


def test_reactor_shutdown_stops_the_retrying_and_lets_the_connection_finish(
        reactor: Reactor) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    factory = Factory()
    client = ReconnectingClient(reactor, factory, "127.0.0.1", listener.port,
                                initial_delay=0.01)
    client.start()
    run_until(reactor, lambda: client.transport is not None)
    reactor.call_soon(reactor.shutdown, 2.0)
    reactor.run()
    assert factory.protocols[0].lost == [None]
    assert not client.is_running() and client.attempts == 1
    assert len(factory.protocols) == 1


def test_reactor_close_stops_everything(refused_port: int) -> None:
    reactor = Reactor()
    client = ReconnectingClient(reactor, Factory(), "127.0.0.1", refused_port)
    client.start()  # connecting: a socket is registered
    reactor.close()
    assert not client.is_running()
    with pytest.raises(RuntimeError, match="closed"):
        client.start()


def test_bad_connect_options_fail_start_and_leave_nothing_running(reactor: Reactor) -> None:
    client = ReconnectingClient(reactor, Factory(), "127.0.0.1", 1, no_such_option=True)
    with pytest.raises(TypeError):
        client.start()
    assert not client.is_running()
    assert reactor.next_deadline() is None


def test_connect_options_reach_each_connection(reactor: Reactor) -> None:
    listener = reactor.listen_tcp(Factory(), "127.0.0.1", 0)
    client = ReconnectingClient(reactor, Factory(), "127.0.0.1", listener.port,
                                idle_timeout=30, timeout=5)
    client.start()
    run_until(reactor, lambda: client.transport is not None)
    assert client.transport.get_idle_timeout() == 30
    client.stop()
    listener.close()
    for transport in listener.connections:
        transport.abort()
    run_until(reactor, lambda: client.transport is None)
