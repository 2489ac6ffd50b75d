"""TLS interop beyond our own two ends (issue 14): ``openssl s_server`` and
Python's blocking ``ssl`` module as the server for our client, Python's
blocking ``ssl`` client against our server, ALPN with every peer, and an
expired server certificate.  (``openssl s_client`` against our server is in
test_tls.py.)  Certificates are made at run time with the openssl command.

Every connection here ends cleanly: close_notify both ways, so
``connection_lost`` receives ``None``.  That holds for ``s_server -rev``
too: OpenSSL 3.0 answers our close_notify with its own before it closes
the socket (its ``-msg`` trace shows both alerts, and the test checks
them).  A peer that only closed the socket would be a truncation: our
``connection_lost`` would receive an ``ssl.SSLEOFError``."""

from __future__ import annotations

import logging
import os
import random
import re
import selectors
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from reactor import Protocol, Reactor
from reactor.tcp import has_ipv6_loopback

from ..conftest import run_until
from ..tlscerts import Certs, needs_openssl

pytestmark = [pytest.mark.timeout(30), needs_openssl]

MIB = 1024 * 1024
#: Not a repeating pattern: a record delivered twice or out of order shows.
PAYLOAD = random.Random(14).randbytes(MIB)
VERSIONS = {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}
NO_IPV6 = "no IPv6 loopback here (::1 cannot be bound)"


def loopback(host: str) -> str:
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip(NO_IPV6)
    return host


class Peer(Protocol):
    """Our end of a TLS connection: writes ``send`` once connected, keeps
    what comes, the TLS facts and every callback, and closes once
    ``expect`` bytes came (unless ``close`` is false: then the peer is to
    end it)."""

    def __init__(self, send: bytes = b"", expect: Optional[int] = None,
                 close: bool = True) -> None:
        self.send = send
        self.expect = len(send) if expect is None else expect
        self.close = close
        self.received = bytearray()
        self.events: List[Any] = []
        self.facts: Dict[str, Any] = {}
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")
        self.transport = transport
        self.facts = {name: transport.get_extra_info(name)
                      for name in ("peercert", "cipher", "alpn_protocol", "peername")}
        self.facts["version"] = transport.get_extra_info("ssl_object").version()
        if self.send:
            transport.write(self.send)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.close and len(self.received) >= self.expect and not self.transport.is_closing():
            self.transport.close()

    def eof_received(self) -> Optional[bool]:
        self.events.append("eof")
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))

    @property
    def lost(self) -> bool:
        return any(isinstance(e, tuple) for e in self.events)


def connect(reactor: Reactor, client: Peer, host: str, port: int, context: ssl.SSLContext,
            done: List[Any]) -> Any:
    connector = reactor.connect_tcp(lambda: client, host, port, ssl=context,
                                    server_hostname="localhost")
    connector.add_done_callback(done.append)
    return connector


# -- openssl s_server ---------------------------------------------------------------------


def read_accept_line(proc: "subprocess.Popen[bytes]", timeout: float = 10.0) -> int:
    """s_server's port, from the ``ACCEPT host:port`` line it prints once it
    listens: the wait for it is bounded, and no blind sleep."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            found = re.search(rb"^ACCEPT \S+:(\d+)\r?\n", seen, re.MULTILINE)
            if found:
                return int(found.group(1))
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"s_server did not listen within {timeout}s: {seen!r}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"s_server exited before it listened: {seen!r}")
            seen += chunk


@contextmanager
def s_server(certs: Certs, host: str,
             *options: str) -> Iterator[Tuple["subprocess.Popen[bytes]", int]]:
    """``openssl s_server`` on ``host``, port 0 (it prints the port it got,
    so no port is guessed), for one connection, reversing each line."""
    accept = f"[{host}]:0" if ":" in host else f"{host}:0"
    proc = subprocess.Popen(["openssl", "s_server", "-accept", accept, "-naccept", "1",
                             "-cert", str(certs.cert), "-key", str(certs.key), "-rev",
                             *options],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    try:
        yield proc, read_accept_line(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes the pipes


def finished(proc: "subprocess.Popen[bytes]") -> Tuple[bytes, bytes]:
    """s_server's output, once it has ended after its one connection."""
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return out, err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_our_client_against_openssl_s_server(reactor: Reactor, tls_certs: Certs, version: str,
                                             host: str) -> None:
    host = loopback(host)
    # -msg: s_server traces each TLS message (a few kB: the pipe holds it).
    with s_server(tls_certs, host, version, "-msg") as (proc, port):
        client = Peer(b"ping over TLS to s_server\n")
        done: List[Any] = []
        connect(reactor, client, host, port, tls_certs.client(), done)
        run_until(reactor, lambda: client.lost)
        (connector,) = done
        assert connector.error is None and connector.protocol is client
        out, err = finished(proc)
    # -rev: the line comes back reversed, so it went through s_server.
    assert client.received == b"revres_s ot SLT revo gnip\n", err
    assert client.facts["version"] == VERSIONS[version]
    assert client.facts["peercert"]["subject"] == ((("commonName", "localhost"),),)
    assert client.facts["cipher"] is not None
    assert client.facts["peername"][0] == host
    # We sent close_notify; s_server answered with its own: a clean close.
    assert client.events == ["made", ("lost", None)]
    alerts = re.findall(rb"^(<<<|>>>) TLS 1\.[23], Alert \[length 0002\], (.*)$", out,
                        re.MULTILINE)
    assert alerts == [(b"<<<", b"warning close_notify"), (b">>>", b"warning close_notify")], out
    assert b"CONNECTION CLOSED" in err  # s_server read our close_notify as the end


