"""The selector the reactor waits in: the standard library's, with a leaner
``select()`` for epoll.

``default_selector()`` is ``selectors.DefaultSelector()``, except that where
that is plain epoll it is ``LeanEpollSelector``, which does less work per
ready descriptor.  The price is one rule for whoever handles the events: the
mask it reports is not narrowed to the events a descriptor was registered
for (see ``reactor.loop.IOHandler``, where that rule is written down for
handlers).
"""

from __future__ import annotations

import math
import select
import selectors
from typing import Dict, List, Optional, Tuple

__all__ = ["default_selector", "epoll_mask", "LeanEpollSelector"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


def epoll_mask(epoll_events: int) -> int:
    """What ``selectors`` reports for an epoll event word: an error or hang-up
    counts as both readable and writable, so whoever is waiting finds out."""
    mask = 0
    if epoll_events & ~select.EPOLLIN:
        mask |= EVENT_WRITE
    if epoll_events & ~select.EPOLLOUT:
        mask |= EVENT_READ
    return mask


if hasattr(selectors, "EpollSelector"):
    class LeanEpollSelector(selectors.EpollSelector):
        """``selectors.EpollSelector`` with a ``select()`` that does less per
        event: one list comprehension instead of a loop with a method call,
        a tuple and two branches per ready descriptor.  Registration, keys
        and every other method are the standard library's.

        It returns exactly what the parent returns except that the mask is
        not narrowed to ``key.events``: the reactor's handlers check their
        own interest anyway.  It runs once per loop step, and its per-event
        work once per ready descriptor (benchmarks/instructions.py).  The
        events epoll can report for what we register (IN, OUT, ERR, HUP)
        all fit in five bits, so a 32-entry table translates them.
        """

        _MASKS = tuple(epoll_mask(events) for events in range(32))

        # The parent's own attributes (typeshed leaves them out): the epoll
        # object and the descriptor-to-key dict that register() maintains.
        _selector: "select.epoll"
        _fd_to_key: Dict[int, selectors.SelectorKey]

        def select(self, timeout: Optional[float] = None
                   ) -> List[Tuple[selectors.SelectorKey, int]]:
            if timeout is None:
                timeout = -1
            elif timeout <= 0:
                timeout = 0
            else:
                # Round up to whole milliseconds, as the parent does: epoll
                # would otherwise round down and wake before the deadline.
                timeout = math.ceil(timeout * 1e3) * 1e-3
            key_of = self._fd_to_key.get
            masks = self._MASKS
            try:
                ready = self._selector.poll(timeout, max(len(self._fd_to_key), 1))
            except InterruptedError:
                return []
            return [(key, masks[events & 31]) for fd, events in ready
                    if (key := key_of(fd)) is not None]


def default_selector() -> selectors.BaseSelector:
    """``selectors.DefaultSelector()``, or its lean variant when that is epoll."""
    selector = selectors.DefaultSelector()
    if type(selector) is getattr(selectors, "EpollSelector", None):
        selector.close()
        return LeanEpollSelector()
    return selector
