"""Unix domain sockets: the TCP contract over a path, and what is particular
to the file (stale, live, not a socket, removed on close, mode), abstract
names, peer credentials, and adopting sockets."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

from reactor import ConnectError, DeadlineExceeded, Protocol, Reactor
from reactor.unix import UnixListener

from ..conftest import run_until

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets here")]


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Short: a Unix socket path has at most 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="rx-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Echo(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Client(Protocol):
    def __init__(self, send: bytes = b"") -> None:
        self.send = send
        self.received = bytearray()
        self.eof = False
        self.lost: List[Optional[BaseException]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.send:
            transport.write(self.send)
            transport.write_eof()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def eof_received(self) -> Optional[bool]:
        self.eof = True
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


def test_echo_with_half_close(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "echo.sock")
    listener = reactor.listen_unix(Echo, path)
    assert isinstance(listener, UnixListener) and listener.path == path
    client = Client(b"x" * 300_000)  # more than one socket buffer: flow control
    connector = reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: client.lost)
    assert connector.error is None and client.eof and client.lost == [None]
    assert bytes(client.received) == b"x" * 300_000
    listener.close()
    assert not os.path.exists(path)


def test_a_blocking_python_client(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "s")
    listener = reactor.listen_unix(Echo, path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
        peer.connect(path)
        peer.sendall(b"hello")
        got = bytearray()
        while len(got) < 5:
            reactor.run_once(0.05)
            peer.setblocking(False)
            try:
                got += peer.recv(100)
            except BlockingIOError:
                pass
        assert got == b"hello"
    run_until(reactor, lambda: not listener.connections)
    listener.close()


def test_a_stale_socket_file_is_replaced(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "stale.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # its server died without removing the file
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    listener = reactor.listen_unix(Echo, path)
    client = Client(b"still works")
    reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"still works"
    listener.close()


def test_a_live_server_is_left_alone(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "live.sock")
    first = reactor.listen_unix(Echo, path)
    inode = os.stat(path).st_ino
    with pytest.raises(OSError, match="a server is listening there") as caught:
        reactor.listen_unix(Echo, path)
    assert caught.value.errno == errno.EADDRINUSE and path in str(caught.value)
    assert os.stat(path).st_ino == inode  # the file is untouched
    client = Client(b"first still serves")
    reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"first still serves"
    first.close()


def test_a_file_that_is_not_a_socket_is_never_removed(reactor: Reactor,
                                                      sockdir: Path) -> None:
    path = sockdir / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(OSError, match="not a socket") as caught:
        reactor.listen_unix(Echo, str(path))
    assert caught.value.errno == errno.EADDRINUSE and path.read_text() == "keep me"


def test_close_removes_only_its_own_file(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "mine.sock")
    listener = reactor.listen_unix(Echo, path)
    os.unlink(path)  # someone else takes the path over
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(path)
        listener.close()
        assert os.path.exists(path)  # not ours any more: left alone
    os.unlink(path)


def test_mode_is_set_before_anyone_can_connect(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "private.sock")
    listener = reactor.listen_unix(Echo, path, mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listener.close()
    listener = reactor.listen_unix(Echo, path, mode=0o666)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    listener.close()


@pytest.mark.skipif(not os.path.exists("/proc/net/unix"), reason="abstract names are Linux's")
def test_an_abstract_name(reactor: Reactor) -> None:
    name = f"\0reactor-test-{uuid.uuid4().hex}"
    listener = reactor.listen_unix(Echo, name)
    assert repr(listener) == f"<UnixListener @{name[1:]}>"
    client = Client(b"no file at all")
    reactor.connect_unix(lambda: client, name)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"no file at all"
    with pytest.raises(ValueError, match="no file, so no mode"):
        reactor.listen_unix(Echo, name + "-2", mode=0o600)
    with pytest.raises(OSError, match="address in use|Address already in use"):
        reactor.listen_unix(Echo, name)
    listener.close()


@pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="SO_PEERCRED is Linux's")
def test_peer_credentials(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "cred.sock")
    seen: List[Any] = []

    class Who(Protocol):
        def connection_made(self, transport: Any) -> None:
            seen.append(transport.get_extra_info("peercred"))
            transport.close()

    listener = reactor.listen_unix(Who, path)
    client = Client()
    reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: client.lost)
    assert seen == [(os.getpid(), os.getuid(), os.getgid())]
    tcp = reactor.listen_tcp(Who, "127.0.0.1", 0)
    reactor.connect_tcp(Client, "127.0.0.1", tcp.port)
    run_until(reactor, lambda: len(seen) == 2)
    assert seen[1] is None  # not a Unix socket
    run_until(reactor, lambda: not tcp.connections)
    tcp.close()
    listener.close()


def test_connect_failures_name_the_path(reactor: Reactor, sockdir: Path) -> None:
    errors: List[Any] = []
    missing = str(sockdir / "nobody.sock")
    reactor.connect_unix(Client, missing).add_done_callback(lambda c: errors.append(c.error))
    stale = str(sockdir / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(stale)
    reactor.connect_unix(Client, stale).add_done_callback(lambda c: errors.append(c.error))
    run_until(reactor, lambda: len(errors) == 2)
    by_reason = {type(e.reason): e for e in errors}
    assert set(by_reason) == {FileNotFoundError, ConnectionRefusedError}
    gone = by_reason[FileNotFoundError]
    assert isinstance(gone, ConnectError) and gone.port is None and gone.host == missing
    assert str(gone).startswith(f"cannot connect to {missing}: ")


def test_a_full_backlog_is_retried_until_accepted(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "busy.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    waiting: List[socket.socket] = []
    try:
        while True:  # fill the backlog until connect would block
            peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            peer.setblocking(False)
            if peer.connect_ex(path) == errno.EAGAIN:
                peer.close()
                break
            waiting.append(peer)
            assert len(waiting) < 100
        client = Client()
        connector = reactor.connect_unix(lambda: client, path, timeout=10)
        for _ in range(5):
            reactor.run_once(0.02)
        assert not connector.done()  # retrying, not failed
        server.setblocking(False)
        accepted = []

        def drain() -> bool:
            try:
                while True:
                    accepted.append(server.accept()[0])
            except BlockingIOError:
                pass
            return connector.done()
        run_until(reactor, drain)
        assert connector.error is None and connector.transport is not None
        connector.transport.abort()
        run_until(reactor, lambda: client.lost)
        for conn in accepted:
            conn.close()
    finally:
        for peer in waiting:
            peer.close()
        server.close()


def test_deadlines_apply(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "idle.sock")
    lost: List[Optional[BaseException]] = []

    class Quiet(Protocol):
        def connection_lost(self, exc: Optional[BaseException]) -> None:
            lost.append(exc)

    listener = reactor.listen_unix(Quiet, path, idle_timeout=0.1)
    client = Client()
    reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: lost and client.lost)
    assert isinstance(lost[0], DeadlineExceeded) and lost[0].kind == "idle"
    assert client.eof  # the server closed it
    listener.close()


def test_adopting_bound_sockets_and_connected_ones(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "adopted.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    listener = reactor.listen_unix(Echo, sock=unix)
    client = Client(b"adopted unix")
    reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"adopted unix"
    listener.close()
    assert os.path.exists(path)  # we did not make it: not ours to remove
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as spare:
        with pytest.raises(ValueError, match="takes no path"):
            reactor.listen_unix(Echo, path, sock=spare)

    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    listener = reactor.listen_tcp(Echo, sock=tcp)
    port = listener.port
    client = Client(b"adopted tcp")
    reactor.connect_tcp(lambda: client, "127.0.0.1", port)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"adopted tcp"
    listener.close()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wrong:
        with pytest.raises(ValueError, match="needs a bound TCP socket"):
            reactor.listen_tcp(Echo, sock=wrong)

    a, b = socket.socketpair()
    client = Client(b"a socketpair")
    reactor.connect_accepted_socket(Echo, a)
    reactor.connect_accepted_socket(lambda: client, b)
    run_until(reactor, lambda: client.lost)
    assert client.received == b"a socketpair"


def test_graceful_shutdown_reaches_unix_connections(reactor: Reactor, sockdir: Path) -> None:
    path = str(sockdir / "bye.sock")
    reactor.listen_unix(Echo, path)
    client = Client()
    reactor.connect_unix(lambda: client, path)
    run_until(reactor, lambda: hasattr(client, "transport"))
    reactor.call_soon(reactor.shutdown, 1.0)
    reactor.run()
    assert client.eof or client.lost
    assert not os.path.exists(path)  # the listener closed, and took its file


def test_the_file_goes_when_the_listener_cannot_be_made(reactor: Reactor,
                                                        sockdir: Path) -> None:
    path = str(sockdir / "never.sock")
    with pytest.raises(ValueError):
        reactor.listen_unix(Echo, path, max_connections=0)
    assert not os.path.exists(path)


def test_a_relative_path_is_removed_after_a_chdir(reactor: Reactor, sockdir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sockdir)
    listener = reactor.listen_unix(Echo, "rel.sock")
    monkeypatch.chdir("/")
    listener.close()
    assert not (sockdir / "rel.sock").exists()


def test_a_path_too_long_says_why(reactor: Reactor, sockdir: Path) -> None:
    with pytest.raises(OSError, match="cannot listen on .*: .*too long"):
        reactor.listen_unix(Echo, str(sockdir / ("x" * 200)))
