"""The Transport contract over TLS: STARTTLS (bytes already buffered on
either side), flow control that counts plaintext waiting for the
handshake, errors in the user's protocol, deadlines, graceful shutdown,
the shutdown timeout, and pausing reads."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, List, Optional

import pytest

from reactor import DeadlineExceeded, Protocol, Reactor, start_tls
from reactor.tls import TLSLayer

from ..conftest import run_until
from ..tlscerts import Certs, handshake_in_memory, needs_openssl

pytestmark = [pytest.mark.timeout(30), needs_openssl]


class Echo(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Recorder(Protocol):
    """Keeps every callback, in order, with what it was given."""

    def __init__(self, send: bytes = b"", close_after: Optional[int] = None) -> None:
        self.send = send
        self.close_after = close_after
        self.events: List[Any] = []
        self.received = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.events.append(("made", type(transport).__name__))
        self.transport = transport
        if self.send:
            transport.write(self.send)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.close_after is not None and len(self.received) >= self.close_after:
            self.transport.close()

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))

    @property
    def lost(self) -> bool:
        return any(isinstance(e, tuple) and e[0] == "lost" for e in self.events)


# -- STARTTLS ---------------------------------------------------------------------------


class StartTLSServer(Protocol):
    """Plain lines until ``STARTTLS``; then TLS, echoing."""

    def __init__(self, certs: Certs, reply: bool) -> None:
        self.certs = certs
        self.reply = reply
        self.buffered_at_upgrade = b""
        self.tls_transport: Any = None
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport: Any) -> None:
        if self.tls_transport is None and not hasattr(self, "plain"):
            self.plain = transport
            self.inbox = b""
        else:
            self.tls_transport = transport

    def data_received(self, data: bytes) -> None:
        if self.tls_transport is not None:
            self.tls_transport.write(data)
            return
        self.inbox += data
        if b"\n" in self.inbox:
            line, rest = self.inbox.split(b"\n", 1)
            assert line == b"STARTTLS"
            if self.reply:
                self.plain.write(b"OK go ahead\n")  # plaintext, before the handshake
            self.buffered_at_upgrade = rest
            start_tls(self.plain, self.certs.server(), server_side=True, buffered=rest)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


class StartTLSClient(Recorder):
    def __init__(self, certs: Certs, pipelined: bool) -> None:
        super().__init__()
        self.certs = certs
        self.pipelined = pipelined
        self.plain_reply = b""
        self.upgraded = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.upgraded:  # the TLS one
            transport.write(b"secret " * 1000)
            return
        transport.write(b"STARTTLS\n")
        if self.pipelined:  # the ClientHello follows at once, in the same segment
            self.upgrade(transport)

    def upgrade(self, transport: Any) -> None:
        self.upgraded = True
        start_tls(transport, self.certs.client(), server_hostname="localhost")

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.plain_reply += data
            if self.plain_reply.endswith(b"\n"):
                self.upgrade(self.transport)
            return
        super().data_received(data)
        if len(self.received) == len(b"secret " * 1000):
            self.transport.close()


@pytest.mark.parametrize("pipelined", [False, True], ids=["reply-first", "pipelined"])
def test_start_tls_upgrades_a_live_connection(reactor: Reactor, tls_certs: Certs,
                                              pipelined: bool) -> None:
    servers: List[StartTLSServer] = []

    def make() -> StartTLSServer:
        servers.append(StartTLSServer(tls_certs, reply=not pipelined))
        return servers[-1]

    listener = reactor.listen_tcp(make, "127.0.0.1", 0)
    client = StartTLSClient(tls_certs, pipelined)
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.lost)
    server, = servers
    assert client.received == b"secret " * 1000
    assert client.events[0] == ("made", "StreamTransport")
    assert client.events[1] == ("made", "TLSTransport")
    assert client.events[-1] == ("lost", None)
    if pipelined:
        # The start of the ClientHello came with the command and was handed over.
        assert server.buffered_at_upgrade[:1] == b"\x16"  # a TLS handshake record
    else:
        assert client.plain_reply == b"OK go ahead\n"
    assert server.tls_transport.get_extra_info("cipher") is not None
    run_until(reactor, lambda: server.lost)
    assert server.lost == [None]
    listener.close()


def test_start_tls_failure_reaches_connection_lost(reactor: Reactor, tls_certs: Certs) -> None:
    """The protocol had a connection before the upgrade, so a failed
    handshake is its connection_lost."""
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0)  # echoes the ClientHello back
    client = Recorder()
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.transport is not None)
    start_tls(client.transport, tls_certs.client(), server_hostname="localhost")
    run_until(reactor, lambda: client.lost)
    kind, exc = client.events[-1]
    assert isinstance(exc, ssl.SSLError)
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_start_tls_needs_a_live_stream(reactor: Reactor, tls_certs: Certs) -> None:
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0)
    client = Recorder()
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.transport is not None)
    with pytest.raises(ValueError, match="server_hostname"):
        start_tls(client.transport, tls_certs.client())
    client.transport.close()
    with pytest.raises(RuntimeError, match="open connection"):
        start_tls(client.transport, tls_certs.client(), server_hostname="localhost")
    run_until(reactor, lambda: client.lost and not listener.connections)
    listener.close()


def test_writes_before_the_handshake_count_for_flow_control(reactor: Reactor,
                                                            tls_certs: Certs) -> None:
    """What the protocol writes while STARTTLS is under way waits as
    plaintext; it counts against the high-water mark, then goes out
    encrypted, in order."""
    got = bytearray()

    class Sink(Protocol):
        def connection_made(self, transport: Any) -> None:
            if not isinstance(transport.get_extra_info("ssl_object"), ssl.SSLObject):
                start_tls(transport, tls_certs.server(), server_side=True)

        def data_received(self, data: bytes) -> None:
            got.extend(data)

    listener = reactor.listen_tcp(Sink, "127.0.0.1", 0)
    client = Recorder()
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.transport is not None)
    layer = start_tls(client.transport, tls_certs.client(), server_hostname="localhost")
    tls = layer.transport
    _low, high = tls.get_write_buffer_limits()
    payload = bytes(range(256)) * (2 * high // 256 + 1)
    tls.write(payload)
    assert tls.get_write_buffer_size() >= len(payload)
    assert client.events[-1] == "pause"
    run_until(reactor, lambda: len(got) == len(payload))
    assert bytes(got) == payload
    flow = [e for e in client.events if e in ("pause", "resume")]
    assert flow == ["pause", "resume"]  # once each, in that order
    tls.close()
    run_until(reactor, lambda: client.lost and not listener.connections)
    listener.close()


# -- the user's protocol ----------------------------------------------------------------


def test_an_error_in_the_protocol_is_reported_with_its_own_context(
        reactor: Reactor, tls_certs: Certs, errors: List[Any]) -> None:
    class Broken(Protocol):
        def data_received(self, data: bytes) -> None:
            raise ValueError("bad request")

    lost: List[Optional[BaseException]] = []

    class Watched(Broken):
        def connection_lost(self, exc: Optional[BaseException]) -> None:
            lost.append(exc)

    listener = reactor.listen_tcp(Watched, "127.0.0.1", 0, ssl=tls_certs.server())
    victim = Recorder(b"boom")
    reactor.connect_tcp(lambda: victim, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: victim.lost and lost)
    context, = errors
    assert isinstance(context["exception"], ValueError)
    assert context["message"] == "exception in Watched.data_received()"
    assert isinstance(context["protocol"], Watched)
    assert type(context["transport"]).__name__ == "TLSTransport"
    assert isinstance(lost[0], ValueError)
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_idle_deadline_goes_to_the_protocol_and_closes_with_close_notify(
        reactor: Reactor, tls_certs: Certs) -> None:
    seen: List[DeadlineExceeded] = []

    class Idle(Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
            seen.append(exc)
            self.transport.write(b"bye\n")  # a goodbye still goes out, encrypted
            return None

    listener = reactor.listen_tcp(Idle, "127.0.0.1", 0, ssl=tls_certs.server(),
                                  idle_timeout=0.2)
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: client.lost)
    assert [e.kind for e in seen] == ["idle"]
    assert client.received == b"bye\n"
    assert client.events[-1] == ("lost", None)  # the server's close_notify came first
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_graceful_shutdown_sends_close_notify(reactor: Reactor, tls_certs: Certs) -> None:
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder(b"hello")
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: client.received == b"hello")
    done: List[bool] = []
    listener.shutdown(grace=5, on_done=lambda: done.append(True))
    run_until(reactor, lambda: client.lost and done)
    assert client.events[-1] == ("lost", None)


def test_a_peer_that_never_answers_close_notify_meets_the_shutdown_timeout(
        reactor: Reactor, tls_certs: Certs) -> None:
    server = Recorder()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server(),
                                  ssl_shutdown_timeout=0.3)
    ready = threading.Event()
    finished = threading.Event()

    def mute_peer() -> None:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as raw:
            tls = tls_certs.client().wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"hi")
            ready.set()
            # Never read again, so never answer the close_notify; wait for
            # the server to give up and close the TCP connection.
            finished.wait(10)
            tls.close()

    thread = threading.Thread(target=mute_peer)
    thread.start()
    run_until(reactor, lambda: server.received == b"hi")
    server.transport.close()
    assert server.transport.is_closing() and not server.lost
    run_until(reactor, lambda: server.lost, timeout=5)
    finished.set()
    thread.join()
    assert server.events[-1] == ("lost", None)
    listener.close()


def test_pause_reading_holds_decrypted_data(reactor: Reactor, tls_certs: Certs) -> None:
    server = Recorder()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: server.transport is not None and client.transport is not None)
    server.transport.pause_reading()
    assert not server.transport.is_reading()
    client.transport.write(b"x" * 50_000)
    for _ in range(20):
        reactor.run_once(0.01)
    assert len(server.received) < 50_000
    server.transport.resume_reading()
    run_until(reactor, lambda: len(server.received) == 50_000)
    client.transport.close()
    run_until(reactor, lambda: client.lost and server.lost)
    listener.close()


def test_a_tls_layer_shows_its_state(reactor: Reactor, tls_certs: Certs) -> None:
    layer = TLSLayer(Echo(), tls_certs.server(), server_side=True)
    assert "handshaking" in repr(layer) and "Echo" in repr(layer)


# -- the end of the stream while reading is paused ----------------------------------------


class PausesAtFirst(Protocol):
    def __init__(self) -> None:
        self.events: List[Any] = []
        self.received = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.events.append("data")
        if len(self.events) == 1:
            self.transport.pause_reading()

    def eof_received(self) -> Optional[bool]:
        self.events.append(("eof", self.received))
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc, self.received))


@pytest.mark.parametrize("ending", ["close_notify", "truncated"])
def test_the_end_waits_for_data_the_application_has_not_read(tls_certs: Certs,
                                                             ending: str) -> None:
    """Records and the peer's close_notify (or a bare EOF) in one read,
    while the application has paused reading: it gets every byte first,
    then the end."""
    reactor = Reactor()
    try:
        app = PausesAtFirst()
        layer, transport, client, outgoing = handshake_in_memory(tls_certs, app, reactor)
        client.write(b"x" * 50_000)
        if ending == "close_notify":
            with pytest.raises(ssl.SSLWantReadError):
                client.unwrap()
        transport.feed(outgoing.read())
        if ending == "truncated":
            transport.feed_eof()
        assert app.events == ["data"] and not transport.is_closing()
        layer.transport.resume_reading()
        for _ in range(3):
            reactor.run_once(0)
        assert app.received == 50_000
        kind, exc, received = app.events[-1]
        assert kind == "lost" and received == 50_000
        if ending == "close_notify":
            assert app.events[-2] == ("eof", 50_000) and exc is None
        else:
            assert isinstance(exc, ssl.SSLEOFError)
    finally:
        reactor.close()


def test_a_reconnecting_client_over_tls(reactor: Reactor, tls_certs: Certs) -> None:
    """A refused certificate is a failed attempt (with backoff); a trusted
    one is a connection, followed again after the server drops it."""
    from reactor import ReconnectingClient

    made: List[Any] = []

    class Once(Protocol):
        def connection_made(self, transport: Any) -> None:
            made.append(transport)
            transport.close()  # the server drops every connection at once

    listener = reactor.listen_tcp(Once, "127.0.0.1", 0, ssl=tls_certs.server())
    attempts: List[Any] = []
    distrusting = ReconnectingClient(reactor, Recorder, "127.0.0.1", listener.port,
                                     initial_delay=0.02, jitter=0, ssl=True,
                                     server_hostname="localhost",
                                     on_attempt=attempts.append)
    distrusting.start()
    run_until(reactor, lambda: len(attempts) >= 2)
    distrusting.stop()
    assert all(isinstance(a.error.reason, ssl.SSLCertVerificationError) for a in attempts)
    assert distrusting.transport is None

    connected: List[Any] = []
    trusting = ReconnectingClient(reactor, Recorder, "127.0.0.1", listener.port,
                                  initial_delay=0.02, jitter=0, ssl=tls_certs.client(),
                                  server_hostname="localhost",
                                  on_attempt=lambda a: connected.append(a) if a.error is None
                                  else None)
    trusting.start()
    run_until(reactor, lambda: len(connected) >= 3)  # connected, dropped, connected again...
    assert type(trusting.transport).__name__ in ("TLSTransport", "NoneType")
    trusting.stop()
    run_until(reactor, lambda: not listener.connections)
    listener.close()


# -- found in review: each failed before its fix ----------------------------------------


def blocking_peer(port: int, certs: Certs, script: Any) -> threading.Thread:
    """Python's blocking ssl client running ``script(tls_socket)``."""
    def run() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with certs.client().wrap_socket(raw, server_hostname="localhost") as tls:
                script(tls)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_writes_made_during_start_tls_go_before_connection_made_writes(
        reactor: Reactor, tls_certs: Certs) -> None:
    got = bytearray()

    class Sink(Protocol):
        def connection_made(self, transport: Any) -> None:
            if transport.get_extra_info("ssl_object") is None:
                start_tls(transport, tls_certs.server(), server_side=True)

        def data_received(self, data: bytes) -> None:
            got.extend(data)

    class Upgrader(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if transport.get_extra_info("ssl_object") is None:
                layer = start_tls(transport, tls_certs.client(), server_hostname="localhost")
                layer.transport.write(b"FIRST ")
            else:
                transport.write(b"SECOND")
                transport.close()  # a close here keeps what was queued

    listener = reactor.listen_tcp(Sink, "127.0.0.1", 0)
    client = Upgrader()
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.lost and not listener.connections)
    assert bytes(got) == b"FIRST SECOND"
    listener.close()


