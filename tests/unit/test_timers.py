"""Tests for reactor.timers: TimerQueue ordering, never-early firing, lazy
cancellation and compaction."""

from __future__ import annotations

import time
from typing import Any, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor import Reactor
from reactor.testing import FakeClock, advance
from reactor.timers import MonotonicClock, TimerHandle, TimerQueue

pytestmark = pytest.mark.timeout(30)


def noop() -> None:
    pass


# -- ordering ------------------------------------------------------------------


def test_pop_due_returns_timers_in_deadline_order() -> None:
    q = TimerQueue()
    for when in (5.0, 1.0, 4.0, 2.0, 3.0):
        q.push(when, noop, (when,))
    due = q.pop_due(10.0)
    assert [h.when for h in due] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [h.args for h in due] == [(1.0,), (2.0,), (3.0,), (4.0,), (5.0,)]
    assert len(q) == 0
    assert q.heap_size == 0


def test_equal_deadlines_fire_in_scheduling_order() -> None:
    q = TimerQueue()
    handles = [q.push(7.0, noop, (i,)) for i in range(50)]
    assert q.pop_due(7.0) == handles


def test_handles_are_never_compared() -> None:
    # Equal deadlines must be broken by the sequence number; TimerHandle has
    # no ordering, so comparing two would raise TypeError.
    q = TimerQueue()
    for _ in range(100):
        q.push(1.0, noop, ())
    assert len(q.pop_due(1.0)) == 100


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20), max_size=60))
def test_firing_order_is_deadline_then_scheduling_order(whens: List[int]) -> None:
    q = TimerQueue()
    handles = [q.push(float(w), noop, (i,)) for i, w in enumerate(whens)]
    expected = sorted(handles, key=lambda h: (h.when, h.args[0]))
    got: List[TimerHandle] = []
    for now in range(0, 24, 3):  # drain in a few slices
        got += q.pop_due(float(now))
    assert got == expected


# -- never early -------------------------------------------------------------------


def test_pop_due_never_returns_a_timer_before_its_deadline() -> None:
    q = TimerQueue()
    h = q.push(10.0, noop, ())
    assert q.pop_due(10.0 - 1e-9) == []
    assert len(q) == 1
    assert q.pop_due(10.0) == [h]


def test_reactor_timer_not_fired_at_deadline_minus_epsilon(clock: FakeClock,
                                                          fake_reactor: Reactor) -> None:
    fired: List[float] = []
    deadline = clock.now() + 2.0
    fake_reactor.call_at(deadline, lambda: fired.append(fake_reactor.time()))
    clock.set(deadline - 1e-6)
    fake_reactor.run_once(0)
    assert fired == []
    clock.set(deadline)
    fake_reactor.run_once(0)
    assert fired == [deadline]


def test_call_later_is_call_at_now_plus_delay(clock: FakeClock, fake_reactor: Reactor) -> None:
    handle = fake_reactor.call_later(3.5, noop)
    assert handle.when == clock.now() + 3.5
    assert fake_reactor.next_deadline() == clock.now() + 3.5


# -- cancelling ------------------------------------------------------------------------


def test_cancel_before_firing_prevents_the_call(clock: FakeClock, fake_reactor: Reactor) -> None:
    fired: List[str] = []
    h = fake_reactor.call_later(1, fired.append, "a")
    fake_reactor.call_later(1, fired.append, "b")
    h.cancel()
    h.cancel()  # twice is harmless
    clock.advance(1)
    fake_reactor.run_once(0)
    assert fired == ["b"]
    assert h.cancelled


def test_cancel_after_firing_is_harmless_and_keeps_counts_right() -> None:
    q = TimerQueue()
    a = q.push(1.0, noop, ())
    q.push(2.0, noop, ())
    assert q.pop_due(1.0) == [a]
    a.cancel()
    a.cancel()
    # The fired timer's cancel must not be counted against the queue.
    assert len(q) == 1
    assert q.heap_size == 1
    assert q.next_deadline() == 2.0


