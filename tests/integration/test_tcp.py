"""Tests for reactor.tcp and reactor.listeners: listeners (addresses, dual
stack, batching, accept errors) and connectors (success, refusal,
resolution failures, timeouts, cancellation).  Loopback only, port 0, and
never a real DNS lookup: every test's reactor resolves numeric literals
only."""

from __future__ import annotations

import errno
import gc
import socket
import threading
import time
import warnings
from typing import Any, List, Optional

import pytest

from reactor import ConnectError, Connector, Listener, Protocol, Reactor

from ..conftest import run_until

pytestmark = pytest.mark.timeout(30)


def numeric_only(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                 flags: int = 0) -> Any:
    """A resolver that refuses to touch DNS: numeric addresses only."""
    return socket.getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


@pytest.fixture(autouse=True)
def no_dns(reactor: Reactor) -> None:
    reactor.getaddrinfo = numeric_only


class Recorder(Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.data = bytearray()
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        assert self.transport is not None
        self.transport.write(data)  # echo

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


class Factory:
    def __init__(self) -> None:
        self.protocols: List[Recorder] = []

    def __call__(self) -> Recorder:
        protocol = Recorder()
        self.protocols.append(protocol)
        return protocol


class Clients:
    """Plain blocking client sockets, all closed at the end of the test."""

    def __init__(self) -> None:
        self.socks: List[socket.socket] = []

    def connect(self, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.socks.append(sock)
        sock.settimeout(5)
        sock.connect((host, port))
        return sock

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


@pytest.fixture
def clients() -> Any:
    c = Clients()
    yield c
    c.close()


def close_all(reactor: Reactor, listener: Optional[Listener], factory: Factory) -> None:
    if listener is not None:
        listener.close()
    for protocol in factory.protocols:
        if protocol.transport is not None:
            protocol.transport.abort()
    for _ in range(3):
        reactor.run_once(0)


def echo_check(reactor: Reactor, client: socket.socket, message: bytes = b"hello") -> None:
    client.sendall(message)
    client.setblocking(False)
    got = bytearray()

    def received() -> bool:
        try:
            got.extend(client.recv(4096))
        except BlockingIOError:
            pass
        return bytes(got) == message

    try:
        run_until(reactor, received)
    finally:
        client.settimeout(5)


def free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    """A port nobody listens on (bound then closed: connecting is refused)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -- listening ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_listen_on_a_single_loopback_address(host: str, reactor: Reactor,
                                             clients: Clients, errors: List[Any]) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, host, 0)
    try:
        assert len(listener.sockets) == 1
        port = listener.port
        assert port > 0
        assert listener.addresses[0][:2] == (host, port)
        assert str(port) in repr(listener)
        client = clients.connect(host, port)
        run_until(reactor, lambda: factory.protocols and factory.protocols[0].transport)
        assert listener.accepted == 1
        t = factory.protocols[0].transport
        assert t.get_extra_info("peername")[:2] == client.getsockname()[:2]
        assert listener.connections == {t}
        echo_check(reactor, client)
        assert errors == []
    finally:
        close_all(reactor, listener, factory)


def test_dual_stack_any_address_takes_ipv4_and_ipv6(reactor: Reactor, clients: Clients) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "::", 0)
    try:
        assert len(listener.sockets) == 1
        sock = listener.sockets[0]
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        v4 = clients.connect("127.0.0.1", listener.port)
        v6 = clients.connect("::1", listener.port)
        run_until(reactor, lambda: len(factory.protocols) == 2
                  and all(p.transport for p in factory.protocols))
        peers = {p.transport.get_extra_info("peername")[:2] for p in factory.protocols}
        assert peers == {("::ffff:127.0.0.1", v4.getsockname()[1]),
                         ("::1", v6.getsockname()[1])}
        echo_check(reactor, v4, b"four")
        echo_check(reactor, v6, b"six")
    finally:
        close_all(reactor, listener, factory)


def test_empty_host_means_every_interface(reactor: Reactor) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "", 0)
    try:
        assert [a[0] for a in listener.addresses] == ["::"]
    finally:
        close_all(reactor, listener, factory)


def _assert_one_socket_per_loopback(reactor: Reactor, listener: Listener, factory: Factory,
                                    clients: Clients) -> None:
    families = sorted(s.family for s in listener.sockets)
    assert families == sorted([socket.AF_INET, socket.AF_INET6])
    ports = {a[1] for a in listener.addresses}
    assert ports == {listener.port} and listener.port > 0
    hosts = sorted(a[0] for a in listener.addresses)
    assert hosts == ["127.0.0.1", "::1"]
    for s in listener.sockets:
        if s.family == socket.AF_INET6:
            assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    v4 = clients.connect("127.0.0.1", listener.port)
    v6 = clients.connect("::1", listener.port)
    run_until(reactor, lambda: listener.accepted == 2)
    echo_check(reactor, v4, b"four")
    echo_check(reactor, v6, b"six")


def test_multi_address_host_gives_one_socket_per_address(reactor: Reactor,
                                                         clients: Clients) -> None:
    asked: List[Any] = []

    def fake_getaddrinfo(host: Any, port: Any, *args: Any) -> Any:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]  # dup

    reactor.getaddrinfo = fake_getaddrinfo
    factory = Factory()
    listener = reactor.listen_tcp(factory, "both.example.test", 0)
    try:
        assert asked == ["both.example.test"]
        assert len(listener.sockets) == 2
        _assert_one_socket_per_loopback(reactor, listener, factory, clients)
    finally:
        close_all(reactor, listener, factory)


def test_localhost_means_both_loopbacks_without_a_lookup(reactor: Reactor,
                                                         clients: Clients) -> None:
    def forbidden(*args: Any) -> Any:
        raise AssertionError("localhost must not be looked up")

    reactor.getaddrinfo = forbidden
    factory = Factory()
    listener = reactor.listen_tcp(factory, "localhost", 0)
    try:
        _assert_one_socket_per_loopback(reactor, listener, factory, clients)
    finally:
        close_all(reactor, listener, factory)


def test_list_of_hosts(reactor: Reactor, clients: Clients) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, ["127.0.0.1", "::1"], 0)
    try:
        _assert_one_socket_per_loopback(reactor, listener, factory, clients)
    finally:
        close_all(reactor, listener, factory)


def test_host_resolving_to_nothing_usable_raises(reactor: Reactor) -> None:
    reactor.getaddrinfo = lambda *a: [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", "/x")]
    with pytest.raises(OSError):
        reactor.listen_tcp(Factory(), "odd.example.test", 0)
    assert reactor.registered_count() == 0


def test_bind_failure_closes_every_socket(reactor: Reactor) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        holder.bind(("::1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(OSError) as info:
            reactor.listen_tcp(Factory(), ["127.0.0.1", "::1"], port)
        assert info.value.errno == errno.EADDRINUSE
        assert str(port) in str(info.value)
    assert reactor.registered_count() == 0


def test_so_reuseaddr(reactor: Reactor) -> None:
    a = reactor.listen_tcp(Factory(), "127.0.0.1", 0)
    b = reactor.listen_tcp(Factory(), "127.0.0.1", 0, reuse_address=False)
    try:
        assert a.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        assert b.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
    finally:
        a.close()
        b.close()


def test_close_stops_accepting_but_keeps_connections(reactor: Reactor,
                                                     clients: Clients) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    try:
        port = listener.port
        client = clients.connect("127.0.0.1", port)
        run_until(reactor, lambda: listener.accepted == 1)
        listening = listener.sockets
        listener.close()
        listener.close()  # idempotent
        assert listener.is_closed()
        assert "closed" in repr(listener)
        assert listener.sockets == []
        assert all(s.fileno() == -1 for s in listening)
        assert reactor.registered_count() == 1  # only the accepted connection
        with pytest.raises(ConnectionRefusedError):
            clients.connect("127.0.0.1", port)
        echo_check(reactor, client, b"still here")
        assert factory.protocols[0].lost == []
        # The listener forgets connections as they close.
        factory.protocols[0].transport.close()
        run_until(reactor, lambda: factory.protocols[0].lost)
        assert listener.connections == set()
    finally:
        close_all(reactor, listener, factory)


def test_accept_batch_limits_each_step(reactor: Reactor, clients: Clients) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "127.0.0.1", 0, backlog=64)
    listener.accept_batch = 3
    try:
        for _ in range(20):
            clients.connect("127.0.0.1", listener.port)
        counts = []
        deadline = time.monotonic() + 10
        while listener.accepted < 20:
            assert time.monotonic() < deadline
            before = listener.accepted
            reactor.run_once(0.01)
            counts.append(listener.accepted - before)
        assert max(counts) == 3
        assert sum(counts) == 20
        assert len(listener.connections) == 20
    finally:
        close_all(reactor, listener, factory)


def test_protocol_factory_raising_drops_only_that_connection(
        reactor: Reactor, clients: Clients, errors: List[Any]) -> None:
    made: List[Recorder] = []
    failure = ValueError("factory broke")

    def factory() -> Recorder:
        if not made:
            made.append(Recorder())  # mark: fail this time only
            raise failure
        protocol = Recorder()
        made.append(protocol)
        return protocol

    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    try:
        first = clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: errors)
        assert len(errors) == 1
        assert errors[0]["exception"] is failure
        assert errors[0]["listener"] is listener
        assert first.recv(10) == b""  # dropped
        second = clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: len(made) == 2 and made[1].transport)
        echo_check(reactor, second)
        assert len(errors) == 1
        assert listener.connections == {made[1].transport}
    finally:
        listener.close()
        for p in made:
            if p.transport is not None:
                p.transport.abort()
        reactor.run_once(0)


class FlakyAccept:
    """Wraps a listening socket; ``accept()`` raises the queued errors
    first, then behaves."""

    def __init__(self, sock: socket.socket, *errnos: int) -> None:
        self._sock = sock
        self.errnos = list(errnos)
        self.raised_at: List[float] = []

    def accept(self) -> Any:
        if self.errnos:
            self.raised_at.append(time.monotonic())
            code = self.errnos.pop(0)
            raise OSError(code, "simulated")
        return self._sock.accept()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _make_flaky(listener: Listener, *errnos: int) -> FlakyAccept:
    handle = listener._handles[0]
    flaky = FlakyAccept(handle.sock, *errnos)
    handle.sock = flaky  # type: ignore[assignment]
    return flaky


def test_emfile_pauses_then_resumes(reactor: Reactor, clients: Clients,
                                    errors: List[Any]) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    listener.accept_retry_delay = 0.1
    flaky = _make_flaky(listener, errno.EMFILE)
    try:
        clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: errors)
        assert len(errors) == 1
        assert errors[0]["exception"].errno == errno.EMFILE
        assert errors[0]["listener"] is listener
        assert "pausing this listener" in errors[0]["message"]
        assert listener.accept_errors == 1
        # Not watching while paused (only the waker is in the selector), but
        # the socket is still the listener's.
        assert len(reactor._selector.get_map()) == 1 and reactor.registered_count() == 1
        with pytest.raises(RuntimeError, match="watched by <listening socket of <Listener"):
            reactor.add_reader(listener.sockets[0], print)
        run_until(reactor, lambda: listener.accepted == 1)
        accepted_at = time.monotonic()
        assert accepted_at - flaky.raised_at[0] >= listener.accept_retry_delay
        assert len(errors) == 1
        assert len(factory.protocols) == 1
        # And it keeps accepting afterwards.
        clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: listener.accepted == 2)
    finally:
        close_all(reactor, listener, factory)


def test_close_while_paused_cancels_the_resume(errors: List[Any]) -> None:
    from reactor.testing import FakeClock, advance
    r = Reactor(clock=FakeClock())
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    r.getaddrinfo = numeric_only
    factory = Factory()
    clients = Clients()
    try:
        listener = r.listen_tcp(factory, "127.0.0.1", 0)
        _make_flaky(listener, errno.ENOBUFS)
        clients.connect("127.0.0.1", listener.port)
        deadline = time.monotonic() + 10
        while not errors:
            assert time.monotonic() < deadline
            r.run_once(0.01)
        assert r.next_deadline() is not None
        listener.close()
        assert r.next_deadline() is None
        advance(r, 10)
        assert r.registered_count() == 0
        assert listener.accepted == 0
    finally:
        clients.close()
        r.close()


def test_unexpected_accept_error_pauses_too_and_is_reported_once(
        reactor: Reactor, clients: Clients, errors: List[Any]) -> None:
    # A persistent error (EPERM from a firewall hook, say) must not make the
    # loop spin or flood the log any more than EMFILE does.
    factory = Factory()
    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    listener.accept_retry_delay = 0.01
    _make_flaky(listener, errno.EPERM)
    try:
        clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: listener.accepted == 1)
        assert len(errors) == 1
        assert errors[0]["exception"].errno == errno.EPERM
        assert "unexpected error" in errors[0]["message"]
        assert "pausing this listener" in errors[0]["message"]
    finally:
        close_all(reactor, listener, factory)


@pytest.mark.parametrize("code", [errno.ECONNABORTED, errno.EPROTO])
def test_client_gone_before_accept_is_skipped_silently(
        code: int, reactor: Reactor, clients: Clients, errors: List[Any]) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    flaky = _make_flaky(listener, code)
    try:
        clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: listener.accepted == 1)
        assert flaky.raised_at  # the error did happen
        assert errors == []
        assert listener.accept_errors == 0
    finally:
        close_all(reactor, listener, factory)


def test_accepted_and_connected_sockets_have_nodelay(reactor: Reactor) -> None:
    server_side = Factory()
    client_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    connector = reactor.connect_tcp(client_side, "127.0.0.1", listener.port)
    try:
        run_until(reactor, lambda: connector.done() and server_side.protocols
                  and server_side.protocols[0].transport)
        for t in (server_side.protocols[0].transport, connector.transport):
            sock = t.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert sock.getblocking() is False
    finally:
        close_all(reactor, listener, server_side)
        close_all(reactor, None, client_side)


# -- connecting -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_connect_to_a_literal(host: str, reactor: Reactor, errors: List[Any]) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, host, 0)
    order: List[str] = []

    class Client(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            order.append("connection_made")

    done: List[Connector] = []
    connector = reactor.connect_tcp(Client, host, listener.port, timeout=5)
    connector.add_done_callback(lambda c: (order.append("done"), done.append(c)))
    assert not connector.done()  # never finishes inside connect_tcp()
    try:
        run_until(reactor, lambda: done)
        assert done == [connector]
        assert order == ["connection_made", "done"]
        assert connector.error is None
        assert isinstance(connector.protocol, Client)
        assert connector.transport is connector.protocol.transport
        assert "connected" in repr(connector)
        assert connector.transport.get_extra_info("peername")[:2] == (host, listener.port)
        assert reactor.next_deadline() is None  # the timeout timer was cancelled
        connector.transport.write(b"round trip")
        run_until(reactor, lambda: bytes(connector.protocol.data) == b"round trip")
        assert errors == []
    finally:
        close_all(reactor, listener, server_side)
        if connector.transport is not None:
            connector.transport.abort()
        reactor.run_once(0)


def test_connect_refused(reactor: Reactor, errors: List[Any]) -> None:
    port = free_port()
    done: List[Connector] = []
    made = Factory()
    connector = reactor.connect_tcp(made, "127.0.0.1", port, timeout=5)
    connector.add_done_callback(done.append)
    run_until(reactor, lambda: done)
    for _ in range(3):
        reactor.run_once(0)
    assert done == [connector]
    error = connector.error
    assert isinstance(error, ConnectError)
    assert isinstance(error.reason, ConnectionRefusedError)
    assert error.__cause__ is error.reason
    assert (error.host, error.port) == ("127.0.0.1", port)
    assert str(port) in str(error)
    assert connector.transport is None and connector.protocol is None
    assert made.protocols == []  # no protocol for a failed connection
    assert errors == []  # delivered to the done callback only
    assert "failed" in repr(connector)
    assert reactor.registered_count() == 0
    assert reactor.next_deadline() is None


def test_connect_tries_each_address_in_turn(reactor: Reactor) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    refused = free_port(socket.AF_INET6, "::1")
    reactor.getaddrinfo = lambda host, port, *a: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", refused, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", listener.port)),
    ]
    done: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "two.example.test", 1234, timeout=5)
    connector.add_done_callback(done.append)
    try:
        run_until(reactor, lambda: done)
        assert connector.error is None
        assert connector.transport.get_extra_info("peername") == ("127.0.0.1", listener.port)
    finally:
        close_all(reactor, listener, server_side)
        if connector.transport is not None:
            connector.transport.abort()
        reactor.run_once(0)


class _NoIPv6Sockets:
    """Makes ``socket.socket(AF_INET6, ...)`` fail as it does on a host
    with IPv6 disabled; everything else gets a real socket."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = socket.socket

        class NoV6(real):  # type: ignore[valid-type,misc]
            __slots__ = ()

            def __init__(self, family: int = -1, *args: Any, **kwargs: Any) -> None:
                if family == socket.AF_INET6:
                    raise OSError(errno.EAFNOSUPPORT, "Address family not supported")
                super().__init__(family, *args, **kwargs)

        monkeypatch.setattr(socket, "socket", NoV6)


def test_connect_skips_an_address_whose_socket_cannot_be_created(
        reactor: Reactor, errors: List[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    reactor.getaddrinfo = lambda host, port, *a: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
    ]
    _NoIPv6Sockets(monkeypatch)
    done: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "127.0.0.1", listener.port, timeout=5)
    connector.add_done_callback(done.append)
    try:
        run_until(reactor, lambda: done or errors, timeout=3)
        assert errors == []
        assert done == [connector]
        assert connector.error is None
        assert connector.transport.get_extra_info("peername")[0] == "127.0.0.1"
    finally:
        monkeypatch.undo()
        close_all(reactor, listener, server_side)
        if connector.transport is not None:
            connector.transport.abort()
        reactor.run_once(0)


def test_connect_fails_cleanly_when_no_socket_can_be_created(
        reactor: Reactor, errors: List[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _NoIPv6Sockets(monkeypatch)
    done: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "::1", 9, timeout=5)
    connector.add_done_callback(done.append)
    run_until(reactor, lambda: done or errors, timeout=3)
    monkeypatch.undo()
    assert errors == []
    assert done == [connector]
    assert isinstance(connector.error, ConnectError)
    assert connector.error.reason.errno == errno.EAFNOSUPPORT  # type: ignore[attr-defined]
    assert reactor.next_deadline() is None


def test_connect_failure_without_done_callback_goes_to_handler(
        reactor: Reactor, errors: List[Any]) -> None:
    connector = reactor.connect_tcp(Factory(), "127.0.0.1", free_port(), timeout=5)
    run_until(reactor, lambda: errors)
    assert len(errors) == 1
    assert errors[0]["connector"] is connector
    assert errors[0]["exception"] is connector.error
    assert isinstance(connector.error.reason, ConnectionRefusedError)  # type: ignore[union-attr]
    assert reactor.registered_count() == 0


def test_unknown_host(reactor: Reactor, errors: List[Any]) -> None:
    asked: List[Any] = []

    def fake_getaddrinfo(host: Any, port: Any, *args: Any) -> Any:
        asked.append((host, port, threading.current_thread() is threading.main_thread()))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    reactor.getaddrinfo = fake_getaddrinfo
    done: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "no-such-host.invalid", 80, timeout=5)
    connector.add_done_callback(done.append)
    run_until(reactor, lambda: done)
    assert asked == [("no-such-host.invalid", 80, False)]  # resolved off the loop thread
    assert isinstance(connector.error, ConnectError)
    assert isinstance(connector.error.reason, socket.gaierror)
    assert "no-such-host.invalid" in str(connector.error)
    assert errors == []


def test_literal_that_cannot_resolve(reactor: Reactor) -> None:
    def failing(*args: Any) -> Any:
        raise OSError(errno.EAFNOSUPPORT, "no such family")

    reactor.getaddrinfo = failing
    done: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "127.0.0.1", 80, timeout=5)
    connector.add_done_callback(done.append)
    assert done == []
    run_until(reactor, lambda: done)
    assert connector.error is not None
    assert connector.error.reason.errno == errno.EAFNOSUPPORT  # type: ignore[attr-defined]


def test_connect_timeout_while_resolving(reactor: Reactor, errors: List[Any]) -> None:
    release = threading.Event()
    returned = threading.Event()

    def slow_getaddrinfo(host: Any, port: Any, *args: Any) -> Any:
        try:
            release.wait(0.5)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", free_port()))]
        finally:
            returned.set()

    reactor.getaddrinfo = slow_getaddrinfo
    done: List[Connector] = []
    started = time.monotonic()
    connector = reactor.connect_tcp(Factory(), "slow.example.test", 80, timeout=0.05)
    connector.add_done_callback(done.append)
    try:
        run_until(reactor, lambda: done)
        assert time.monotonic() - started >= 0.05
        assert isinstance(connector.error, ConnectError)
        assert isinstance(connector.error.reason, TimeoutError)
        assert errors == []
    finally:
        release.set()
        assert returned.wait(5)
        executor = reactor._executor
        assert executor is not None
        executor.shutdown(wait=True)  # the worker has handed back its result
    for _ in range(3):
        reactor.run_once(0)  # the late result is ignored: no socket, no callback
    assert done == [connector]
    assert reactor.registered_count() == 0


def test_connect_timeout_is_measured_on_the_reactor_clock(errors: List[Any]) -> None:
    from reactor.testing import FakeClock, advance
    clock = FakeClock()
    r = Reactor(clock=clock)
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    release = threading.Event()
    r.getaddrinfo = lambda *a: (release.wait(5), [])[1]
    try:
        connector = r.connect_tcp(Factory(), "never.example.test", 80, timeout=30)
        advance(r, 29.5)
        assert not connector.done()
        advance(r, 0.5)
        assert connector.done()
        assert isinstance(connector.error.reason, TimeoutError)  # type: ignore[union-attr]
        assert len(errors) == 1  # no done callback: reported
    finally:
        release.set()
        if r._executor is not None:
            r._executor.shutdown(wait=True)
        r.close()


def test_cancel_before_resolution(reactor: Reactor, errors: List[Any]) -> None:
    done: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "127.0.0.1", free_port(), timeout=5)
    connector.add_done_callback(done.append)
    connector.cancel()
    connector.cancel()
    assert connector.done()
    assert "cancelled" in repr(connector)
    for _ in range(5):
        reactor.run_once(0.01)
    assert done == [] and errors == []
    assert reactor.registered_count() == 0
    assert reactor.next_deadline() is None