def test_close_while_reading_is_paused_does_not_wait_for_the_timeout(
        reactor: Reactor, tls_certs: Certs) -> None:
    server = Recorder()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server(),
                                  ssl_shutdown_timeout=20)
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: server.transport is not None and client.transport is not None)
    server.transport.pause_reading()
    server.transport.close()
    run_until(reactor, lambda: server.lost and client.lost, timeout=5)  # not 20
    assert server.events[-1] == ("lost", None) and client.events[-1] == ("lost", None)
    listener.close()


def test_close_inside_data_received_with_more_records_unread(
        reactor: Reactor, tls_certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    """Two requests in one segment; the first makes the server close: a
    clean close_notify exchange, no error, no log, nothing more delivered."""
    class CloseAtFirst(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.transport.close()

    server = CloseAtFirst()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())
    replies: List[Any] = []

    def pipelined(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"GET 1\n")
        tls.sendall(b"GET 2\n")
        replies.append(tls.recv(100))  # b"": the server's close_notify
        tls.unwrap()

    thread = blocking_peer(listener.port, tls_certs, pipelined)
    run_until(reactor, lambda: server.lost and not thread.is_alive())
    thread.join()
    assert server.events[-1] == ("lost", None)
    assert bytes(server.received).startswith(b"GET 1\n")
    assert replies == [b""]
    assert not [r for r in caplog.records if r.name == "reactor.tls"]
    listener.close()


def test_nothing_is_delivered_after_abort(reactor: Reactor, tls_certs: Certs) -> None:
    class AbortAtFirst(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.events.append("data")
            self.transport.abort()

    server = AbortAtFirst()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: client.transport is not None)
    for n in range(5):
        client.transport.write(b"record %d" % n)  # five records, likely one segment
    run_until(reactor, lambda: server.lost and client.lost)
    assert server.events.count("data") == 1
    listener.close()


def test_cancel_during_the_handshake(reactor: Reactor, tls_certs: Certs) -> None:
    """A server that accepts and never answers: the connect is not done
    while the handshake waits; cancel() closes it and calls nobody."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        client = Recorder()
        connector = reactor.connect_tcp(lambda: client, "127.0.0.1", mute.getsockname()[1],
                                        ssl=tls_certs.client(), server_hostname="localhost")
        called: List[Any] = []
        connector.add_done_callback(called.append)
        run_until(reactor, lambda: connector.stream is not None)
        assert not connector.done() and "handshake" in repr(connector)
        connector.add_done_callback(called.append)  # not called at once either
        connector.cancel()
        run_until(reactor, lambda: connector.stream.get_protocol() is None)
        for _ in range(3):
            reactor.run_once(0)
        assert called == [] and client.events == []
        accepted, _ = mute.accept()
        accepted.close()


def test_start_tls_with_reading_paused(reactor: Reactor, tls_certs: Certs) -> None:
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder()
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.transport is not None)
    client.transport.pause_reading()
    start_tls(client.transport, tls_certs.client(), server_hostname="localhost",
              ssl_handshake_timeout=5)
    run_until(reactor, lambda: ("made", "TLSTransport") in client.events, timeout=3)
    with pytest.raises(RuntimeError, match="TLS already"):
        start_tls(client.transport, tls_certs.client(), server_hostname="localhost")
    client.transport.close()
    run_until(reactor, lambda: client.lost and not listener.connections)
    listener.close()


def test_resume_inside_data_received_does_not_nest_callbacks(
        reactor: Reactor, tls_certs: Certs) -> None:
    depth = [0]
    seen: List[Any] = []

    class Juggler(Recorder):
        def data_received(self, data: bytes) -> None:
            depth[0] += 1
            seen.append((data, depth[0]))
            if data == b"one":
                self.transport.pause_reading()
            elif data == b"two":
                self.transport.pause_reading()
                self.transport.resume_reading()  # and "three" must wait for us to return
            depth[0] -= 1

    server = Juggler()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())

    def three_records(tls: ssl.SSLSocket) -> None:
        for word in (b"one", b"two", b"three"):
            tls.sendall(word)
        tls.unwrap()

    thread = blocking_peer(listener.port, tls_certs, three_records)
    run_until(reactor, lambda: seen and server.transport is not None)
    for _ in range(10):
        reactor.run_once(0.01)
    server.transport.resume_reading()
    run_until(reactor, lambda: server.lost and not thread.is_alive())
    thread.join()
    assert [d for d, _ in seen] == [b"one", b"two", b"three"]
    assert all(level == 1 for _, level in seen)
    listener.close()


def test_sni_is_sent_even_without_host_name_checking(reactor: Reactor,
                                                     tls_certs: Certs) -> None:
    names: List[Optional[str]] = []
    context = tls_certs.server()
    context.sni_callback = lambda sslobj, name, ctx: names.append(name)  # type: ignore
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=context)
    pinned = tls_certs.client()
    pinned.check_hostname = False
    client = Recorder(b"x", close_after=1)
    reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port, ssl=pinned,
                        server_hostname="service.internal")
    run_until(reactor, lambda: client.lost and not listener.connections)
    assert names == ["service.internal"]
    listener.close()


def test_plaintext_waiting_for_the_handshake_is_capped(reactor: Reactor,
                                                       tls_certs: Certs) -> None:
    from reactor import WriteBufferFull

    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        client = Recorder()
        reactor.connect_tcp(lambda: client, "127.0.0.1", mute.getsockname()[1],
                            max_write_buffer=100_000)
        run_until(reactor, lambda: client.transport is not None)
        layer = start_tls(client.transport, tls_certs.client(), server_hostname="localhost")
        for _ in range(3):
            layer.transport.write(b"x" * 40_000)
        run_until(reactor, lambda: client.lost)
        kind, exc = client.events[-1]
        assert isinstance(exc, WriteBufferFull)
        assert client.events.count("pause") == 1
        accepted, _ = mute.accept()
        accepted.close()


def test_writelines_and_the_connection_settings_over_tls(reactor: Reactor,
                                                         tls_certs: Certs) -> None:
    """writelines() encrypts each piece in order; the settings of the
    connection (deadlines, buffer limits) are the stream transport's."""
    server = Recorder()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: server.transport is not None and client.transport is not None)
    tls = client.transport
    tls.writelines([b"one ", bytearray(b"two "), memoryview(b"three")])
    run_until(reactor, lambda: bytes(server.received) == b"one two three")
    tls.set_write_timeout(7)
    tls.set_idle_timeout(9)
    tls.set_max_lifetime(11)
    tls.set_max_write_buffer(1 << 20)
    tls.set_write_buffer_limits(high=4096)
    assert (tls.get_write_timeout(), tls.get_idle_timeout(), tls.get_max_lifetime(),
            tls.get_max_write_buffer()) == (7, 9, 11, 1 << 20)
    assert tls.get_write_buffer_limits()[1] == 4096
    assert tls.can_write_eof() is False and tls.is_reading()
    assert tls.get_extra_info("compression") is None  # OpenSSL leaves it off
    assert tls.get_extra_info("ssl_object").version() == "TLSv1.3"
    assert tls.get_extra_info("peername")[0] in ("127.0.0.1", "::1")
    assert "TLSTransport over" in repr(tls)
    with pytest.raises(TypeError):
        tls.write("text")
    tls.close()
    run_until(reactor, lambda: client.lost and server.lost)
    listener.close()


