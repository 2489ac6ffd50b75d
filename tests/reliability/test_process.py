"""Reliability items 8 and 15, on a real server process: running out of
file descriptors, and SIGTERM/SIGINT under load."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import List

import pytest

from ..procs import Server, python

pytestmark = pytest.mark.timeout(90)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def limited_server(nofile: int, *args: str) -> Server:
    """``reactor serve`` with RLIMIT_NOFILE lowered to ``nofile``."""
    code = ("import resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile})); "
            "from reactor.cli import main; sys.exit(main(sys.argv[1:]))")
    return Server([sys.executable, "-c", code, "serve", *args])


def connect_nowait(port: int, count: int) -> List[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def echo_ok(sock: socket.socket, payload: bytes = b"ping", timeout: float = 10) -> bool:
    sock.setblocking(True)
    sock.settimeout(timeout)
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(len(payload) - len(got))
        if not chunk:
            return False
        got += chunk
    return got == payload


def test_out_of_descriptors_does_not_spin_and_recovers() -> None:
    """Item 8: the loop does not spin (CPU time measured), the listener
    stays open, waiting clients are accepted once descriptors free up, and
    the failure is reported once, not per retry."""
    with limited_server(40, "echo", "--host", "127.0.0.1", "--port", "0") as server:
        clients = connect_nowait(server.port, 60)
        try:
            server.wait_for(r"^error: accept\(\) failed \(out of resources\); pausing")
            cpu_before = cpu_seconds(server.proc.pid)
            time.sleep(1.5)  # starved: a spinning loop would burn ~1.5 s of CPU here
            cpu_used = cpu_seconds(server.proc.pid) - cpu_before
            assert cpu_used < 0.5, f"server used {cpu_used:.2f}s of CPU while starved"
            while server._read(0.2):  # collect what it printed while we slept
                pass
            assert sum("accept() failed" in line for line in server.lines) == 1
            accepted = len([ln for ln in server.lines if ln.startswith("accepted connection")])
            assert 0 < accepted < 60
            # Free descriptors: the clients that were accepted go away...
            for sock in clients[:accepted]:
                sock.close()
            # ...and everyone who waited in the backlog is served.
            for sock in clients[accepted:]:
                assert echo_ok(sock)
            server.wait_for(r"^accepted connection", count=60, timeout=20)
        finally:
            for sock in clients:
                sock.close()
        assert server.stop(signal.SIGTERM) == 0


def test_sigterm_under_load_flushes_replies_and_refuses_new_clients() -> None:
    """Item 15: listeners close at once, in-flight replies are flushed,
    exit status 0."""
    small_sndbuf = (  # replies must wait in the transport's buffer, not the kernel's
        "import socket, sys\n"
        "_accept = socket.socket.accept\n"
        "def accept(self):\n"
        "    conn, addr = _accept(self)\n"
        "    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)\n"
        "    return conn, addr\n"
        "socket.socket.accept = accept\n"
        "from reactor.cli import main; sys.exit(main(sys.argv[1:]))")
    with Server(python("-c", small_sndbuf, "serve", "echo", "--host", "127.0.0.1",
                       "--port", "0", "--grace", "10")) as server:
        clients = []
        payload = os.urandom(60_000)
        try:
            for _ in range(50):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # replies queue up
                s.connect(("127.0.0.1", server.port))
                s.sendall(payload)
                clients.append(s)
            server.wait_for(r"^accepted connection", count=50)
            time.sleep(0.5)  # let the server read every request
            server.proc.send_signal(signal.SIGTERM)
            server.wait_for(r"^SIGTERM: shutting down$")
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            for s in clients:  # every reply arrives whole, then EOF
                s.settimeout(10)
                got = bytearray()
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                assert bytes(got) == payload
        finally:
            for s in clients:
                s.close()
        assert server.wait() == 0


@pytest.mark.parametrize("second_signal", [False, True])
def test_grace_period_then_abort_and_second_signal(second_signal: bool) -> None:
    """Item 15: a client that never reads keeps its connection open past the
    grace period, which then aborts it (exit 0); a second signal exits at
    once instead."""
    grace = "30" if second_signal else "0.5"
    with Server(python("-m", "reactor", "serve", "echo", "--host", "127.0.0.1", "--port", "0",
                       "--grace", grace)) as server:
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(("127.0.0.1", server.port))
        hog.setblocking(False)
        try:
            sent = 0
            until = time.monotonic() + 1.5
            while time.monotonic() < until:  # fill every buffer on the way
                try:
                    sent += hog.send(b"x" * 65536)
                except BlockingIOError:
                    time.sleep(0.01)
            assert sent > 0
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            server.wait_for(r"^SIGTERM: shutting down$")
            if second_signal:
                server.proc.send_signal(signal.SIGINT)
                code = server.wait(timeout=5)
                assert code == 1 and "second signal: exiting now" in server.lines
            else:
                with pytest.raises(OSError):  # listener closed while the hog is still open
                    socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
                assert server.proc.poll() is None
                assert server.wait(timeout=10) == 0
                assert time.monotonic() - started >= 0.5
            assert time.monotonic() - started < 5
        finally:
            hog.close()


def test_signal_wakes_a_loop_blocked_in_select() -> None:
    with Server(python("-m", "reactor", "serve", "read", "--host", "127.0.0.1",
                       "--timeout", "0")) as server:
        time.sleep(0.3)  # nothing to do: blocked in select() with no timeout
        started = time.monotonic()
        assert server.stop(signal.SIGINT) == 0
        assert time.monotonic() - started < 3
