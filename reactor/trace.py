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
import time
from typing import Callable, Deque, List, NamedTuple, Optional

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