def test_a_tls_peer_that_stops_reading_meets_the_write_timeout(reactor: Reactor,
                                                               tls_certs: Certs) -> None:
    class Flood(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.fill()

        def fill(self) -> None:
            while not self.paused and not self.transport.is_closing():
                self.transport.write(b"x" * 65536)

        paused = False

        def pause_writing(self) -> None:
            super().pause_writing()
            self.paused = True

        def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
            self.events.append(("deadline", exc.kind))
            return None

    server = Flood()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server(),
                                  write_timeout=0.3)
    done = threading.Event()

    def never_reads(tls: ssl.SSLSocket) -> None:
        done.wait(10)

    thread = blocking_peer(listener.port, tls_certs, never_reads)
    run_until(reactor, lambda: server.lost, timeout=10)
    done.set()
    thread.join()
    assert ("deadline", "write") in server.events
    kind, exc = server.events[-1]
    assert isinstance(exc, DeadlineExceeded) and exc.kind == "write"
    assert server.transport.get_write_buffer_size() == 0  # dropped, nothing kept
    listener.close()


def test_pause_and_resume_writing_follow_the_stream_below(reactor: Reactor,
                                                          tls_certs: Certs) -> None:
    """A TLS server writing 8 MiB to a client that stops reading for a
    while: pause_writing, then resume_writing once the client reads again,
    and every byte arrives."""
    total = 8 * 1024 * 1024

    class Producer(Recorder):
        sent = 0
        paused = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.produce()

        def produce(self) -> None:
            while not self.paused and self.sent < total:
                self.transport.write(b"z" * 65536)
                self.sent += 65536
            if self.sent >= total:
                self.transport.close()

        def pause_writing(self) -> None:
            super().pause_writing()
            self.paused = True

        def resume_writing(self) -> None:
            super().resume_writing()
            self.paused = False
            self.produce()

    server = Producer()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: client.transport is not None)
    client.transport.pause_reading()
    run_until(reactor, lambda: "pause" in server.events)
    client.transport.resume_reading()
    run_until(reactor, lambda: client.lost, timeout=20)
    assert len(client.received) == total and client.events[-1] == ("lost", None)
    flow = [e for e in server.events if e in ("pause", "resume")]
    assert flow[:2] == ["pause", "resume"]
    assert all(a != b for a, b in zip(flow, flow[1:]))  # strictly alternating
    run_until(reactor, lambda: server.lost)
    listener.close()