def test_cancel_while_connecting(reactor: Reactor, errors: List[Any]) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    made = Factory()
    done: List[Connector] = []
    connector = reactor.connect_tcp(made, "127.0.0.1", listener.port, timeout=5)
    connector.add_done_callback(done.append)
    try:
        reactor.run_once(0)  # resolves the literal and starts connect()
        sock = connector._sock
        assert sock is not None
        connector.cancel()
        assert sock.fileno() == -1
        for _ in range(5):
            reactor.run_once(0.01)
        assert done == [] and errors == [] and made.protocols == []
        assert connector.transport is None
    finally:
        close_all(reactor, listener, server_side)


def test_add_done_callback_after_done_runs_via_the_loop(reactor: Reactor,
                                                        errors: List[Any]) -> None:
    first: List[Connector] = []
    connector = reactor.connect_tcp(Factory(), "127.0.0.1", free_port(), timeout=5)
    connector.add_done_callback(first.append)
    run_until(reactor, lambda: first)
    late: List[Connector] = []
    connector.add_done_callback(late.append)
    assert late == []  # not from inside add_done_callback
    reactor.run_once(0)
    assert late == [connector]
    assert first == [connector]
    assert errors == []


def test_done_callback_raising_is_reported(reactor: Reactor, errors: List[Any]) -> None:
    boom = RuntimeError("callback broke")
    other: List[Connector] = []

    def bad(_c: Connector) -> None:
        raise boom

    connector = reactor.connect_tcp(Factory(), "127.0.0.1", free_port(), timeout=5)
    connector.add_done_callback(bad)
    connector.add_done_callback(other.append)
    run_until(reactor, lambda: errors)
    assert len(errors) == 1
    assert errors[0]["exception"] is boom
    assert errors[0]["callback"] is bad
    assert other == [connector]


