"""Clocks, timer handles and the timer queue.

Theory of operation
-------------------
Every timer is an absolute deadline on the reactor's clock; ``call_later(d)``
is only ``call_at(now() + d)``.  Timers live in a binary heap of
``(when, seq, handle)`` tuples.  ``seq`` grows by one per timer, so two timers
with the same deadline fire in the order they were scheduled and the tuple
comparison never has to look at the handle.

Moving a timer is lazy too (``TimerHandle.reset``).  Later, the common case
(a timeout pushed back by activity), only changes the handle's ``when``: the
heap entry stays where it was, and when it comes up it is pushed again at
the new time, so a timer reset a thousand times costs one extra push.
Earlier needs a new entry; the old one is then dead, counted as a cancelled
one is.  A handle knows which entry is its own (``_placed``, that entry's
time), so dead entries are recognised wherever they are.

Cancelling is lazy: ``TimerHandle.cancel()`` only marks the handle and bumps a
counter.  A cancelled entry is dropped when it reaches the top of the heap, and
when cancelled entries outnumber live ones the whole heap is filtered and
rebuilt in one O(n) pass.  That keeps cancel O(1) and bounds the heap at about
twice the number of live timers however cancel-heavy the program is.

The clock is injected.  ``MonotonicClock`` reads ``time.monotonic``;
``reactor.testing.FakeClock`` is moved by hand, so tests never sleep.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["Clock", "MonotonicClock", "TimerHandle", "TimerQueue"]


class Clock:
    """What the reactor needs from a clock: seconds as a float that never
    goes backwards.  Subclass it or pass any object with ``now()``."""

    def now(self) -> float:
        raise NotImplementedError


class MonotonicClock(Clock):
    """The real clock: ``time.monotonic()``."""

    __slots__ = ()

    # The builtin itself, so reading the clock is one C call: the echo path
    # reads it per chunk (benchmarks/instructions.py).
    now = staticmethod(time.monotonic)


class TimerHandle:
    """A scheduled call.  Returned by ``call_at`` and ``call_later``.

    ``when`` is the absolute deadline on the reactor's clock.  ``cancel()``
    may be called any number of times, also after the timer fired;
    ``reset(delay)`` moves a timer that is still pending.
    """

    __slots__ = ("when", "fn", "args", "cancelled", "_queue", "_placed")

    def __init__(self, when: float, fn: Callable[..., Any], args: Tuple[Any, ...],
                 queue: Optional["TimerQueue"]) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False
        self._queue = queue
        self._placed = when  # the time of this handle's own heap entry

    def reset(self, delay: float) -> None:
        """Fire ``delay`` seconds from now instead, without cancelling and
        scheduling anew (moving it later costs nothing until it comes up).
        ``RuntimeError`` if it already fired or was cancelled."""
        queue = self._queue
        if queue is None or self.cancelled:
            raise RuntimeError("reset() of a timer that already fired or was cancelled")
        queue.move(self, queue.now() + delay)

    def cancel(self) -> None:
        """Stop the call from happening.  Harmless if it already happened."""
        if not self.cancelled:
            self.cancelled = True
            self.args = ()  # drop what the call would have kept alive
            queue = self._queue
            if queue is not None:
                # The queue's bookkeeping, written out here: cancel() is half
                # of every schedule-and-cancel pair, the commonest timer use
                # (benchmarks/timers.py).
                self._queue = None
                queue._cancelled += 1
                if queue._cancelled * 2 > len(queue._heap) >= queue.COMPACT_MIN:
                    queue._compact()

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"<TimerHandle when={self.when:.6f} {name}{state}>"


_Entry = Tuple[float, int, TimerHandle]
_new_object = object.__new__
_heappush = heapq.heappush


class TimerQueue:
    """A heap of deadlines with lazy cancellation and periodic compaction."""

    #: Do not bother compacting heaps smaller than this.
    COMPACT_MIN = 64

    __slots__ = ("_heap", "_seq", "_cancelled", "now")

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._heap: List[_Entry] = []
        #: Next scheduling number: orders timers with equal deadlines.
        self._seq = itertools.count().__next__
        #: Dead entries still in the heap: cancelled, or left by a move.
        self._cancelled = 0
        #: The clock, for ``TimerHandle.reset``.
        self.now = now

    def __len__(self) -> int:
        """The number of live (not cancelled, not fired) timers."""
        return len(self._heap) - self._cancelled

    @property
    def heap_size(self) -> int:
        """Entries in the heap, cancelled ones included (for tests/stats)."""
        return len(self._heap)

    def push(self, when: float, fn: Callable[..., Any],
             args: Tuple[Any, ...]) -> TimerHandle:
        # The handle is filled in here rather than by calling the class: this
        # runs once per timer, and the __init__ call was a third of its cost
        # (benchmarks/timers.py).
        handle = _new_object(TimerHandle)
        handle.when = when
        handle.fn = fn
        handle.args = args
        handle.cancelled = False
        handle._queue = self
        handle._placed = when
        _heappush(self._heap, (when, self._seq(), handle))
        return handle

    def move(self, handle: TimerHandle, when: float) -> None:
        """Make ``handle`` (pending in this queue) due at ``when``."""
        if when < handle._placed:  # earlier: a new entry, the old one dead
            self._cancelled += 1
            handle._placed = when
            _heappush(self._heap, (when, self._seq(), handle))
        handle.when = when

    def _compact(self) -> None:
        # Rebuild in place: cheaper than popping cancelled entries one by
        # one, and it is what stops cancel-heavy code growing the heap.
        heap = self._heap
        heap[:] = [entry for entry in heap
                   if not entry[2].cancelled and entry[0] == entry[2]._placed]
        heapq.heapify(heap)
        self._cancelled = 0

    def next_deadline(self) -> Optional[float]:
        """The earliest live deadline, or ``None`` when no timer is pending.
        Dead entries at the top are dropped on the way, and moved ones
        pushed to their new place."""
        heap = self._heap
        while heap:
            when, _, handle = heap[0]
            if handle.cancelled or when != handle._placed:  # dead
                heapq.heappop(heap)
                self._cancelled -= 1
            elif handle.when != when:  # moved later: its place is further on
                handle._placed = handle.when
                heapq.heapreplace(heap, (handle.when, self._seq(), handle))
            else:
                return when
        return None

    def pop_due(self, now: float) -> List[TimerHandle]:
        """Remove and return the live timers with ``when <= now``, in firing
        order.  A timer is never returned before its deadline."""
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now:
            when, _, handle = heapq.heappop(heap)
            if handle.cancelled or when != handle._placed:  # dead
                self._cancelled -= 1
            elif handle.when > now:  # moved later: not due after all
                handle._placed = handle.when
                _heappush(heap, (handle.when, self._seq(), handle))
            else:
                handle._queue = None  # a later cancel() must not count it
                due.append(handle)
        return due
