"""Tracing and statistics: tested for content, on real sockets."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import List

import pytest

from reactor import Reactor
from reactor.conversations import Settings, serve
from reactor.loop import ThreadCall
from reactor.trace import Tracer

from .procs import Server, python, run


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


def test_tracer_is_bounded_and_echoes(reactor: Reactor) -> None:
    printed: List[str] = []
    tracer = Tracer(capacity=3, echo=printed.append)
    for i in range(10):
        tracer.record("log", None, f"line {i}")
    assert [e.detail for e in tracer.events] == ["line 7", "line 8", "line 9"]
    assert len(printed) == 10 and printed[-1].split()[-2:] == ["line", "9"]
    tracer.clear()
    assert not tracer.events
    with pytest.raises(ValueError):
        Tracer(capacity=0)


def test_timeouts_and_errors_are_traced(fake_reactor: Reactor, clock, errors) -> None:
    from reactor.conversations import ReadProtocol
    from reactor.testing import MemoryTransport, advance
    fake_reactor.tracer = Tracer()
    protocol = ReadProtocol(fake_reactor, Settings(idle_timeout=1), lambda line: None)
    MemoryTransport().connect(protocol)
    advance(fake_reactor, 1)
    fake_reactor.call_soon(lambda: 1 / 0)
    fake_reactor.run_once(0)
    kinds = [(e.kind, e.detail) for e in fake_reactor.tracer.events]
    assert ("timeout", "no data for 1s") in kinds
    assert any(k == "timer" and d.startswith("fired ") for k, d in kinds)
    assert any(k == "error" and "ZeroDivisionError" in d for k, d in kinds)


def test_tracing_off_records_nothing(reactor: Reactor) -> None:
    assert reactor.tracer is None
    with Reactor(trace=True) as traced:
        assert isinstance(traced.tracer, Tracer)


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


def test_slow_callback_is_named_counted_and_warned(reactor: Reactor, caplog) -> None:
    reactor.slow_callback_duration = 0.05

    def sluggish() -> None:
        time.sleep(0.08)

    reactor.call_soon(sluggish)
    with caplog.at_level(logging.WARNING, logger="reactor"):
        reactor.run_once(0)
    stats = reactor.stats()
    assert stats["slow_callbacks"] == 1 and stats["slowest_callback"] >= 0.08
    assert "sluggish" in stats["slowest_callback_name"]
    assert any("blocked the loop" in r.getMessage() for r in caplog.records)


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
    assert [c["message"].startswith("exception in callback") for c in errors] == [True]
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


def test_cancelled_thread_call_runs_no_callbacks(reactor: Reactor) -> None:
    gate = threading.Event()
    call = reactor.run_in_thread(gate.wait, 5)
    called: List[object] = []
    call.add_done_callback(called.append)
    assert call.cancel() and call.cancelled() and not call.cancel()
    gate.set()
    reactor._executor.shutdown(wait=True)  # type: ignore[union-attr]
    for _ in range(3):
        reactor.run_once(0.01)
    assert called == []


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
        from reactor import Protocol
        from reactor.transports import Transport
        a.setblocking(False)
        transport = Transport(reactor, a, Protocol())
        transport._start()
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


def test_cli_trace_and_stats_flags() -> None:
    with Server(python("-m", "reactor", "serve", "echo", "--host", "127.0.0.1", "--port", "0",
                       "--trace", "--stats", "0.2")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"abc")
            assert s.recv(3) == b"abc"
        server.wait_for(r"\baccept\s+from 127\.0\.0\.1:\d+")
        server.wait_for(r"\bread\s+3 bytes")
        server.wait_for(r"^stats: \d+ steps, .* 3 bytes in, 3 out; 0 accept errors$")
        assert server.stop() == 0


def test_trace_demo_prints_one_loop_serving_three_conversations() -> None:
    result = run(python("-m", "reactor", "trace-demo"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "demo: all 3 conversations completed as expected (1 ack, 1 read, 1 echo)"
    text = "\n".join(lines)
    for expected in ("select  wait", "accept  from 127.0.0.1:", "machine ack: - -> IDLE",
                     "machine read: IDLE -> CLOSED", "machine echo: - -> OPEN",
                     "ack server | Got the message:hello from ack client 1",
                     "read server | Ending connection"):
        assert expected in text, expected
    assert sum(" accept " in line for line in lines) == 3


def test_trace_ids_are_never_reused() -> None:
    import gc

    class Thing:
        pass

    tracer = Tracer()
    things = [Thing(), Thing(), Thing()]
    assert [tracer.id_of(t) for t in things] == [1, 2, 3]
    del things[0]
    gc.collect()
    assert tracer.id_of(Thing()) == 4  # not 3 again while #3 lives
    assert tracer.id_of(things[1]) == 3
