"""TLS over the stream transports: our server with Python's ssl client,
our client against our server, the handshake deadline, plain text at a TLS
port, truncation, and half-close.  Certificates are made at run time with
the openssl command."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, List, Optional

import pytest

from reactor import Protocol, Reactor
from reactor.tls import tls_factory

from ..conftest import run_until
from ..tlscerts import Certs, needs_openssl

pytestmark = [pytest.mark.timeout(30), needs_openssl]


@pytest.fixture
def certs(tls_certs: Certs) -> Certs:
    return tls_certs


def server_context(certs: Certs) -> ssl.SSLContext:
    return certs.server()


def client_context(certs: Certs) -> ssl.SSLContext:
    return certs.client()


class Echo(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Client(Protocol):
    def __init__(self, send: bytes = b"") -> None:
        self.send = send
        self.received = bytearray()
        self.lost: List[Optional[BaseException]] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.send:
            transport.write(self.send)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if len(self.received) >= len(self.send):
            self.transport.close()

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


def test_our_server_with_pythons_ssl_client(reactor: Reactor, certs: Any) -> None:
    listener = reactor.listen_tcp(tls_factory(Echo, server_context(certs), server_side=True),
                                  "127.0.0.1", 0)
    got: List[Any] = []

    def talk() -> None:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as raw:
            with client_context(certs).wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"x" * 100_000)
                data = b""
                while len(data) < 100_000:
                    data += tls.recv(65536)
                got.append((data, tls.version()))
                tls.unwrap()

    thread = threading.Thread(target=talk)
    thread.start()
    run_until(reactor, lambda: not thread.is_alive())
    thread.join()
    (data, version), = got
    assert data == b"x" * 100_000 and version in ("TLSv1.2", "TLSv1.3")
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_our_client_against_our_server(reactor: Reactor, certs: Any) -> None:
    seen: List[Any] = []

    class Facts(Echo):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            seen.append((transport.get_extra_info("cipher"),
                         transport.get_extra_info("ssl_object").version(),
                         transport.get_extra_info("peername")))

    listener = reactor.listen_tcp(tls_factory(Facts, server_context(certs), server_side=True),
                                  "127.0.0.1", 0)
    client = Client(b"over TLS " * 1000)
    reactor.connect_tcp(tls_factory(lambda: client, client_context(certs), server_side=False,
                                    server_hostname="localhost"), "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"over TLS " * 1000 and client.lost == [None]
    assert client.transport.get_extra_info("server_hostname") == "localhost"
    assert client.transport.get_extra_info("peercert")["subject"]
    (cipher, version, peer), = seen
    assert cipher is not None and version.startswith("TLSv1.") and peer[0] == "127.0.0.1"
    with pytest.raises(RuntimeError, match="no half-close"):
        client.transport.write_eof()
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_a_wrong_host_name_fails_the_connect(reactor: Reactor, certs: Any,
                                             caplog: pytest.LogCaptureFixture) -> None:
    listener = reactor.listen_tcp(tls_factory(Echo, server_context(certs), server_side=True),
                                  "127.0.0.1", 0)
    client = Client(b"never sent")
    connector = reactor.connect_tcp(lambda: client, "127.0.0.1", listener.port,
                                    ssl=client_context(certs), server_hostname="not-this-host")
    failed: List[Any] = []
    connector.add_done_callback(lambda c: failed.append(c.error))
    run_until(reactor, lambda: failed and not listener.connections)
    error, = failed
    assert isinstance(error.reason, ssl.SSLCertVerificationError)
    assert "not-this-host" in str(error.reason)
    assert client.transport is None  # the application never saw a connection
    assert connector.protocol is None and connector.stream is not None
    run_until(reactor, lambda: connector.stream.get_protocol() is None)
    # The server heard the client's alert: one line, no traceback.
    lines = [r for r in caplog.records if r.name == "reactor.tls"]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "unknown ca" in lines[0].getMessage() or "bad certificate" in lines[0].getMessage()
    listener.close()


def test_a_silent_client_meets_the_handshake_deadline(reactor: Reactor, certs: Any) -> None:
    lost: List[Optional[BaseException]] = []

    class Watch(Protocol):
        def connection_lost(self, exc: Optional[BaseException]) -> None:
            lost.append(exc)

    def factory() -> Any:
        layer = tls_factory(Echo, server_context(certs), server_side=True,
                            handshake_timeout=0.2)()
        original = layer.connection_lost

        def noted(exc: Optional[BaseException]) -> None:
            lost.append(exc)
            original(exc)
        layer.connection_lost = noted  # type: ignore[method-assign]
        return layer

    listener = reactor.listen_tcp(factory, "127.0.0.1", 0)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as silent:
        run_until(reactor, lambda: lost)
        assert isinstance(lost[0], TimeoutError) and "handshake" in str(lost[0])
        silent.settimeout(5)
        assert silent.recv(100) == b""  # closed on it
    listener.close()


def test_plain_text_at_a_tls_port_ends_that_connection_only(reactor: Reactor, certs: Any,
                                                            errors: List[Any]) -> None:
    listener = reactor.listen_tcp(tls_factory(Echo, server_context(certs), server_side=True),
                                  "127.0.0.1", 0)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
        run_until(reactor, lambda: not listener.connections)
    client = Client(b"still served")
    reactor.connect_tcp(tls_factory(lambda: client, client_context(certs), server_side=False,
                                    server_hostname="localhost"), "127.0.0.1", listener.port)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"still served"
    listener.close()


def test_an_eof_without_close_notify_is_a_truncation(reactor: Reactor, certs: Any) -> None:
    class Listening(Client):
        def data_received(self, data: bytes) -> None:
            self.received += data  # and waits for more: no close of ours

    server = Listening()
    listener = reactor.listen_tcp(tls_factory(lambda: server, server_context(certs),
                                              server_side=True), "127.0.0.1", 0)

    def cut() -> None:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as raw:
            tls = client_context(certs).wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"half a mess")
            # End the TCP stream under TLS (a FIN, no close_notify).
            with socket.socket(fileno=tls.detach()) as under:
                under.shutdown(socket.SHUT_WR)
                under.settimeout(10)
                while under.recv(65536):  # until the server closes too
                    pass

    thread = threading.Thread(target=cut)
    thread.start()
    run_until(reactor, lambda: server.lost)
    thread.join()
    assert server.received == b"half a mess"
    assert isinstance(server.lost[0], ssl.SSLEOFError)
    listener.close()


def test_the_ssl_keywords_on_tcp_and_unix(reactor: Reactor, certs: Any, tmp_path: Path) -> None:
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=server_context(certs))
    client = Client(b"keyword TLS")
    reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=client_context(certs))
    run_until(reactor, lambda: client.lost)
    assert client.received == b"keyword TLS" and client.lost == [None]
    run_until(reactor, lambda: not listener.connections)
    listener.close()

    path = str(tmp_path / "tls.sock")
    unix = reactor.listen_unix(Echo, path, ssl=server_context(certs))
    client = Client(b"TLS over a Unix socket")
    reactor.connect_unix(lambda: client, path, ssl=client_context(certs),
                         server_hostname="localhost")
    run_until(reactor, lambda: client.lost)
    assert client.received == b"TLS over a Unix socket"
    with pytest.raises(ValueError, match="server_hostname"):
        reactor.connect_unix(Client, path, ssl=client_context(certs))
    run_until(reactor, lambda: not unix.connections)
    unix.close()


def test_ssl_true_checks_against_the_system_roots(reactor: Reactor, certs: Any) -> None:
    listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=server_context(certs))
    client = Client(b"x")
    connector = reactor.connect_tcp(lambda: client, "localhost", listener.port, ssl=True)
    failed: List[Any] = []
    connector.add_done_callback(lambda c: failed.append(c.error))
    run_until(reactor, lambda: failed)
    assert isinstance(failed[0].reason, ssl.SSLCertVerificationError)
    assert "self-signed" in failed[0].reason.verify_message
    assert client.transport is None  # a self-signed certificate: never connected
    run_until(reactor, lambda: not listener.connections)
    listener.close()


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_openssl_s_client_against_our_server(reactor: Reactor, certs: Any, version: str,
                                             host: str) -> None:
    from reactor.tcp import has_ipv6_loopback

    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    listener = reactor.listen_tcp(Echo, host, 0, ssl=server_context(certs))
    target = f"[{host}]:{listener.port}" if ":" in host else f"{host}:{listener.port}"
    proc = subprocess.Popen(["openssl", "s_client", "-connect", target, version,
                             "-CAfile", str(certs[0]), "-verify_return_error",
                             "-servername", "localhost", "-quiet", "-no_ign_eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out: List[bytes] = []

    def talk() -> None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"ping over openssl\n")
        proc.stdin.flush()
        out.append(proc.stdout.readline())
        proc.stdin.close()

    thread = threading.Thread(target=talk)
    thread.start()
    run_until(reactor, lambda: not thread.is_alive(), timeout=20)
    assert out == [b"ping over openssl\n"], proc.stderr.read() if proc.stderr else ""
    run_until(reactor, lambda: proc.poll() is not None, timeout=20)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_a_context_for_the_wrong_side_is_refused_at_once(reactor: Reactor,
                                                         certs: Any) -> None:
    with pytest.raises(ValueError, match="server context"):
        reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=client_context(certs))
    with pytest.raises(ValueError, match="client context"):
        reactor.connect_tcp(Echo, "127.0.0.1", 1, ssl=server_context(certs),
                            server_hostname="localhost")
    with pytest.raises(TypeError, match="SSLContext"):
        reactor.connect_tcp(Echo, "127.0.0.1", 1, ssl="yes")  # type: ignore[arg-type]
