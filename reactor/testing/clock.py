"""A clock that moves only when told to, and ``advance()`` to fire a
reactor's timers on it in order."""

from __future__ import annotations

from ..loop import Reactor
from ..timers import Clock

__all__ = ["FakeClock", "advance"]


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (only).  Timers are not fired: see ``advance()``
        in this module, or call ``reactor.run_once(0)``."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError("time cannot go backwards")
        self._now = float(when)


def advance(reactor: Reactor, seconds: float, max_steps: int = 100_000) -> None:
    """Move the reactor's ``FakeClock`` forward by ``seconds``, stopping at
    each timer's deadline on the way so it fires with ``time()`` equal to
    that deadline, in order; then run one more step at the end time.
    ``max_steps`` bounds a timer that keeps rescheduling itself."""
    clock = reactor.clock
    if not isinstance(clock, FakeClock):
        raise TypeError("advance() needs a Reactor built with clock=FakeClock()")
    end = clock.now() + seconds
    for _ in range(max_steps):
        reactor.run_once(0)
        deadline = reactor.next_deadline()
        if deadline is None or deadline > end:
            break
        clock.set(max(deadline, clock.now()))
    else:
        raise RuntimeError(f"advance(): still busy after {max_steps} steps")
    clock.set(end)
    reactor.run_once(0)
