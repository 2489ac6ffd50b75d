"""One timer for the deadlines of many connections.

Theory of operation
-------------------
A server holds thousands of connections, each with a deadline that moves on
with its activity.  A timer per connection, cancelled and made again on
every read, would cost a heap operation per ``recv``.  A ``DeadlineQueue``
keeps every deadline behind one reactor timer instead.

Most deadlines arrive in order.  An idle deadline is "now plus the
timeout", and every connection of a server has the same timeout, so a new
one is never earlier than those before it.  Those go at the end of an
insertion-ordered dict: O(1), and the dict stays sorted by deadline.  A
deadline earlier than the newest one (a shorter kind, such as a message
deadline, or a connection queued again at its real deadline after an early
wake-up) goes into a heap instead: O(log n), for those only.  A key lives in
one of the two at a time; a heap entry left behind by a later ``touch`` or
``discard`` is recognised as stale and skipped.

One reactor timer is armed for the earliest deadline of either.  When it
fires, every key whose deadline has come is removed and ``on_due(key, now)``
called, in deadline order within each of the two; then the timer is armed
for the next.  A key that one of those calls discards, or touches with a
new deadline, before its own turn is not called.  Nothing is ever called
before its deadline, and at most one loop step after it.

With an ``offset`` the entries are times, each due ``offset`` seconds
after its own: a queue per idle timeout holds last-activity times, which
its owners already have, rather than a deadline made for each.

The queue never looks at activity, so callers keep the laziness on their
side: when a deadline only moves later (the common case: more bytes
arrived), they need not touch the queue at all.  They are called at the old
deadline, find there is time left, and touch again with the real one: one
queue operation per timeout period per connection, none per read.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Optional, Set, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .timers import TimerHandle

__all__ = ["DeadlineQueue"]


class DeadlineQueue:
    """Calls ``on_due(key, now)`` once ``now`` reaches the deadline last set
    for ``key`` with ``touch``: the time given plus ``offset``.  A key is
    removed before it is called."""

    #: Rebuild the heap when stale entries outnumber live ones by this much.
    COMPACT_MIN = 64

    __slots__ = ("_reactor", "_on_due", "offset", "_ordered", "_newest", "_heap", "_heaped",
                 "_seq", "_timer", "_firing")

    def __init__(self, reactor: "Reactor", on_due: Callable[[Any, float], Any],
                 offset: float = 0.0) -> None:
        self._reactor = reactor
        self._on_due = on_due
        #: Seconds from the time given to ``touch`` to the deadline.
        self.offset = offset
        # Below, "time" is what touch() was given: the deadline less offset.
        self._ordered: Dict[Hashable, float] = {}  # in time order
        self._newest = -math.inf                    # the last time in _ordered
        self._heap: List[Tuple[float, int, Hashable]] = []
        self._heaped: Dict[Hashable, float] = {}    # the live entries of _heap
        self._seq = itertools.count().__next__      # orders equal deadlines
        self._timer: Optional[TimerHandle] = None
        self._firing: Set[Hashable] = set()  # due now, not yet called

    def __len__(self) -> int:
        return len(self._ordered) + len(self._heaped)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._ordered or key in self._heaped

    def deadline_of(self, key: Hashable) -> Optional[float]:
        """The deadline set for ``key``, or ``None``."""
        when = self._ordered.get(key, self._heaped.get(key))
        return None if when is None else when + self.offset

    def touch(self, key: Hashable, when: float) -> None:
        """Make ``key`` due at ``when + offset`` (adding the key if new),
        replacing the deadline it had."""
        self._ordered.pop(key, None)
        self._heaped.pop(key, None)
        self._firing.discard(key)
        if when >= self._newest:
            self._ordered[key] = when
            self._newest = when
        else:
            self._heaped[key] = when
            heapq.heappush(self._heap, (when, self._seq(), key))
            if len(self._heap) > 2 * len(self._heaped) + self.COMPACT_MIN:
                self._compact()
        deadline = when + self.offset
        if self._timer is None or deadline < self._timer.when:
            self._arm(deadline)

    def discard(self, key: Hashable) -> None:
        """Forget ``key``.  The timer is left alone unless nothing is left:
        if it was armed for this key, it finds nothing due and re-arms."""
        self._ordered.pop(key, None)
        self._heaped.pop(key, None)
        self._firing.discard(key)
        if not self._ordered and not self._heaped:
            self._newest = -math.inf
            self._heap.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._reactor.call_at(when, self._fire)

    def _compact(self) -> None:
        heaped = self._heaped
        self._heap = [entry for entry in self._heap if heaped.get(entry[2]) == entry[0]]
        heapq.heapify(self._heap)

    def _fire(self) -> None:
        # self._timer still holds the fired handle while the callbacks run
        # (its deadline already past), so that a touch() from inside on_due
        # arms no second timer unless it asks for an even earlier one.
        fired = self._timer
        now = self._reactor.time()
        offset = self.offset
        ordered = self._ordered
        due = []
        for key, when in ordered.items():  # one pass: O(due), not O(due**2)
            if when + offset > now:
                break
            due.append(key)
        for key in due:
            del ordered[key]
        if not ordered:
            self._newest = -math.inf
        heap, heaped = self._heap, self._heaped
        while heap and heap[0][0] + offset <= now:
            when, _, key = heapq.heappop(heap)
            if heaped.get(key) == when:
                del heaped[key]
                due.append(key)
        firing = self._firing
        firing.update(due)
        for key in due:
            if key in firing:  # not discarded or touched by an earlier call
                firing.discard(key)
                self._reactor.call_user(self._on_due, key, now, key=key)
        if self._timer is fired:
            self._timer = None
        self._arm_next()

    def _arm_next(self) -> None:
        """Arm for the earliest deadline left, unless a timer already is."""
        heap, heaped = self._heap, self._heaped
        while heap and heaped.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale
        candidates = [heap[0][0]] if heap else []
        if self._ordered:
            candidates.append(next(iter(self._ordered.values())))
        if candidates:
            deadline = min(candidates) + self.offset
            if self._timer is None or deadline < self._timer.when:
                self._arm(deadline)
