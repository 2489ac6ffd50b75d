"""Bad input at a TLS server: plain text, a truncated ClientHello, silence,
a reset mid-handshake, a renegotiation attempt, and records that trickle
in one byte at a time.  Each ends that connection only, with one line on
the ``reactor.tls`` logger and no traceback; a bystander connection keeps
being served; nothing is reported to the exception handler; nothing
leaks (the autouse descriptor check and the reactor fixture's
registration check)."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import subprocess
import threading
import time
from typing import Any, Callable, Iterator, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor import Protocol, Reactor

from ..conftest import run_until
from ..tlscerts import Certs, handshake_in_memory, needs_openssl

pytestmark = [pytest.mark.timeout(60), needs_openssl]


class Echo(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Bystander(Protocol):
    """An ordinary TLS client that asks for an echo whenever told to."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.received = bytearray()
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


class Scene:
    def __init__(self, reactor: Reactor, certs: Certs,
                 caplog: pytest.LogCaptureFixture) -> None:
        self.reactor = reactor
        self.certs = certs
        self.caplog = caplog
        self.listener = reactor.listen_tcp(Echo, "127.0.0.1", 0, ssl=certs.server(),
                                           ssl_handshake_timeout=0.5)
        self.port = self.listener.port
        self.bystander = Bystander()
        reactor.connect_tcp(lambda: self.bystander, "localhost", self.port,
                            ssl=certs.client())
        run_until(reactor, lambda: self.bystander.transport is not None)
        self.check_bystander(b"before")
        caplog.clear()

    def check_bystander(self, message: bytes) -> None:
        self.bystander.received.clear()
        self.bystander.transport.write(message)
        run_until(self.reactor, lambda: bytes(self.bystander.received) == message)

    def run_in_thread(self, fn: Callable[[], None]) -> None:
        failures: List[BaseException] = []

        def guarded() -> None:
            try:
                fn()
            except BaseException as exc:  # pragma: no cover - shown by the assert
                failures.append(exc)

        thread = threading.Thread(target=guarded)
        thread.start()
        run_until(self.reactor, lambda: not thread.is_alive(), timeout=30)
        thread.join()
        assert not failures, failures

    def expect_one_line(self, *fragments: str) -> str:
        """The bad connection has gone (only the bystander is left), with
        exactly one log line, without a traceback, that says what went
        wrong; the bystander still works."""
        run_until(self.reactor, lambda: len(self.listener.connections) == 1 and
                  [r for r in self.caplog.records if r.name == "reactor.tls"])
        lines = [r for r in self.caplog.records if r.name == "reactor.tls"]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        record = lines[0]
        assert record.levelno == logging.WARNING and record.exc_info is None
        message = record.getMessage()
        assert "127.0.0.1:" in message
        assert any(f in message for f in fragments), message
        self.check_bystander(b"after")
        assert not self.bystander.lost
        return message

    def close(self) -> None:
        self.bystander.transport.close()
        run_until(self.reactor, lambda: self.bystander.lost and not self.listener.connections)
        assert self.bystander.lost == [None]
        self.listener.close()


@pytest.fixture
def scene(reactor: Reactor, tls_certs: Certs, caplog: pytest.LogCaptureFixture,
          errors: List[Any]) -> Iterator[Scene]:
    caplog.set_level(logging.INFO, logger="reactor")
    scene = Scene(reactor, tls_certs, caplog)
    yield scene
    scene.close()
    assert errors == []  # routine: nothing for the exception handler


def client_hello(certs: Certs) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = certs.client().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[0] == 0x16 and len(hello) > 100
    return hello


def test_plain_text(scene: Scene) -> None:
    def talk() -> None:
        with socket.create_connection(("127.0.0.1", scene.port), timeout=10) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            plain.recv(1000)  # the alert, or the close

    scene.run_in_thread(talk)
    message = scene.expect_one_line("does not speak TLS")
    assert "http request" in message.lower()


