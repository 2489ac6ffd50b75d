"""IdleQueue: one timer for many idle deadlines."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from reactor import Reactor
from reactor.idle import IdleQueue
from reactor.testing import FakeClock, advance


def test_expires_each_key_at_its_deadline_never_before(fake_reactor: Reactor,
                                                        clock: FakeClock) -> None:
    expired: List[Tuple[str, float]] = []
    queue = IdleQueue(fake_reactor, 30, lambda key, now: expired.append((key, now)))
    start = clock.now()
    queue.touch("a", start)
    clock.advance(10)
    queue.touch("b", clock.now())
    advance(fake_reactor, 19.999)
    assert expired == []
    advance(fake_reactor, 0.001)
    assert expired == [("a", start + 30)]
    advance(fake_reactor, 10)
    assert expired == [("a", start + 30), ("b", start + 40)]
    assert len(queue) == 0 and fake_reactor.next_deadline() is None


def test_touch_postpones_without_touching_timers(fake_reactor: Reactor,
                                                  clock: FakeClock) -> None:
    expired: List[str] = []
    queue = IdleQueue(fake_reactor, 5, lambda key, now: expired.append(key))
    queue.touch("k", clock.now())
    heap_before = fake_reactor._timers.heap_size
    for _ in range(1000):
        clock.advance(0.004)
        queue.touch("k", clock.now())
    assert fake_reactor._timers.heap_size == heap_before == 1
    advance(fake_reactor, 4.9)
    assert expired == []
    advance(fake_reactor, 0.1)
    assert expired == ["k"]


def test_one_timer_serves_many_keys(fake_reactor: Reactor, clock: FakeClock) -> None:
    queue = IdleQueue(fake_reactor, 30, lambda key, now: None)
    for i in range(10_000):
        queue.touch(i, clock.now())
    assert len(queue) == 10_000
    assert len(fake_reactor._timers) == 1


def test_discard_and_callback_errors(fake_reactor: Reactor, clock: FakeClock,
                                     errors: list) -> None:
    seen: List[str] = []

    def on_expire(key: str, now: float) -> None:
        seen.append(key)
        if key == "bad":
            raise RuntimeError("boom")

    queue = IdleQueue(fake_reactor, 1, on_expire)
    queue.touch("bad", clock.now())
    queue.touch("good", clock.now())
    queue.touch("gone", clock.now())
    queue.discard("gone")
    assert "gone" not in queue and queue.deadline_of("good") == clock.now() + 1
    advance(fake_reactor, 1)
    assert seen == ["bad", "good"]  # the raising callback did not stop the sweep
    assert [c["message"] for c in errors] == ["exception in idle-timeout callback"]
    queue.touch("x", clock.now())
    queue.discard("x")
    assert fake_reactor.next_deadline() is None  # last key gone: timer cancelled


def test_refuses_non_positive_timeout(fake_reactor: Reactor) -> None:
    with pytest.raises(ValueError):
        IdleQueue(fake_reactor, 0, lambda k, n: None)


def test_a_late_touch_expires_at_its_own_older_deadline(fake_reactor: Reactor,
                                                       clock: FakeClock) -> None:
    expired: List[Tuple[str, float]] = []
    queue = IdleQueue(fake_reactor, 10, lambda key, now: expired.append((key, now)))
    start = clock.now()
    queue.touch("new", start + 5)  # newest first...
    queue.touch("old", start + 1)  # ...then an older time: out of order
    assert queue.deadline_of("old") == start + 11 and "old" in queue and len(queue) == 2
    advance(fake_reactor, 10.999)
    assert expired == []
    advance(fake_reactor, 0.001)
    assert expired == [("old", start + 11)]  # re-armed earlier for it
    advance(fake_reactor, 4)
    assert expired == [("old", start + 11), ("new", start + 15)]
    assert fake_reactor.next_deadline() is None


def test_a_late_key_touched_again_or_discarded_leaves_the_side_dict(
        fake_reactor: Reactor, clock: FakeClock) -> None:
    expired: List[str] = []
    queue = IdleQueue(fake_reactor, 10, lambda key, now: expired.append(key))
    start = clock.now()
    queue.touch("a", start + 5)
    queue.touch("b", start + 1)
    queue.touch("c", start + 2)
    queue.touch("b", start + 6)  # real activity again: back in order
    queue.discard("c")
    advance(fake_reactor, 15)
    assert expired == ["a"]
    advance(fake_reactor, 1)
    assert expired == ["a", "b"] and len(queue) == 0


def test_an_early_callback_can_requeue_at_the_real_time(fake_reactor: Reactor,
                                                        clock: FakeClock) -> None:
    """The pattern the conversation adapters use: record activity only now
    and then, and when called back early, touch again with the real time."""
    real = {"k": clock.now()}
    closed: List[float] = []

    def on_expire(key: str, now: float) -> None:
        if real[key] + 10 <= now:
            closed.append(now)
        else:
            queue.touch(key, real[key])

    queue = IdleQueue(fake_reactor, 10, on_expire)
    start = clock.now()
    queue.touch("k", start)
    for _ in range(30):  # active every 0.5 s for 15 s, recorded only at the start
        clock.advance(0.5)
        real["k"] = clock.now()
        fake_reactor.run_once(0)
    assert closed == []
    advance(fake_reactor, 9.999)
    assert closed == []
    advance(fake_reactor, 0.001)
    assert closed == [start + 25]  # exactly 10 s after the last activity
