"""The conversation protocols on real loopback sockets: many concurrent
clients, and idle deadlines that close only the silent ones."""

from __future__ import annotations

import socket
import time
from typing import List

import pytest

from reactor import Reactor
from reactor.conversations import Settings, serve


def _clients(reactor: Reactor, port: int, host: str, count: int) -> List[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    for _ in range(count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
    return socks


def _recv_exactly(reactor: Reactor, run, socks: List[socket.socket], size: int) -> List[bytes]:
    got = {s: b"" for s in socks}

    def poll() -> bool:
        for s in socks:
            while len(got[s]) < size:
                try:
                    chunk = s.recv(size - len(got[s]))
                except BlockingIOError:
                    break
                if not chunk:
                    break
                got[s] += chunk
        return all(len(v) >= size for v in got.values())

    run(reactor, poll, timeout=20, step=0.01)
    return [got[s] for s in socks]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_200_concurrent_echo_clients_with_records_split(reactor: Reactor, run, host: str) -> None:
    listener = serve(reactor, "echo", host, 0, settings=Settings(record_size=250),
                     log=lambda line: None)
    socks = _clients(reactor, listener.port, host, 200)
    try:
        run(reactor, lambda: len(listener.connections) == 200, timeout=20, step=0.01)
        records = [bytes([i % 256]) * 250 for i in range(200)]
        for s, record in zip(socks, records):  # each record in two segments
            s.setblocking(True)
            s.sendall(record[:100])
        reactor.run_once(0.01)
        for s, record in zip(socks, records):
            s.sendall(record[100:])
            s.setblocking(False)
        assert _recv_exactly(reactor, run, socks, 250) == records
    finally:
        for s in socks:
            s.close()
    run(reactor, lambda: not listener.connections, timeout=20, step=0.01)
    listener.close()


def test_200_concurrent_ack_and_read_clients(reactor: Reactor, run) -> None:
    lines: List[str] = []
    ack = serve(reactor, "ack", "127.0.0.1", 0, log=lines.append)
    read = serve(reactor, "read", "::1", 0, log=lines.append)
    ack_socks = _clients(reactor, ack.port, "127.0.0.1", 200)
    read_socks = _clients(reactor, read.port, "::1", 200)
    try:
        acks = _recv_exactly(reactor, run, ack_socks, 18)
        assert set(acks) == {b"You are connected!"}
        for i, s in enumerate(ack_socks):
            s.send(b"message %d" % i)
            s.close()
        for i, s in enumerate(read_socks):
            for byte in b"read %d\0" % i:  # one byte at a time
                s.send(bytes([byte]))
            s.close()
        run(reactor, lambda: lines.count("Ending connection") == 200
            and sum(line.startswith("Got the message:") for line in lines) == 200,
            timeout=20, step=0.01)
    finally:
        for s in ack_socks + read_socks:
            s.close()
    assert {f"Got the message:message {i}" for i in range(200)} <= set(lines)
    assert {f"-->read {i}" for i in range(200)} <= set(lines)
    run(reactor, lambda: not ack.connections and not read.connections, timeout=20, step=0.01)
    ack.close()
    read.close()


def test_idle_timeout_on_real_sockets_keeps_others_served(reactor: Reactor, run) -> None:
    lines: List[str] = []
    listener = serve(reactor, "echo", "127.0.0.1", 0, settings=Settings(idle_timeout=0.3),
                     log=lines.append)
    silent = socket.create_connection(("127.0.0.1", listener.port))
    busy = socket.create_connection(("127.0.0.1", listener.port))
    busy.setblocking(False)
    try:
        echoed = b""
        started = time.monotonic()
        while time.monotonic() - started < 0.6:  # talk past the silent one's deadline
            busy.send(b"ping")
            run(reactor, lambda: _readable(busy), timeout=5, step=0.01)
            echoed += busy.recv(100)
            pause_until = time.monotonic() + 0.05
            run(reactor, lambda until=pause_until: time.monotonic() > until, timeout=5,
                step=0.01)
        assert echoed == b"ping" * (len(echoed) // 4) and len(echoed) >= 32
        assert sum("timed out: no data for 0.3s" in line for line in lines) == 1
        silent.settimeout(5)
        assert silent.recv(10) == b""
    finally:
        silent.close()
        busy.close()
    run(reactor, lambda: not listener.connections, timeout=5)
    listener.close()


def _readable(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False


