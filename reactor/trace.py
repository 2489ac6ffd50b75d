"""Tracing: a bounded record of what the loop did, for people to read.

Theory of operation
-------------------
``Reactor(trace=True)`` (or ``trace=Tracer(...)``) makes the loop, its
transports, listeners and conversations call ``Tracer.record`` at each
interesting moment: every ``select()`` with its timeout and the descriptors
it returned, each accept, each connection state change with its cause, bytes
read and written, timers fired, timeouts and errors.  Each becomes a
``TraceEvent`` (a timestamp, a kind, a connection id, and a detail string)
in a ring buffer of ``capacity`` events, and, if ``echo`` is given, one
printed timeline line as it happens.

Off is the default and costs one ``is not None`` test at each of those
places; nothing is formatted or stored.
"""

from __future__ import annotations

import collections
import itertools
import time
import weakref
from typing import Any, Callable, Deque, List, NamedTuple, Optional

__all__ = ["TraceEvent", "Tracer"]


class TraceEvent(NamedTuple):
    """One thing that happened.  ``conn`` is the connection id (``#3`` in a
    timeline), or ``None`` for the loop itself."""

    time: float
    kind: str
    conn: Optional[int]
    detail: str


class Tracer:
    """Keeps the last ``capacity`` events; prints each through ``echo`` if
    given.  Times in the timeline are seconds since the tracer was made."""

    def __init__(self, capacity: int = 10_000, echo: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}")
        self.events: Deque[TraceEvent] = collections.deque(maxlen=capacity)
        self.echo = echo
        self._clock = clock
        self.started = clock()
        # Connection ids live here, not on the transports: tracing is rare,
        # and every attribute on a transport costs memory per connection.
        self._ids: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._next_id = itertools.count(1).__next__  # never reused, unlike len(_ids)
        self._states: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()

    def id_of(self, transport: Any) -> Optional[int]:
        """The connection number of ``transport`` in this trace (1, 2, ...,
        in order of first appearance); ``None`` for ``None``."""
        if transport is None:
            return None
        number = self._ids.get(transport)
        if number is None:
            number = self._ids[transport] = self._next_id()
        return number

    def state_changed(self, owner: Any, state: Any) -> Any:
        """Remember ``owner``'s latest ``state``; return the previous one
        (``None`` the first time), or ``state`` itself if it did not change."""
        previous = self._states.get(owner)
        self._states[owner] = state
        return state if previous is state else previous

    def record(self, kind: str, conn: Optional[int], detail: str) -> None:
        event = TraceEvent(self._clock(), kind, conn, detail)
        self.events.append(event)
        if self.echo is not None:
            self.echo(self.format(event))

    def format(self, event: TraceEvent) -> str:
        who = f"#{event.conn}" if event.conn is not None else "loop"
        return f"{event.time - self.started:9.6f}  {who:>5}  {event.kind:<7} {event.detail}"

    def timeline(self, kinds: Optional[List[str]] = None) -> List[str]:
        """The recorded events as lines, oldest first, optionally only the
        given kinds."""
        return [self.format(e) for e in self.events if kinds is None or e.kind in kinds]

    def clear(self) -> None:
        self.events.clear()
