"""``leak_check()``: fail a test that leaves a descriptor open, a transport
open, a reactor unclosed, or something registered on a reactor."""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
import weakref
from typing import Dict, Iterator, List, Optional

from ..loop import Reactor
from ..transports import BaseTransport
from .transport import MemoryTransport

__all__ = ["leak_check", "LeakError", "open_descriptors"]


class LeakError(AssertionError):
    """What a ``leak_check`` block left behind; ``leaks`` lists each."""

    def __init__(self, leaks: List[str]) -> None:
        super().__init__(f"{len(leaks)} leaked:\n" + "\n".join(f"  {leak}" for leak in leaks))
        self.leaks = leaks


def open_descriptors() -> Optional[Dict[int, str]]:
    """This process's open descriptors and what each is (``socket:[4711]``,
    a path, ``pipe:[...]``), from ``/proc/self/fd`` or ``/dev/fd``; ``None``
    where neither lists them."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        found: Dict[int, str] = {}
        for name in names:
            try:
                found[int(name)] = os.readlink(os.path.join(directory, name))
            except (OSError, ValueError):  # the directory's own descriptor, gone already
                continue
        return found
    return None  # pragma: no cover  (every Linux and BSD has one of them)


@contextlib.contextmanager
def leak_check(*reactors: Reactor) -> Iterator[None]:
    """Check that the block leaves nothing behind.  On leaving it (after a
    garbage collection), ``LeakError`` lists:

    - each descriptor opened in the block and still open, with what it is;
    - each transport created in the block whose ``connection_lost`` has not
      run (``MemoryTransport`` doubles hold nothing and are not counted);
    - each ``Reactor`` created in the block and not closed;
    - each descriptor still registered on one of ``reactors`` (reactors
      from outside the block, such as a fixture's) that was not registered
      when the block began;
    - each ``ResourceWarning`` raised in the block or by the collection at
      its end: something was left for the garbage collector to close (a
      socket, or a reactor whose sockets these are).  Other warnings pass
      through.

    If the block raises, its exception propagates and nothing is checked.
    Close what you open and run the reactor until ``connection_lost`` calls
    are done (``transport.abort()`` then ``reactor.run_once(0)``, or
    ``reactor.close()``) before the block ends.
    """
    gc.collect()
    fds_before = open_descriptors()
    transports_before = weakref.WeakSet(_transports())
    reactors_before = weakref.WeakSet(_reactors())
    registered_before = {id(r): set(r.registered()) for r in reactors}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks: List[str] = []
    for warning in caught:
        if issubclass(warning.category, ResourceWarning):
            leaks.append(f"closed by the garbage collector, not by the code: {warning.message}")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    fds_after = open_descriptors()
    if fds_before is not None and fds_after is not None:
        for fd, what in sorted(set(fds_after.items()) - set(fds_before.items())):
            leaks.append(f"descriptor {fd} ({what}) opened in the block and still open")
    for transport in _transports():
        if transport not in transports_before and transport.get_protocol() is not None:
            leaks.append(f"transport {transport!r} still open (its connection_lost has not run)")
    for reactor in _reactors():
        if reactor not in reactors_before and not reactor.is_closed():
            leaks.append(f"reactor {reactor!r} created in the block and not closed")
    for reactor in reactors:
        for fd, owner in sorted(reactor.registered().items()):
            if fd not in registered_before[id(reactor)]:
                leaks.append(f"descriptor {fd} still registered on {reactor!r}, by {owner!r}")
    if leaks:
        raise LeakError(leaks)


# By type(), not isinstance(): a proxy or a mock claims any __class__.

def _transports() -> Iterator[BaseTransport]:
    for obj in gc.get_objects():
        kind = type(obj)
        if issubclass(kind, BaseTransport) and not issubclass(kind, MemoryTransport):
            yield obj


def _reactors() -> Iterator[Reactor]:
    for obj in gc.get_objects():
        if issubclass(type(obj), Reactor):
            yield obj
