"""DeadlineQueue: one timer for many deadlines, never early."""

from __future__ import annotations

import random
from typing import List, Tuple

from reactor import Reactor
from reactor.deadlines import DeadlineQueue
from reactor.testing import FakeClock, advance


def pending_timers(reactor: Reactor) -> int:
    return int(reactor.stats()["pending_timers"])


def test_calls_each_key_at_its_deadline_never_before(fake_reactor: Reactor,
                                                      clock: FakeClock) -> None:
    due: List[Tuple[str, float]] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: due.append((key, now)))
    start = clock.now()
    queue.touch("a", start + 30)
    clock.advance(10)
    queue.touch("b", start + 40)
    advance(fake_reactor, 19.999)
    assert due == []
    advance(fake_reactor, 0.001)
    assert due == [("a", start + 30)]
    advance(fake_reactor, 10)
    assert due == [("a", start + 30), ("b", start + 40)]
    assert len(queue) == 0 and fake_reactor.next_deadline() is None


def test_a_later_deadline_moves_no_timer(fake_reactor: Reactor, clock: FakeClock) -> None:
    due: List[str] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: due.append(key))
    queue.touch("k", clock.now() + 5)
    armed = fake_reactor.next_deadline()
    for _ in range(1000):
        clock.advance(0.004)
        queue.touch("k", clock.now() + 5)
    assert pending_timers(fake_reactor) == 1 and fake_reactor.next_deadline() == armed
    advance(fake_reactor, 0.999)  # the timer fires at the first deadline, finds k not due
    assert due == [] and queue.deadline_of("k") == clock.now() + 4.001
    advance(fake_reactor, 4.001)
    assert due == ["k"]


def test_one_timer_serves_many_keys(fake_reactor: Reactor, clock: FakeClock) -> None:
    queue = DeadlineQueue(fake_reactor, lambda key, now: None)
    for i in range(10_000):
        queue.touch(i, clock.now() + 30 - (i % 7))  # in order and out of order
    assert len(queue) == 10_000
    assert pending_timers(fake_reactor) == 1
    assert fake_reactor.next_deadline() == clock.now() + 24


def test_discard_and_callback_errors(fake_reactor: Reactor, clock: FakeClock,
                                     errors: list) -> None:
    seen: List[str] = []

    def on_due(key: str, now: float) -> None:
        seen.append(key)
        if key == "bad":
            raise RuntimeError("boom")

    queue = DeadlineQueue(fake_reactor, on_due)
    for key in ("bad", "good", "gone"):
        queue.touch(key, clock.now() + 1)
    queue.discard("gone")
    assert "gone" not in queue and queue.deadline_of("good") == clock.now() + 1
    advance(fake_reactor, 1)
    assert seen == ["bad", "good"]  # the raising callback did not stop the others
    assert len(errors) == 1
    assert errors[0]["callback"] is on_due and errors[0]["key"] == "bad"
    assert isinstance(errors[0]["exception"], RuntimeError)
    queue.touch("x", clock.now() + 1)
    queue.discard("x")
    assert fake_reactor.next_deadline() is None  # last key gone: timer cancelled


def test_an_earlier_deadline_rearms_for_itself(fake_reactor: Reactor,
                                               clock: FakeClock) -> None:
    due: List[Tuple[str, float]] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: due.append((key, now)))
    start = clock.now()
    queue.touch("late", start + 15)
    queue.touch("early", start + 11)  # out of order: into the heap
    assert queue.deadline_of("early") == start + 11 and "early" in queue and len(queue) == 2
    assert fake_reactor.next_deadline() == start + 11
    advance(fake_reactor, 10.999)
    assert due == []
    advance(fake_reactor, 0.001)
    assert due == [("early", start + 11)]
    advance(fake_reactor, 4)
    assert due == [("early", start + 11), ("late", start + 15)]
    assert fake_reactor.next_deadline() is None


def test_stale_heap_entries_are_skipped(fake_reactor: Reactor, clock: FakeClock) -> None:
    due: List[str] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: due.append(key))
    start = clock.now()
    queue.touch("a", start + 15)
    queue.touch("b", start + 11)
    queue.touch("c", start + 12)
    queue.touch("b", start + 16)  # moved later: its heap entry is stale
    queue.touch("c", start + 12)  # the same deadline twice: called once
    queue.discard("a")
    advance(fake_reactor, 13)
    assert due == ["c"]
    advance(fake_reactor, 3)
    assert due == ["c", "b"] and len(queue) == 0


def test_many_stale_entries_are_compacted_away(fake_reactor: Reactor,
                                               clock: FakeClock) -> None:
    queue = DeadlineQueue(fake_reactor, lambda key, now: None)
    queue.touch("newest", clock.now() + 100)
    for i in range(10_000):  # one key moved around in the heap again and again
        queue.touch("k", clock.now() + 50 + (i % 10))
    assert len(queue) == 2
    # Bounded by the live entries, not by the touches (white-box: the heap).
    assert len(queue._heap) <= 2 * 1 + DeadlineQueue.COMPACT_MIN + 1


