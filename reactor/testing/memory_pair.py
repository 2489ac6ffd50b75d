"""``MemoryPair``: a client and a server protocol connected in memory, on a
fake clock, with the faults a network can inject."""

from __future__ import annotations

import collections
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..loop import Reactor
from ..protocols import Protocol
from .chunks import chunks
from .clock import FakeClock
from .transport import MemoryTransport

__all__ = ["MemoryPair", "Link"]

Chunking = Union[None, int, Sequence[int], Callable[[bytes], Iterable[bytes]]]

# What travels on a link besides bytes.
_EOF = "EOF"
_RESET = "RESET"


class Link:
    """One direction of a ``MemoryPair``: what ``source``'s protocol writes
    arrives at ``target``'s, ``delay`` seconds later, cut as ``chunking``
    says (``None``: as read; an int, or sizes in turn, as in ``chunks()``;
    or a function from bytes to pieces).  At most ``window`` bytes are on
    the way: while the receiver does not read, the sender's write buffer
    fills and its protocol hears ``pause_writing``.  Bytes that reach a
    closed receiver, or that follow a cut, are counted in ``dropped``."""

    def __init__(self, source: MemoryTransport, target: MemoryTransport, *,
                 delay: float, chunking: Chunking, window: int) -> None:
        self.check(delay, chunking, window)
        self.source = source
        self.target = target
        self.delay = delay
        self.chunking = chunking
        self.window = window
        self.delivered = 0
        self.dropped = 0
        self._queue: Deque[Tuple[float, Union[bytes, str]]] = collections.deque()
        self._in_flight = 0
        self._last_arrival = 0.0
        self._ended = False
        self._ended_with = ""
        self._cut_budget: Optional[int] = None
        self._cut_with = _EOF
        #: The other direction (set by the pair): a reset ends it too.
        self.reverse: Optional[Link] = None

    @staticmethod
    def check(delay: float, chunking: Chunking, window: int) -> None:
        """``ValueError`` for options no link can have."""
        if delay < 0 or window < 1:
            raise ValueError(f"need delay >= 0 and window >= 1, not {delay!r} and {window!r}")
        sizes = [chunking] if isinstance(chunking, int) else chunking
        if isinstance(sizes, (list, tuple)) and (not sizes or min(sizes) < 1):
            raise ValueError(f"chunks must be at least 1 byte, not {chunking!r}")

    def cut_after(self, n: int, reset: bool = False) -> None:
        """Fault injection: let ``n`` more bytes through, then end this
        direction with an EOF (or a reset, ``ConnectionResetError``), as if
        the sender died mid-message.  Whatever it writes after that is
        dropped; the sender is not told."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._cut_budget = n
        self._cut_with = _RESET if reset else _EOF

    def next_arrival(self) -> Optional[float]:
        return self._queue[0][0] if self._queue else None

    def pump(self, now: float) -> bool:
        """Move what can move at time ``now``; true if anything did."""
        return self._take(now) | self._deliver(now)

    def _take(self, now: float) -> bool:
        source = self.source
        if self._ended:
            if self._ended_with == _EOF and source.aborted:
                self._ended_with = _RESET  # a reset after our FIN still goes
                self._drop_in_flight()
                self._arrive(_RESET, now)
                return True
            if source.get_write_buffer_size():  # the sender writes into the void
                self.dropped += len(source.peer_read())
                return True
            return False
        room = self.window - self._in_flight
        moved = False
        if room > 0 and source.get_write_buffer_size():
            self._send(source.peer_read(room), now)
            moved = True
        if self._ended:
            return True
        if source.aborted:
            self._drop_in_flight()
            self._end(_RESET, now)
            return True
        if source.eof_sent or (source.is_closing() and not source.get_write_buffer_size()
                               and source.lost is not None):
            self._end(_EOF, now)
            return True
        return moved

    def _drop_in_flight(self) -> None:
        """A reset overtakes what is on the way: the receiver loses it."""
        self.dropped += self._in_flight
        self._queue = collections.deque(
            item for item in self._queue if not isinstance(item[1], bytes))
        self._in_flight = 0

    def _send(self, data: bytes, now: float) -> None:
        if self._cut_budget is not None:
            data, rest = data[:self._cut_budget], data[self._cut_budget:]
            self._cut_budget -= len(data)
            self.dropped += len(rest)
        for piece in self._pieces(data):
            self._arrive(piece, now)
            self._in_flight += len(piece)
        if self._cut_budget == 0:
            self._end(self._cut_with, now)
            self._ended_with = "cut"  # the source knows nothing of it

    def _pieces(self, data: bytes) -> Iterable[bytes]:
        if not data:
            return []
        if self.chunking is None:
            return [data]
        if callable(self.chunking):
            return list(self.chunking(data))
        return chunks(data, self.chunking)

    def _end(self, item: str, now: float) -> None:
        self._ended = True
        self._ended_with = item
        self._arrive(item, now)

    def _arrive(self, item: Union[bytes, str], now: float) -> None:
        # First in, first out, even if the delay was shortened meanwhile.
        self._last_arrival = max(now + self.delay, self._last_arrival)
        self._queue.append((self._last_arrival, item))

    def _deliver(self, now: float) -> bool:
        target = self.target
        moved = False
        while self._queue and self._queue[0][0] <= now:
            item = self._queue[0][1]
            if isinstance(item, bytes):
                if target.is_closing():
                    self.dropped += len(item)
                elif not target.is_reading():
                    break  # waits; the window then stops the sender
                self._queue.popleft()
                self._in_flight -= len(item)
                if not target.is_closing():
                    self.delivered += len(item)
                    target.feed(item)
            else:
                self._queue.popleft()
                if item == _RESET:
                    if self.reverse is not None:  # a reset side sends nothing more
                        self.reverse._ended = True
                        self.reverse._ended_with = _RESET
                    if target.lost is None:
                        target.lose(ConnectionResetError("connection reset by peer"))
                elif not target.is_closing():
                    target.feed_eof()
            moved = True
        return moved


class MemoryPair:
    """A server and a client protocol connected in memory: no sockets, no
    sleeping, every step deterministic.

    Both sides are ``MemoryTransport`` objects (``server``, ``client``) on
    one ``Reactor`` running on a ``FakeClock`` (``reactor``, ``clock``), so
    the protocols' timers and deadlines work.  ``to_server`` and
    ``to_client`` are the two ``Link`` directions, where the faults are
    set: ``delay``, ``chunking``, ``window`` and ``cut_after()``;
    ``reset(transport)`` makes the other side abort.

    Nothing moves until ``run()`` (everything that can happen now) or
    ``advance(seconds)`` (and what falls due on the way).  An exception
    raised by a protocol propagates out of them; so does one reported to
    the reactor, e.g. from a timer callback (all are kept in ``errors``).
    ``close()``, or leaving the ``with`` block, aborts both sides and closes
    the reactor.
    """

    def __init__(self, server_protocol: Protocol, client_protocol: Protocol, *,
                 clock: Optional[FakeClock] = None, delay: float = 0.0,
                 chunking: Chunking = None, window: int = 65536,
                 server_address: Tuple[str, int] = ("127.0.0.1", 3005),
                 client_address: Tuple[str, int] = ("127.0.0.1", 54321)) -> None:
        self.clock = clock if clock is not None else FakeClock()
        options: Dict[str, Any] = {"delay": delay, "chunking": chunking, "window": window}
        Link.check(**options)
        self.reactor = Reactor(clock=self.clock)
        self.errors: List[Dict[str, Any]] = []
        self._raised = 0
        self.reactor.set_exception_handler(lambda reactor, context: self.errors.append(context))
        self.server = MemoryTransport(peername=client_address, sockname=server_address,
                                      reactor=self.reactor, peer_reading=False)
        self.client = MemoryTransport(peername=server_address, sockname=client_address,
                                      reactor=self.reactor, peer_reading=False)
        self.to_server = Link(self.client, self.server, **options)
        self.to_client = Link(self.server, self.client, **options)
        self.to_server.reverse, self.to_client.reverse = self.to_client, self.to_server
        try:
            self.server.connect(server_protocol)
            self.client.connect(client_protocol)
            self.run()
        except BaseException:
            self.reactor.close()
            raise

    def run(self, max_steps: int = 100_000) -> None:
        """Deliver, and run callbacks, until nothing more can happen without
        time passing.  ``max_steps`` bounds protocols that never go quiet."""
        links = (self.to_server, self.to_client)
        for _ in range(max_steps):
            now = self.clock.now()
            moved = False
            for link in links:
                moved |= link.pump(now)
            if self.reactor.next_timeout() == 0:
                self.reactor.run_once(0)
                self._raise_reported()
            elif not moved:
                return
        raise RuntimeError(f"MemoryPair.run(): still busy after {max_steps} steps")

    def advance(self, seconds: float, max_steps: int = 100_000) -> None:
        """Move the clock forward by ``seconds``, stopping at each timer and
        each arrival on the way, in order.  ``max_steps`` bounds the stops
        (a timer that keeps rescheduling itself at once)."""
        end = self.clock.now() + seconds
        self.run()
        for _ in range(max_steps):
            now = self.clock.now()
            # What is due now and still here waits for the receiver to read.
            due = [when for when in (self.reactor.next_deadline(),
                                     self.to_server.next_arrival(),
                                     self.to_client.next_arrival())
                   if when is not None and when > now]
            if not due or min(due) > end:
                break
            self.clock.set(min(due))
            self.run()
        else:
            raise RuntimeError(f"MemoryPair.advance(): still busy after {max_steps} steps")
        self.clock.set(end)
        self.run()

    def reset(self, victim: MemoryTransport) -> None:
        """Fault injection: the other side aborts, and ``victim``'s protocol
        gets ``connection_lost(ConnectionResetError)`` when the reset
        arrives (after the link's delay)."""
        other = self.client if victim is self.server else self.server
        other.abort()
        self.run()

    def close(self) -> None:
        if self.reactor.is_closed():
            return
        try:
            for transport in (self.server, self.client):
                transport.abort()
            self.run()
        finally:
            self.reactor.close()

    def __enter__(self) -> "MemoryPair":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _raise_reported(self) -> None:
        if self._raised < len(self.errors):
            context = self.errors[self._raised]
            self._raised += 1
            exc = context.get("exception")
            if isinstance(exc, BaseException):
                raise exc
            raise AssertionError(context.get("message", "an error was reported"))