def test_connect_protocol_factory_raising(reactor: Reactor, errors: List[Any]) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    failure = ValueError("no protocol for you")

    def factory() -> Protocol:
        raise failure

    done: List[Connector] = []
    connector = reactor.connect_tcp(factory, "127.0.0.1", listener.port, timeout=5)
    connector.add_done_callback(done.append)
    try:
        run_until(reactor, lambda: done)
        assert connector.error is not None and connector.error.reason is failure
        assert connector.transport is None
        # Reported once, as any exception from user code is, with its context.
        assert [(e["exception"], e["callback"], e["connector"]) for e in errors] == [
            (failure, factory, connector)]
    finally:
        close_all(reactor, listener, server_side)
        run_until(reactor, lambda: all(p.lost for p in server_side.protocols))


def test_connect_on_closed_reactor_raises() -> None:
    r = Reactor()
    r.close()
    with pytest.raises(RuntimeError):
        r.connect_tcp(Factory(), "127.0.0.1", 1)
    with pytest.raises(RuntimeError):
        r.listen_tcp(Factory(), "127.0.0.1", 0)


def test_results_for_users(reactor: Reactor) -> None:
    # ConnectError is a ConnectionError, so generic handlers catch it.
    err = ConnectError("::1", 80, ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert isinstance(err, ConnectionError)
    assert "[::1]:80" in str(err)


def test_repeated_emfile_is_reported_once_per_run_of_failures(
        reactor: Reactor, clients: Clients, errors: List[Any]) -> None:
    factory = Factory()
    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    listener.accept_retry_delay = 0.01
    _make_flaky(listener, errno.EMFILE, errno.EMFILE, errno.EMFILE)
    try:
        clients.connect("127.0.0.1", listener.port)
        run_until(reactor, lambda: listener.accepted == 1)
        assert listener.accept_errors == 3
        assert len(errors) == 1  # not once per retry
    finally:
        close_all(reactor, listener, factory)


def test_connect_fails_when_connection_made_raises(reactor: Reactor, errors: List[Any]) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    failure = ValueError("cannot start")
    lost: List[Optional[BaseException]] = []

    class Refuses(Protocol):
        def connection_made(self, transport: Any) -> None:
            raise failure

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            lost.append(exc)

    done: List[Connector] = []
    connector = reactor.connect_tcp(Refuses, "127.0.0.1", listener.port, timeout=5)
    connector.add_done_callback(done.append)
    try:
        run_until(reactor, lambda: done and lost)
        # The done callbacks see a failure, not a transport already aborted...
        assert isinstance(connector.error, ConnectError) and connector.error.reason is failure
        assert connector.transport is not None and connector.transport.is_closing()
        assert lost == [failure]
        # ...and the exception is reported exactly once, naming the callback.
        assert [e["exception"] for e in errors] == [failure]
        assert errors[0]["callback"].__name__ == "connection_made"
        assert errors[0]["protocol"] is connector.protocol
    finally:
        close_all(reactor, listener, server_side)
        run_until(reactor, lambda: all(p.lost for p in server_side.protocols))


def test_connection_made_raising_without_done_callback_is_reported_once(
        reactor: Reactor, errors: List[Any]) -> None:
    server_side = Factory()
    listener = reactor.listen_tcp(server_side, "127.0.0.1", 0)
    failure = ValueError("cannot start")

    class Refuses(Protocol):
        def connection_made(self, transport: Any) -> None:
            raise failure

    connector = reactor.connect_tcp(Refuses, "127.0.0.1", listener.port, timeout=5)
    try:
        run_until(reactor, lambda: connector.error is not None)
        reactor.run_once(0)
        assert [e["exception"] for e in errors] == [failure]
    finally:
        close_all(reactor, listener, server_side)
        run_until(reactor, lambda: all(p.lost for p in server_side.protocols))


def test_shutdown_reaches_every_connection_even_past_a_protocol_missing_a_callback(
        reactor: Reactor, errors: List[Any]) -> None:
    class NotAProtocol:  # duck-typed: no shutdown_requested, no pause_writing...
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            pass

        def eof_received(self) -> None:
            return None

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            self.lost = exc

    made: List[Any] = []

    def factory() -> Any:
        made.append(NotAProtocol() if len(made) % 2 == 0 else Protocol())
        return made[-1]

    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    peers = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(4)]
    try:
        run_until(reactor, lambda: len(listener.connections) == 4)
        done: List[bool] = []
        listener.shutdown(5, lambda: done.append(True))
        run_until(reactor, lambda: done)  # every one closed, none waited for the grace
        missing = [e for e in errors if isinstance(e["exception"], AttributeError)]
        assert len(missing) == 2
        assert all("NotAProtocol.shutdown_requested" in e["message"] for e in missing)
    finally:
        for peer in peers:
            peer.close()