# -- Python's blocking ssl module as the peer -----------------------------------------------


class Thread(threading.Thread):
    """A peer in a thread: whatever it raises is kept for the test to
    re-raise, and the test always joins it."""

    def __init__(self, target: Any) -> None:
        super().__init__(target=self._guarded, daemon=True)
        self._work = target
        self.error: Optional[BaseException] = None

    def _guarded(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # re-raised by the test
            self.error = exc

    def result(self) -> None:
        self.join(10)
        assert not self.is_alive(), "the peer thread did not finish"
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize("first", ["we-close-first", "peer-closes-first"])
def test_our_client_against_pythons_blocking_ssl_server(reactor: Reactor, tls_certs: Certs,
                                                        first: str) -> None:
    """1 MiB each way, then close_notify both ways, whoever starts it."""
    we_close = first == "we-close-first"
    listening = socket.create_server(("127.0.0.1", 0))
    listening.settimeout(10)
    port = listening.getsockname()[1]
    unwrapped: List[bool] = []

    def serve() -> None:
        with listening:
            conn, _ = listening.accept()
        conn.settimeout(10)
        # suppress_ragged_eofs=False: recv() returns b"" for close_notify
        # only; a bare EOF raises.
        with tls_certs.server().wrap_socket(conn, server_side=True,
                                            suppress_ragged_eofs=False) as tls:
            received = 0
            while received < MIB:
                chunk = tls.recv(65536)
                assert chunk, "our client ended the connection early"
                received += len(chunk)
                tls.sendall(chunk)
            if we_close:
                assert tls.recv(1) == b""  # our close_notify
            tls.unwrap()  # sends its close_notify; returns once it has ours too
            unwrapped.append(True)

    thread = Thread(serve)
    thread.start()
    try:
        client = Peer(PAYLOAD, close=we_close)
        done: List[Any] = []
        connect(reactor, client, "127.0.0.1", port, tls_certs.client(), done)
        run_until(reactor, lambda: client.lost or not thread.is_alive())
        thread.result()
        run_until(reactor, lambda: client.lost)
    finally:
        thread.join(10)
        listening.close()  # if accept() never came
    assert done[0].error is None
    assert client.received == PAYLOAD
    assert unwrapped == [True]
    if we_close:
        assert client.events == ["made", ("lost", None)]
    else:  # the peer's close_notify is the protocol's EOF, and we answer it
        assert client.events == ["made", "eof", ("lost", None)]


def test_pythons_blocking_ssl_client_against_our_server(reactor: Reactor,
                                                        tls_certs: Certs) -> None:
    """It sends 1 MiB and unwraps: our server's protocol hears the EOF and
    loses the connection cleanly, and the client's unwrap() returns, so our
    close_notify reached it."""
    servers: List[Peer] = []

    def make() -> Peer:
        servers.append(Peer(close=False))
        return servers[-1]

    listener = reactor.listen_tcp(make, "127.0.0.1", 0, ssl=tls_certs.server())
    after_unwrap: List[bytes] = []

    def send() -> None:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as raw, \
                tls_certs.client().wrap_socket(raw, server_hostname="localhost",
                                               suppress_ragged_eofs=False) as tls:
            tls.sendall(PAYLOAD)
            plain = tls.unwrap()  # close_notify both ways, or it raises
            after_unwrap.append(plain.recv(1))  # then our server closes the TCP stream

    thread = Thread(send)
    thread.start()
    try:
        run_until(reactor, lambda: not thread.is_alive())
        thread.result()
        run_until(reactor, lambda: servers and servers[0].lost)
    finally:
        thread.join(10)
    (server,) = servers
    assert server.received == PAYLOAD
    assert server.events == ["made", "eof", ("lost", None)]
    assert after_unwrap == [b""]
    run_until(reactor, lambda: not listener.connections)
    listener.close()


# -- ALPN ------------------------------------------------------------------------------------


def alpn_server_context(certs: Certs) -> ssl.SSLContext:
    context = certs.server()
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def alpn_client_context(certs: Certs) -> ssl.SSLContext:
    context = certs.client()
    context.set_alpn_protocols(["http/1.1"])
    return context


def test_alpn_between_our_client_and_our_server(reactor: Reactor, tls_certs: Certs) -> None:
    servers: List[Peer] = []

    class Echo(Peer):
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    def make() -> Peer:
        servers.append(Echo(close=False))
        return servers[-1]

    listener = reactor.listen_tcp(make, "127.0.0.1", 0, ssl=alpn_server_context(tls_certs))
    client = Peer(b"GET / HTTP/1.1\r\n\r\n")
    done: List[Any] = []
    connect(reactor, client, "127.0.0.1", listener.port, alpn_client_context(tls_certs), done)
    run_until(reactor, lambda: client.lost and servers and servers[0].lost)
    (server,) = servers
    assert client.facts["alpn_protocol"] == "http/1.1"
    assert server.facts["alpn_protocol"] == "http/1.1"
    assert done[0].transport.get_extra_info("alpn_protocol") == "http/1.1"
    assert client.events == ["made", ("lost", None)]
    assert server.events == ["made", "eof", ("lost", None)]
    listener.close()


def test_alpn_with_openssl_s_client_against_our_server(reactor: Reactor,
                                                       tls_certs: Certs) -> None:
    servers: List[Peer] = []

    def make() -> Peer:
        servers.append(Peer(close=False))
        return servers[-1]

    listener = reactor.listen_tcp(make, "127.0.0.1", 0, ssl=alpn_server_context(tls_certs))
    # stdin at its end at once: s_client shakes hands, prints the session
    # (with the ALPN it got), then sends close_notify and exits.
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{listener.port}",
                             "-alpn", "http/1.1", "-CAfile", str(tls_certs.cert),
                             "-verify_return_error", "-servername", "localhost"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    outputs: List[Tuple[bytes, bytes]] = []
    thread = Thread(lambda: outputs.append(proc.communicate(timeout=10)))
    thread.start()
    try:
        run_until(reactor, lambda: not thread.is_alive())
        thread.result()
    finally:
        thread.join(10)
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    ((out, err),) = outputs
    assert proc.returncode == 0, err
    assert b"ALPN protocol: http/1.1" in out, out
    run_until(reactor, lambda: servers and servers[0].lost)
    (server,) = servers
    assert server.facts["alpn_protocol"] == "http/1.1"
    # How it ended is not asserted here: s_client closes its socket right
    # after its close_notify, so whether ours meets a FIN or a reset (data
    # it never read) is up to timing.
    assert server.events[0] == "made"
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_alpn_with_our_client_against_openssl_s_server(reactor: Reactor,
                                                       tls_certs: Certs) -> None:
    with s_server(tls_certs, "127.0.0.1", "-alpn", "h2,http/1.1") as (proc, port):
        client = Peer(b"which protocol\n")
        connect(reactor, client, "127.0.0.1", port, alpn_client_context(tls_certs), [])
        run_until(reactor, lambda: client.lost)
        out, err = finished(proc)
    assert client.received == b"locotorp hcihw\n", err
    assert client.facts["alpn_protocol"] == "http/1.1"
    assert b"ALPN protocols selected: http/1.1" in out, out
    assert client.events == ["made", ("lost", None)]


# -- an expired certificate ------------------------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["TLSv1.2", "TLSv1.3"])
def test_an_expired_server_certificate_fails_the_connect(
        reactor: Reactor, tls_certs: Certs, caplog: pytest.LogCaptureFixture,
        version: ssl.TLSVersion) -> None:
    caplog.set_level(logging.DEBUG, logger="reactor.tls")
    made: List[str] = []

    class Never(Protocol):
        def __init__(self, side: str) -> None:
            self.side = side

        def connection_made(self, transport: Any) -> None:
            made.append(self.side)

    listener = reactor.listen_tcp(lambda: Never("server"), "127.0.0.1", 0,
                                  ssl=tls_certs.server(expired=True))
    # Trust the expired certificate itself, so that its date is all that is
    # wrong with it.  (With tls_certs.client(), which trusts cert.pem, it
    # fails first as an untrusted self-signed certificate: verify code 18,
    # and its date is never looked at.)
    context = ssl.create_default_context(cafile=str(tls_certs.expired))
    context.minimum_version = context.maximum_version = version
    connector = reactor.connect_tcp(lambda: Never("client"), "127.0.0.1", listener.port,
                                    ssl=context, server_hostname="localhost")
    failed: List[Any] = []
    connector.add_done_callback(lambda c: failed.append(c.error))
    run_until(reactor, lambda: failed and not listener.connections)
    (error,) = failed
    assert isinstance(error.reason, ssl.SSLCertVerificationError)
    assert error.reason.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED
    assert "expired" in error.reason.verify_message
    assert connector.protocol is None and connector.transport is None
    assert made == []  # neither protocol ever had a connection
    run_until(reactor, lambda: connector.stream.get_protocol() is None)
    # The server heard the client's alert: one line, at WARNING, no traceback.
    (line,) = [r for r in caplog.records if r.name == "reactor.tls"]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert "certificate expired" in line.getMessage()
    listener.close()
