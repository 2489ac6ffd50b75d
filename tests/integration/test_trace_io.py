"""Tracing and statistics on real sockets, worker threads and host-loop
embedding."""

from __future__ import annotations

import socket
import threading
import time
from typing import List

import pytest

from reactor import Reactor
from reactor.conversations import Settings, serve
from reactor.loop import ThreadCall
from reactor.trace import Tracer


def exchange(reactor: Reactor, port: int, payload: bytes, runner) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setblocking(False)
        s.send(payload)
        got = b""
        deadline = time.monotonic() + 5
        while len(got) < len(payload) and time.monotonic() < deadline:
            reactor.run_once(0.01)
            try:
                got += s.recv(100)
            except BlockingIOError:
                pass
    return got


def test_tracer_records_the_life_of_a_connection(run) -> None:
    tracer = Tracer(capacity=1000)
    with Reactor(trace=tracer) as reactor:
        listener = serve(reactor, "echo", "127.0.0.1", 0, log=lambda line: None,
                         settings=Settings(idle_timeout=5))
        assert exchange(reactor, listener.port, b"hello", run) == b"hello"
        run(reactor, lambda: not listener.connections)
        listener.close()
    kinds = [e.kind for e in tracer.events]
    for kind in ("select", "accept", "state", "read", "write", "machine"):
        assert kind in kinds, kind
    conn = next(e.conn for e in tracer.events if e.kind == "accept")
    mine = [(e.kind, e.detail) for e in tracer.events if e.conn == conn]
    assert mine[0][0] == "accept" and mine[0][1].startswith("from 127.0.0.1:")
    assert ("state", "new -> open: accepted") in mine
    assert ("read", "5 bytes") in mine and ("write", "5 bytes") in mine
    assert ("machine", "echo: - -> OPEN") in mine
    assert ("state", "open -> half-closed: peer sent EOF") in mine
    assert mine[-1] == ("state", "closing -> closed: connection_lost called")
    selects = [e.detail for e in tracer.events if e.kind == "select"]
    assert any("fd " in d for d in selects) and all(d.startswith("wait ") for d in selects)
    times = [e.time for e in tracer.events]
    assert times == sorted(times)
    lines = tracer.timeline(["accept"])
    assert len(lines) == 1 and f"#{conn}" in lines[0]


def test_stats_count_what_happened(reactor: Reactor, run) -> None:
    listener = serve(reactor, "echo", "127.0.0.1", 0, log=lambda line: None)
    assert exchange(reactor, listener.port, b"x" * 1000, run) == b"x" * 1000
    run(reactor, lambda: not listener.connections)
    stats = reactor.stats()
    assert stats["bytes_in"] == 1000 and stats["bytes_out"] == 1000
    assert stats["iterations"] > 0
    assert stats["select_time"] >= 0 and stats["callback_time"] >= 0
    assert stats["open_connections"] == 0
    assert stats["registered"] == len(listener.sockets)
    assert stats["accept_errors"] == 0
    listener.close()
    assert reactor.stats()["registered"] == 0


def test_run_in_thread_delivers_on_the_reactor_thread(reactor: Reactor, run, errors) -> None:
    seen: List[object] = []
    loop_thread = threading.get_ident()

    def work(x: int) -> int:
        assert threading.get_ident() != loop_thread
        return x * 2

    call = reactor.run_in_thread(work, 21)
    assert isinstance(call, ThreadCall) and not call.done()
    with pytest.raises(RuntimeError):
        call.result()
    call.add_done_callback(lambda c: seen.append((threading.get_ident(), c.result())))
    call.add_done_callback(lambda c: 1 / 0)  # reported, does not stop the others
    call.add_done_callback(lambda c: seen.append("third"))
    run(reactor, lambda: len(seen) == 2)
    assert seen == [(loop_thread, 42), "third"]
    assert [c["message"] for c in errors] == [
        "exception in test_run_in_thread_delivers_on_the_reactor_thread.<locals>.<lambda>()"]
    assert isinstance(errors[0]["exception"], ZeroDivisionError)
    late: List[object] = []
    call.add_done_callback(late.append)  # after the fact: still via the loop
    assert late == []
    reactor.run_once(0)
    assert late == [call]

    failing = reactor.run_in_thread(int, "not a number")
    run(reactor, failing.done)
    assert isinstance(failing.exception(), ValueError)
    with pytest.raises(ValueError):
        failing.result()
    reactor._executor.shutdown(wait=True)  # type: ignore[union-attr]


def test_fileno_and_next_timeout_for_host_loops(reactor: Reactor) -> None:
    import select
    fd = reactor.fileno()
    assert isinstance(fd, int) and fd >= 0  # epoll on Linux
    assert reactor.next_timeout() is None  # idle: only I/O can wake it
    reactor.call_later(5, lambda: None)
    assert 4.9 < reactor.next_timeout() <= 5  # type: ignore[operator]
    reactor.call_soon(lambda: None)
    assert reactor.next_timeout() == 0.0
    reactor.run_once(0)
    a, b = socket.socketpair()
    try:
        from reactor import Protocol, StreamTransport
        a.setblocking(False)
        transport = StreamTransport(reactor, a, Protocol())
        transport.start()
        assert select.select([fd], [], [], 0)[0] == []
        b.send(b"x")
        assert select.select([fd], [], [], 2)[0] == [fd]  # the epoll fd became readable
        transport.close()
        reactor.run_once(0)
    finally:
        b.close()
    import selectors
    with Reactor(selector=selectors.SelectSelector()) as plain:
        assert plain.fileno() is None  # documented fallback: no descriptor