def test_random_deadlines_are_each_called_once_in_order_never_early(
        fake_reactor: Reactor, clock: FakeClock) -> None:
    rng = random.Random(7)
    start = clock.now()
    due: List[Tuple[int, float]] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: due.append((key, now)))
    expected = {}
    for key in range(500):
        for _ in range(rng.randint(1, 3)):
            expected[key] = start + rng.uniform(0.1, 20)
            queue.touch(key, expected[key])
    for key in rng.sample(range(500), 50):
        queue.discard(key)
        del expected[key]
    advance(fake_reactor, 21)
    assert sorted(key for key, _ in due) == sorted(expected)
    for key, now in due:
        assert now >= expected[key]          # never early
        assert now == expected[key]          # and, with advance(), exactly on time
    assert len(queue) == 0 and fake_reactor.next_deadline() is None


def test_an_early_wakeup_can_requeue_at_the_real_deadline(fake_reactor: Reactor,
                                                          clock: FakeClock) -> None:
    """The pattern the conversation adapters use: touch only when a deadline
    moves earlier; when woken early, touch again with the real deadline."""
    last_activity = {"k": clock.now()}
    closed: List[float] = []

    def on_due(key: str, now: float) -> None:
        deadline = last_activity[key] + 10
        if deadline <= now:
            closed.append(now)
        else:
            queue.touch(key, deadline)

    queue = DeadlineQueue(fake_reactor, on_due)
    start = clock.now()
    queue.touch("k", start + 10)
    for _ in range(30):  # active every 0.5 s for 15 s, never touching the queue
        clock.advance(0.5)
        last_activity["k"] = clock.now()
        fake_reactor.run_once(0)
    assert closed == []
    advance(fake_reactor, 9.999)
    assert closed == []
    advance(fake_reactor, 0.001)
    assert closed == [start + 25]  # exactly 10 s after the last activity


def test_a_key_discarded_or_moved_by_an_earlier_call_is_not_called(
        fake_reactor: Reactor, clock: FakeClock) -> None:
    start = clock.now()
    calls: List[Tuple[str, float]] = []

    def on_due(key: str, now: float) -> None:
        calls.append((key, now))
        if key == "a":
            queue.discard("b")             # due in this same sweep: must not be called
            queue.touch("c", start + 20)   # likewise: called at its new deadline instead

    queue = DeadlineQueue(fake_reactor, on_due)
    for key in ("a", "b", "c"):
        queue.touch(key, start + 10)
    advance(fake_reactor, 10)
    assert calls == [("a", start + 10)]
    advance(fake_reactor, 10)
    assert calls == [("a", start + 10), ("c", start + 20)]
    assert len(queue) == 0 and fake_reactor.next_deadline() is None


def test_an_earlier_deadline_set_from_inside_a_call_leaves_one_timer(
        fake_reactor: Reactor, clock: FakeClock) -> None:
    start = clock.now()
    calls: List[str] = []

    def on_due(key: str, now: float) -> None:
        calls.append(key)
        if key == "first":
            queue.touch("overdue", now - 5)  # earlier than the timer now firing

    queue = DeadlineQueue(fake_reactor, on_due)
    queue.touch("first", start + 10)
    queue.touch("later", start + 30)
    advance(fake_reactor, 10)
    assert calls == ["first", "overdue"]  # the next step, not before
    assert pending_timers(fake_reactor) == 1  # for "later": none orphaned
    advance(fake_reactor, 20)
    assert calls == ["first", "overdue", "later"]
    assert pending_timers(fake_reactor) == 0


def test_ten_thousand_keys_due_at_once_are_all_called_in_one_sweep(
        fake_reactor: Reactor, clock: FakeClock) -> None:
    called: List[int] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: called.append(key))
    for i in range(10_000):
        queue.touch(i, clock.now() + 1)
    clock.advance(1)
    fake_reactor.run_once(0)
    assert called == list(range(10_000)) and len(queue) == 0


def test_with_an_offset_entries_are_times_due_offset_seconds_later(
        fake_reactor: Reactor, clock: FakeClock) -> None:
    due: List[Tuple[str, float]] = []
    queue = DeadlineQueue(fake_reactor, lambda key, now: due.append((key, now)), offset=30)
    start = clock.now()
    queue.touch("idle since start", start)
    queue.touch("idle since later", start + 5)
    queue.touch("out of order", start + 2)
    assert queue.deadline_of("out of order") == start + 32
    advance(fake_reactor, 29.999)
    assert due == []
    advance(fake_reactor, 10)
    assert due == [("idle since start", start + 30), ("out of order", start + 32),
                   ("idle since later", start + 35)]