def test_connection_made_raising_fails_the_connect(reactor: Reactor, tls_certs: Certs,
                                                   errors: List[Any]) -> None:
    class Broken(Protocol):
        def connection_made(self, transport: Any) -> None:
            raise RuntimeError("not today")

    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=tls_certs.server())
    connector = reactor.connect_tcp(Broken, "localhost", listener.port,
                                    ssl=tls_certs.client())
    failed: List[Any] = []
    connector.add_done_callback(lambda c: failed.append(c.error))
    run_until(reactor, lambda: failed and not listener.connections)
    assert isinstance(failed[0].reason, RuntimeError)
    context, = errors  # reported once, with the protocol's own context
    assert context["message"] == "exception in Broken.connection_made()"
    assert type(context["transport"]).__name__ == "TLSTransport"
    listener.close()


def test_a_protocol_may_finish_its_work_before_a_graceful_shutdown(
        reactor: Reactor, tls_certs: Certs) -> None:
    class Finisher(Recorder):
        def shutdown_requested(self) -> Optional[bool]:
            self.events.append("asked")
            reactor.call_later(0.1, self.finish)
            return True

        def finish(self) -> None:
            self.transport.write(b"last words")
            self.transport.close()

    server = Finisher()
    listener = reactor.listen_tcp(lambda: server, "127.0.0.1", 0, ssl=tls_certs.server())
    client = Recorder()
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=tls_certs.client())
    run_until(reactor, lambda: server.transport is not None and client.transport is not None)
    listener.shutdown(grace=5)
    run_until(reactor, lambda: client.lost)
    assert "asked" in server.events
    assert client.received == b"last words" and client.events[-1] == ("lost", None)
