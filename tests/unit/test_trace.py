"""Tracing and statistics, on a reactor with no connections."""

from __future__ import annotations

import logging
import threading
import time
from typing import List

import pytest

from reactor import Reactor
from reactor.conversations import Settings
from reactor.trace import Tracer


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
    protocol = ReadProtocol(fake_reactor, Settings(message_timeout=1), lambda line: None)
    transport = MemoryTransport(reactor=fake_reactor)
    transport.connect(protocol)
    transport.feed(b"a message that never ends")
    advance(fake_reactor, 1)
    fake_reactor.call_soon(lambda: 1 / 0)
    fake_reactor.run_once(0)
    kinds = [(e.kind, e.detail) for e in fake_reactor.tracer.events]
    assert ("timeout", "message not complete within 1s") in kinds
    assert any(k == "timer" and d.startswith("fired ") for k, d in kinds)
    assert any(k == "error" and "ZeroDivisionError" in d for k, d in kinds)


def test_tracing_off_records_nothing(reactor: Reactor) -> None:
    assert reactor.tracer is None
    with Reactor(trace=True) as traced:
        assert isinstance(traced.tracer, Tracer)


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