def test_cancel_of_a_due_timer_by_an_earlier_callback_in_the_same_step(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    fired: List[str] = []
    second: List[TimerHandle] = []

    def first() -> None:
        fired.append("first")
        second[0].cancel()

    fake_reactor.call_later(1, first)
    second.append(fake_reactor.call_later(1, fired.append, "second"))
    clock.advance(1)
    fake_reactor.run_once(0)
    assert fired == ["first"]


def test_next_deadline_skips_cancelled_head() -> None:
    q = TimerQueue()
    a = q.push(1.0, noop, ())
    q.push(2.0, noop, ())
    a.cancel()
    assert q.next_deadline() == 2.0
    assert len(q) == 1
    assert q.heap_size == 1  # the cancelled head was dropped


def test_next_deadline_is_none_when_only_cancelled_timers_remain() -> None:
    q = TimerQueue()
    handles = [q.push(float(i), noop, ()) for i in range(5)]
    for h in handles:
        h.cancel()
    assert q.next_deadline() is None
    assert len(q) == 0
    assert q.pop_due(100.0) == []


def test_len_counts_live_timers_only() -> None:
    q = TimerQueue()
    hs = [q.push(float(i), noop, ()) for i in range(10)]
    for h in hs[::2]:
        h.cancel()
    assert len(q) == 5
    assert [h.when for h in q.pop_due(100.0)] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert len(q) == 0


def test_compaction_bounds_the_heap_under_a_million_cancels() -> None:
    q = TimerQueue()
    bound_extra = TimerQueue.COMPACT_MIN
    live: List[TimerHandle] = [q.push(1e9 + i, noop, ()) for i in range(8)]
    worst = 0.0
    started = time.perf_counter()
    for i in range(1_000_000):
        h = q.push(float(i), noop, ())
        h.cancel()
        if i % 1000 == 0:
            # Churn the live set a little: cancel one, add two, or trim.
            live.pop(0).cancel()
            live.append(q.push(1e9 + i, noop, ()))
            if len(live) < 32:
                live.append(q.push(1e9 + i + 0.5, noop, ()))
        size = q.heap_size
        if size > 2 * len(live) + bound_extra:
            pytest.fail(f"heap has {size} entries for {len(live)} live timers at step {i}")
        ratio = size / len(live)
        if ratio > worst:
            worst = ratio
    elapsed = time.perf_counter() - started
    assert len(q) == len(live)
    assert sorted(q.pop_due(2e9), key=id) == sorted(live, key=id)
    assert elapsed < 10, f"a million schedule/cancel pairs took {elapsed:.1f}s"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["push", "cancel", "pop", "peek"]),
                          st.integers(min_value=0, max_value=200)),
                max_size=300))
def test_queue_matches_a_simple_model(ops: List[Tuple[str, int]]) -> None:
    q = TimerQueue()
    model: List[Tuple[float, int, TimerHandle]] = []  # live entries
    everything: List[TimerHandle] = []
    seq = 0
    for op, n in ops:
        if op == "push":
            seq += 1
            h = q.push(float(n % 50), noop, (seq,))
            everything.append(h)
            model.append((h.when, seq, h))
        elif op == "cancel" and everything:
            h = everything[n % len(everything)]
            h.cancel()
            model = [e for e in model if e[2] is not h]
        elif op == "pop":
            now = float(n % 50)
            due = sorted(e for e in model if e[0] <= now)
            assert q.pop_due(now) == [e[2] for e in due]
            model = [e for e in model if e[0] > now]
        elif op == "peek":
            expected = min(model)[0] if model else None
            assert q.next_deadline() == expected
        assert len(q) == len(model)
        assert q.heap_size <= 2 * len(model) + TimerQueue.COMPACT_MIN


def test_timer_handle_repr_says_cancelled() -> None:
    q = TimerQueue()
    h = q.push(1.5, noop, ())
    assert "noop" in repr(h) and "cancelled" not in repr(h)
    h.cancel()
    assert "cancelled" in repr(h)


def test_monotonic_clock_does_not_go_backwards() -> None:
    c = MonotonicClock()
    readings: List[Any] = [c.now() for _ in range(1000)]
    assert readings == sorted(readings)


# -- TimerHandle.reset -----------------------------------------------------------------


