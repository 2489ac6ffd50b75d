"""One timer for the idle deadlines of many connections.

Theory of operation
-------------------
Every connection of a server has the same idle timeout, so ordering them by
the time of their last activity also orders them by deadline.  ``IdleQueue``
keeps an insertion-ordered dict of ``key -> activity time``; ``touch()``
re-inserts a key at the end, which is O(1) and touches no timer.  A single
reactor timer is armed for the oldest entry's deadline.  When it fires, the
queue walks from the front, expiring every entry whose deadline has passed
and stopping at the first that has not; then it re-arms for that one.

Callers need not touch on every read.  ``slack`` says how stale a recorded
time may be: a connection that touches at most once per ``slack`` seconds of
activity is found "due" up to ``slack`` early, so its owner checks its real
last activity when called back, and if it was active since, touches again
with that real, older time.  A touch older than the newest entry cannot go
at the end of the ordered dict, so it goes into a small side dict of late
entries, walked in full by each sweep and counted when arming the timer.
Only such re-queues land there, and each leaves within ``slack`` seconds
(it expires or is touched again), so the side dict stays small.

So a read costs nothing at all most of the time and two dict operations
once per ``slack``, whatever the number of idle connections; the timer
fires at most once per timeout period per expiry; and nothing fires early:
an entry touched since the timer was armed is simply found not yet due and
the timer moves on to it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .timers import TimerHandle

__all__ = ["IdleQueue"]


class IdleQueue:
    """Calls ``on_expire(key, now)`` for each key not touched for
    ``timeout`` seconds.  An expired key is removed before the call."""

    __slots__ = ("_reactor", "timeout", "slack", "_on_expire", "_last", "_late",
                 "_newest", "_timer")

    def __init__(self, reactor: "Reactor", timeout: float,
                 on_expire: Callable[[Any, float], None]) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self._reactor = reactor
        self.timeout = timeout
        #: How far behind a caller may let a key's recorded activity fall
        #: (see the module docstring): a sixteenth of the timeout.
        self.slack = timeout / 16
        self._on_expire = on_expire
        self._last: Dict[Hashable, float] = {}  # in order of activity time
        self._late: Dict[Hashable, float] = {}  # re-queued with an older time
        self._newest = -math.inf  # the latest time in _last
        self._timer: Optional[TimerHandle] = None

    def __len__(self) -> int:
        return len(self._last) + len(self._late)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._last or key in self._late

    def touch(self, key: Hashable, when: float) -> None:
        """Record activity on ``key`` at ``when`` (adds it if new).  ``when``
        is normally now, but may be an older time of real activity."""
        last = self._last
        last.pop(key, None)
        if self._late:
            self._late.pop(key, None)
        if when >= self._newest:
            last[key] = when
            self._newest = when
        else:
            self._late[key] = when
        deadline = when + self.timeout
        if self._timer is None or deadline < self._timer.when:
            self._arm(deadline)

    def discard(self, key: Hashable) -> None:
        """Forget ``key``.  The timer is left alone: if it was armed for this
        key it will find the next one due later and re-arm for it."""
        self._last.pop(key, None)
        if self._late:
            self._late.pop(key, None)
        if not self._last and not self._late and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def deadline_of(self, key: Hashable) -> Optional[float]:
        """The deadline as recorded (a caller using ``slack`` may have been
        active since)."""
        when = self._last.get(key, self._late.get(key))
        return None if when is None else when + self.timeout

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._reactor.call_at(when, self._sweep)

    def _sweep(self) -> None:
        # self._timer still holds the fired handle while the callbacks run
        # (its ``when`` already past), so that a touch() from inside on_expire
        # does not arm a second timer.
        now = self._reactor.time()
        timeout = self.timeout
        due = []
        last = self._last
        while last:
            key = next(iter(last))
            if last[key] + timeout > now:
                break
            del last[key]
            due.append(key)
        late = self._late
        for key, when in list(late.items()):
            if when + timeout <= now:
                del late[key]
                due.append(key)
        for key in due:
            try:
                self._on_expire(key, now)
            except Exception as exc:
                self._reactor.call_exception_handler({
                    "message": "exception in idle-timeout callback",
                    "exception": exc,
                    "callback": self._on_expire,
                    "key": key,
                })
        times = list(late.values())
        if last:
            times.append(last[next(iter(last))])
        if times:
            self._arm(min(times) + timeout)  # also drops any armed meanwhile
        else:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