def test_a_truncated_client_hello(scene: Scene) -> None:
    hello = client_hello(scene.certs)

    def talk() -> None:
        with socket.create_connection(("127.0.0.1", scene.port), timeout=10) as raw:
            raw.sendall(hello[:len(hello) // 2])
            raw.shutdown(socket.SHUT_WR)
            assert raw.recv(1000) == b""

    scene.run_in_thread(talk)
    scene.expect_one_line("closed the connection during the TLS handshake")


def test_a_client_that_sends_nothing_meets_the_handshake_deadline(scene: Scene) -> None:
    with socket.create_connection(("127.0.0.1", scene.port), timeout=10) as silent:
        started = time.monotonic()
        scene.expect_one_line("not done within 0.5s")
        assert time.monotonic() - started < 5
        assert silent.recv(1000) == b""


def test_a_reset_mid_handshake(scene: Scene) -> None:
    hello = client_hello(scene.certs)
    raw = socket.create_connection(("127.0.0.1", scene.port), timeout=10)
    raw.sendall(hello[:60])
    run_until(scene.reactor, lambda: len(scene.listener.connections) == 2)
    for _ in range(5):
        scene.reactor.run_once(0.01)  # the server reads what came
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # an RST
    scene.expect_one_line("reset")


def test_a_renegotiation_attempt(scene: Scene) -> None:
    """OpenSSL 3 servers refuse a client's renegotiation; the client
    gives up with an alert.  Interactive s_client renegotiates on a line
    that is just ``R``."""
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{scene.port}",
                             "-tls1_2", "-CAfile", str(scene.certs.cert),
                             "-servername", "localhost"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)

    def talk() -> None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"first\n")
        proc.stdin.flush()
        for line in proc.stdout:  # the session summary, then our echo
            if line == b"first\n":
                break
        proc.stdin.write(b"R\n")
        proc.stdin.flush()
        proc.stdout.read()  # until s_client exits
        proc.stdin.close()

    try:
        scene.run_in_thread(talk)
        scene.expect_one_line("handshake failure", "no renegotiation")
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def test_records_in_one_byte_tcp_segments(scene: Scene) -> None:
    """256 KiB of records sent one byte per TCP segment (Nagle off) come
    back whole.  (The 10 MiB version runs in memory below: on loopback a
    one-byte send costs about 6 us, a minute for 10 MiB.)"""
    size = 256 * 1024
    payload = bytes(range(256)) * (size // 256)
    got = bytearray()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", scene.port), timeout=20) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = scene.certs.client().wrap_bio(incoming, outgoing,
                                                server_hostname="localhost")

            def send_trickled() -> None:
                wire = outgoing.read()
                for i in range(len(wire)):
                    raw.send(wire[i:i + 1])

            def pump() -> None:
                data = raw.recv(65536)
                assert data, "the server closed"
                incoming.write(data)

            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    send_trickled()
                    pump()
            send_trickled()
            tls.write(payload)
            send_trickled()
            while len(got) < size:
                try:
                    got.extend(tls.read(65536))
                except ssl.SSLWantReadError:
                    pump()
            with pytest.raises(ssl.SSLWantReadError):
                tls.unwrap()  # ours goes out; theirs comes back
            send_trickled()
            while True:
                data = raw.recv(65536)
                if not data:
                    break

    scene.run_in_thread(trickle)
    assert bytes(got) == payload
    run_until(scene.reactor, lambda: len(scene.listener.connections) == 1)
    assert not [r for r in scene.caplog.records if r.name == "reactor.tls"]


# -- the record framing, in memory ------------------------------------------------------


class Count(Protocol):
    def __init__(self) -> None:
        self.received = bytearray()

    def data_received(self, data: bytes) -> None:
        self.received += data


def handshaken_pair(certs: Certs) -> Any:
    reactor = Reactor()
    app = Count()
    layer, _transport, client, outgoing = handshake_in_memory(certs, app, reactor)
    return reactor, app, layer, client, outgoing


@pytest.mark.timeout(120)
def test_10_mib_fed_one_byte_at_a_time(tls_certs: Certs) -> None:
    reactor, app, layer, client, outgoing = handshaken_pair(tls_certs)
    try:
        payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)
        feed = layer.data_received
        for start in range(0, len(payload), 1 << 20):  # a MiB of records at a time
            client.write(payload[start:start + (1 << 20)])
            wire = outgoing.read()
            for i in range(len(wire)):
                feed(wire[i:i + 1])
            assert len(app.received) == start + (1 << 20)  # every record, as it completed
        assert app.received == payload
    finally:
        reactor.close()


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=40_000), max_size=12))
def test_any_split_of_the_records_delivers_everything(tls_certs: Certs,
                                                      cuts: List[int]) -> None:
    reactor, app, layer, client, outgoing = handshaken_pair(tls_certs)
    try:
        payload = b"".join(bytes([n % 251]) * n for n in (1, 100, 16384, 20000, 5))
        for n in (1, 100, 16384, 20000, 5):  # records of many sizes
            client.write(bytes([n % 251]) * n)
        wire = outgoing.read()
        position = 0
        for cut in cuts:
            feed = wire[position:position + cut]
            if feed:
                layer.data_received(feed)
            position += cut
        if position < len(wire):
            layer.data_received(wire[position:])
        assert app.received == payload
    finally:
        reactor.close()


def test_garbage_after_the_handshake_fails_at_once(tls_certs: Certs,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Bytes that are not TLS records are not waited for as if they were."""
    reactor, app, layer, client, outgoing = handshaken_pair(tls_certs)
    try:
        layer.data_received(b"\x00\x03\x03\xff\xff")  # no such record type
        assert layer.closing
        assert [r.name for r in caplog.records] == ["reactor.tls"]
    finally:
        reactor.close()