def test_reset_later_fires_at_the_new_time_and_costs_no_entry_per_reset(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    fired: List[float] = []
    handle = fake_reactor.call_later(5, lambda: fired.append(clock.now()))
    start = clock.now()
    for _ in range(1000):
        clock.advance(0.001)
        handle.reset(5)  # activity: the timeout moves on
    assert fake_reactor._timers.heap_size == 1  # no entry per reset
    advance(fake_reactor, 4.999)
    assert fired == []
    advance(fake_reactor, 0.001)
    assert fired == [pytest.approx(start + 6)]
    with pytest.raises(RuntimeError, match="already fired"):
        handle.reset(1)


def test_reset_earlier_and_the_counts_stay_right(clock: FakeClock,
                                                  fake_reactor: Reactor) -> None:
    fired: List[str] = []
    late = fake_reactor.call_later(10, fired.append, "late")
    other = fake_reactor.call_later(4, fired.append, "other")
    assert len(fake_reactor._timers) == 2
    late.reset(2)  # earlier: a new entry, the old one dead
    assert len(fake_reactor._timers) == 2 and fake_reactor.next_deadline() == clock.now() + 2
    late.reset(6)  # later again: no new entry
    late.reset(3)
    advance(fake_reactor, 3)
    assert fired == ["late"]
    advance(fake_reactor, 10)
    assert fired == ["late", "other"]
    assert len(fake_reactor._timers) == 0 and fake_reactor.next_deadline() is None
    other.cancel()  # harmless after firing
    cancelled = fake_reactor.call_later(5, fired.append, "never")
    cancelled.reset(1)
    cancelled.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        cancelled.reset(1)
    advance(fake_reactor, 10)
    assert fired == ["late", "other"] and len(fake_reactor._timers) == 0


def test_many_moved_timers_are_compacted() -> None:
    queue = TimerQueue(now=lambda: 0.0)
    handles = [queue.push(1000.0 + i, print, ()) for i in range(200)]
    for handle in handles:
        queue.move(handle, 1.0)  # earlier: each leaves a dead entry
    for handle in handles[:150]:
        handle.cancel()  # enough dead entries to compact
    assert len(queue) == 50
    assert queue.heap_size < 400
    assert [h.when for h in queue.pop_due(2000.0)] == [1.0] * 50


# -- call_every ---------------------------------------------------------------------------


def test_call_every_10000_ticks_without_drift(clock: FakeClock, fake_reactor: Reactor) -> None:
    times: List[float] = []
    start = clock.now()
    periodic = fake_reactor.call_every(0.1, lambda: times.append(clock.now()))
    advance(fake_reactor, 10_000 * 0.1)
    assert periodic.calls == 10_000 and periodic.skipped == 0
    assert times == [start + n * 0.1 for n in range(1, 10_001)]  # each on its exact tick
    periodic.cancel()
    advance(fake_reactor, 1)
    assert periodic.calls == 10_000


def test_call_every_skips_and_counts_missed_ticks(clock: FakeClock,
                                                  fake_reactor: Reactor) -> None:
    times: List[float] = []
    start = clock.now()
    periodic = fake_reactor.call_every(1.0, lambda: times.append(clock.now()))
    clock.advance(4.5)  # the loop was busy: ticks 1, 2, 3 and 4 are due at once
    fake_reactor.run_once(0)
    assert times == [start + 4.5] and periodic.skipped == 3  # one call, not four
    advance(fake_reactor, 0.5)
    assert times == [start + 4.5, start + 5.0]  # back on the grid
    assert periodic.calls == 2 and "every 1s" in repr(periodic)


def test_call_every_can_be_cancelled_from_inside_and_survives_errors(
        clock: FakeClock, fake_reactor: Reactor, errors: list) -> None:
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] == 2:
            raise ValueError("second tick")
        if count[0] == 4:
            periodic.cancel()

    periodic = fake_reactor.call_every(1.0, tick)
    advance(fake_reactor, 10)
    assert count[0] == 4 and periodic.cancelled
    assert [(type(e["exception"]), e["callback"], e["periodic"]) for e in errors] == [
        (ValueError, tick, periodic)]
    with pytest.raises(ValueError, match="positive"):
        fake_reactor.call_every(0, tick)
