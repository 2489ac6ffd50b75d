"""A selector whose ``select()`` returns what the test scripted."""

from __future__ import annotations

import selectors
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = ["ScriptedSelector"]


class ScriptedSelector(selectors.BaseSelector):
    """A selector for tests: it records registrations, and ``select()``
    returns whatever the test queued in ``script`` (a list of event lists,
    one per call; an empty list once the script runs out).  The timeouts
    ``select()`` was called with are kept in ``timeouts``.  Nothing waits."""

    def __init__(self) -> None:
        self.keys: Dict[int, selectors.SelectorKey] = {}
        self.script: List[List[Tuple[selectors.SelectorKey, int]]] = []
        self.timeouts: List[Optional[float]] = []
        self.closed = False

    @staticmethod
    def _fd(fileobj: Any) -> int:
        return fileobj if isinstance(fileobj, int) else int(fileobj.fileno())

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = self._fd(fileobj)
        if fd in self.keys:
            raise KeyError(f"{fd} already registered")
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self.keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.keys.pop(self._fd(fileobj))

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = self._fd(fileobj)
        if fd not in self.keys:
            raise KeyError(fd)
        self.keys[fd] = key = selectors.SelectorKey(fileobj, fd, events, data)
        return key

    def select(self, timeout: Optional[float] = None) -> List[Tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        return self.script.pop(0) if self.script else []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return dict(self.keys)

    def close(self) -> None:
        self.closed = True
