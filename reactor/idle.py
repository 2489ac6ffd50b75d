"""One timer for the idle deadlines of many connections.

Theory of operation
-------------------
Every connection of a server has the same idle timeout, so ordering them by
the time of their last activity also orders them by deadline.  ``IdleQueue``
keeps an insertion-ordered dict of ``key -> last activity``; ``touch()``
re-inserts a key at the end, which is O(1) and touches no timer.  A single
reactor timer is armed for the oldest entry's deadline.  When it fires, the
queue walks from the front, expiring every entry whose deadline has passed
and stopping at the first that has not; then it re-arms for that one.

So a read costs two dict operations whatever the number of idle
connections, a timer fires at most once per timeout period per expiry, and
nothing fires early: an entry touched since the timer was armed is simply
found not yet due and the timer moves on to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .timers import TimerHandle

__all__ = ["IdleQueue"]


class IdleQueue:
    """Calls ``on_expire(key, now)`` for each key not touched for
    ``timeout`` seconds.  An expired key is removed before the call."""

    __slots__ = ("_reactor", "timeout", "_on_expire", "_last", "_timer")

    def __init__(self, reactor: "Reactor", timeout: float,
                 on_expire: Callable[[Any, float], None]) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self._reactor = reactor
        self.timeout = timeout
        self._on_expire = on_expire
        self._last: Dict[Hashable, float] = {}
        self._timer: Optional[TimerHandle] = None

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._last

    def touch(self, key: Hashable, now: float) -> None:
        """Record activity on ``key`` at ``now`` (adds it if new)."""
        last = self._last
        last.pop(key, None)
        last[key] = now
        if self._timer is None:
            self._arm(now + self.timeout)

    def discard(self, key: Hashable) -> None:
        """Forget ``key``.  The timer is left alone: if it was armed for this
        key it will find the next one due later and re-arm for it."""
        self._last.pop(key, None)
        if not self._last and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def deadline_of(self, key: Hashable) -> Optional[float]:
        last = self._last.get(key)
        return None if last is None else last + self.timeout

    def _arm(self, when: float) -> None:
        self._timer = self._reactor.call_at(when, self._sweep)

    def _sweep(self) -> None:
        # self._timer still holds the fired handle while we walk, so that a
        # touch() from inside on_expire does not arm a second timer.
        now = self._reactor.time()
        last = self._last
        while last:
            key = next(iter(last))
            if last[key] + self.timeout > now:
                break
            del last[key]
            try:
                self._on_expire(key, now)
            except Exception as exc:
                self._reactor.call_exception_handler({
                    "message": "exception in idle-timeout callback",
                    "exception": exc,
                    "callback": self._on_expire,
                    "key": key,
                })
        self._timer = None
        if last:
            self._arm(last[next(iter(last))] + self.timeout)