def test_prepare_raising_drops_that_connection_and_the_listener_goes_on(
        reactor: Reactor, errors: List[Any]) -> None:
    calls: List[int] = []

    def prepare(sock: socket.socket) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("cannot tune this one")

    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    factory = Factory()
    listener = Listener(reactor, factory, [server], prepare=prepare)  # any listening socket
    try:
        first = socket.create_connection(("127.0.0.1", listener.port))
        second = socket.create_connection(("127.0.0.1", listener.port))
        run_until(reactor, lambda: len(calls) == 2 and len(factory.protocols) == 1)
        assert [(type(e["exception"]), e["callback"], e["listener"]) for e in errors] == [
            (ValueError, prepare, listener)]
        first.settimeout(5)
        assert first.recv(10) == b""  # that one was closed
        first.close()
        second.close()
    finally:
        close_all(reactor, listener, factory)
        run_until(reactor, lambda: all(p.lost for p in factory.protocols))


def test_closing_the_reactor_closes_a_connect_still_pending() -> None:
    """A connect the peer never answers (its backlog is full, so the SYN
    is dropped) when the reactor closes: its socket is closed then, with no
    ResourceWarning, and nobody is called."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the backlog (and its SYN queue) up
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        reactor = Reactor()
        called: List[Any] = []
        connector = reactor.connect_tcp(Protocol, "127.0.0.1", port, timeout=30)
        connector.add_done_callback(called.append)
        for _ in range(5):
            reactor.run_once(0.01)
        pending = not connector.done()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            reactor.close()
            gc.collect()
        assert pending and called == [] and "cancelled" in repr(connector)
        for filler in fillers:
            filler.close()
