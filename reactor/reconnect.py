"""Keeping one client connection up: ``ReconnectingClient``.

Theory of operation
-------------------
``start()`` connects at once.  A connect that fails waits and tries again,
each wait longer than the last (``Backoff``: exponential, capped, with
jitter), until one succeeds.  Once connected, the consecutive-failure count
goes back to zero; when that connection is lost, the client waits
``initial_delay`` and starts again.  Every connection gets a fresh protocol
from the factory, which sees the ordinary ``connection_made`` ...
``connection_lost``, so a protocol written for ``connect_tcp`` works
unchanged.  (Twisted's ``ClientService`` is the model.)

The client learns that a connection is gone through its own
``TransportGroup``: the group's ``on_leave`` runs after the protocol's
``connection_lost``, so the protocol has finished before the next attempt
begins.  A graceful ``Reactor.shutdown`` stops the retrying and lets the
connection finish as every other does; ``Reactor.close`` stops everything.

Each attempt is reported once its outcome is known: a log line on the
``reactor.reconnect`` logger (INFO when connected, WARNING when not) and
``on_attempt(attempt)``, an ``Attempt`` with the attempt's number, its
error and the delay before the next one.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from .addresses import format_address
from .listeners import ProtocolFactory
from .streams import StreamTransport, TransportGroup
from .tcp import ConnectError, Connector, connect_tcp
from .transports import Transport

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .protocols import Protocol
    from .timers import TimerHandle

__all__ = ["ReconnectingClient", "Backoff", "Attempt"]

logger = logging.getLogger("reactor.reconnect")


class Backoff:
    """How long to wait after the n-th consecutive failure.

    The delay is ``initial_delay * factor ** (n - 1)``, at most
    ``max_delay``; then a random share of up to ``jitter`` (0 to 1) of it is
    taken off, so that clients that lost the same server do not all come back
    at the same moment.  The delay never exceeds ``max_delay``.  ``rng`` is
    the ``random.Random`` to draw from (give a seeded one in tests).
    """

    def __init__(self, initial_delay: float = 1.0, factor: float = 2.0,
                 max_delay: float = 60.0, jitter: float = 0.1,
                 rng: Optional[random.Random] = None) -> None:
        if initial_delay < 0:
            raise ValueError(f"initial_delay must be >= 0, not {initial_delay!r}")
        if factor < 1:
            raise ValueError(f"factor must be >= 1, not {factor!r}")
        if max_delay < initial_delay:
            raise ValueError(f"max_delay ({max_delay!r}) is below initial_delay "
                             f"({initial_delay!r})")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {jitter!r}")
        self.initial_delay = initial_delay
        self.factor = factor
        self.max_delay = max_delay
        self.jitter = jitter
        self.rng = rng or random.Random()

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` (>= 1) consecutive failures."""
        if failures < 1:
            raise ValueError(f"failures must be >= 1, not {failures!r}")
        try:
            base = min(self.max_delay, self.initial_delay * self.factor ** (failures - 1))
        except OverflowError:  # long past the cap
            base = self.max_delay
        if self.jitter:
            base *= 1 - self.jitter * self.rng.random()
        return base

    def __repr__(self) -> str:
        return (f"Backoff(initial_delay={self.initial_delay!r}, factor={self.factor!r}, "
                f"max_delay={self.max_delay!r}, jitter={self.jitter!r})")


class Attempt(NamedTuple):
    """One connect attempt's outcome, as ``on_attempt`` receives it."""

    #: 1 for the client's first attempt, counting up for its whole life.
    number: int
    #: The ``ConnectError``; ``None`` when the attempt connected.
    error: Optional[ConnectError]
    #: Seconds until the next attempt; ``None`` when connected.
    delay: Optional[float]


AttemptCallback = Callable[[Attempt], Any]


class ReconnectingClient:
    """Keep one TCP connection to ``host``:``port`` up until ``stop()``.

    ``protocol_factory()`` makes the protocol for each connection.  The
    backoff keywords are ``Backoff``'s; ``on_attempt(attempt)`` is called
    after each attempt (see ``Attempt``).  Every other keyword goes to
    ``connect_tcp`` for each attempt (``timeout``, ``idle_timeout``,
    ``local_addr``, ``ssl``, ``server_hostname``, ...).

    ``transport`` and ``protocol`` are the current connection's, ``None``
    while there is none.  ``attempts`` counts every attempt made.
    """

    def __init__(self, reactor: "Reactor", protocol_factory: ProtocolFactory,
                 host: str, port: int, *, initial_delay: float = 1.0, factor: float = 2.0,
                 max_delay: float = 60.0, jitter: float = 0.1,
                 on_attempt: Optional[AttemptCallback] = None,
                 rng: Optional[random.Random] = None, **connect_options: Any) -> None:
        self.reactor = reactor
        self.protocol_factory = protocol_factory
        self.host = host
        self.port = port
        self.backoff = Backoff(initial_delay, factor, max_delay, jitter, rng)
        self.on_attempt = on_attempt
        self.transport: Optional[Transport] = None
        self._stream: Optional[StreamTransport] = None  # the connection under any TLS
        self.protocol: Optional["Protocol"] = None
        self.attempts = 0
        self._options = connect_options
        self._group = TransportGroup(reactor, on_leave=self._connection_gone)
        self._running = False
        self._failures = 0
        self._connector: Optional[Connector] = None
        self._timer: Optional["TimerHandle"] = None

    def is_running(self) -> bool:
        """Between ``start()`` and ``stop()``."""
        return self._running

    def start(self) -> None:
        """Connect now, and keep connecting until ``stop()``.  Does nothing
        if already started."""
        if self._running:
            return
        if self.reactor.is_closed():
            raise RuntimeError("this reactor is closed")
        self._running = True
        self._failures = 0
        self.reactor.add_shutdown_hook(self._reactor_shutting_down)
        self.reactor.add_close_hook(self.stop)
        try:
            self._connect()
        except BaseException:  # bad connect options, say: nothing is left running
            self._stop_trying()
            raise

    def stop(self) -> None:
        """Stop trying, and close the current connection (after flushing;
        its protocol's ``connection_lost`` follows as usual).  ``start()``
        may be called again later."""
        self._stop_trying()
        if self.transport is not None:
            self.transport.close()

    def __repr__(self) -> str:
        state = ("connected" if self.transport is not None
                 else "stopped" if not self._running
                 else "connecting" if self._connector is not None else "waiting")
        return (f"<ReconnectingClient {format_address((self.host, self.port))} {state}, "
                f"{self.attempts} attempt(s)>")

    # -- the cycle ------------------------------------------------------------------

    def _connect(self) -> None:
        self._timer = None
        self.attempts += 1
        connector = connect_tcp(self.reactor, self.protocol_factory, self.host, self.port,
                                group=self._group, **self._options)
        self._connector = connector
        connector.add_done_callback(self._connect_done)

    def _connect_done(self, connector: Connector) -> None:
        self._connector = None
        error = connector.error
        if error is None:
            self.transport, self.protocol = connector.transport, connector.protocol
            self._stream = connector.stream
            logger.info("connected to %s (attempt %d)", self._address(), self.attempts)
            self._report(Attempt(self.attempts, None, None))
            return
        self._failures += 1
        delay = self._retry_later()
        logger.warning("attempt %d failed: %s; next attempt in %.3gs",
                       self.attempts, error, delay)
        self._report(Attempt(self.attempts, error, delay))

    def _connection_gone(self, transport: StreamTransport) -> None:
        if transport is not self._stream:
            return  # one whose connection_made failed: already counted
        self.transport = self.protocol = self._stream = None
        if not self._running:
            return
        self._failures = 1  # counting starts afresh after a good connection
        delay = self._retry_later()
        logger.info("connection to %s lost; reconnecting in %.3gs", self._address(), delay)

    def _retry_later(self) -> float:
        delay = self.backoff.delay(self._failures)
        if self._running:
            self._timer = self.reactor.call_later(delay, self._connect)
        return delay

    def _report(self, attempt: Attempt) -> None:
        if self.on_attempt is not None:
            self.reactor.call_user(self.on_attempt, attempt, client=self)

    def _stop_trying(self) -> None:
        if not self._running:
            return
        self._running = False
        self.reactor.remove_shutdown_hook(self._reactor_shutting_down)
        self.reactor.remove_close_hook(self.stop)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None

    def _reactor_shutting_down(self, grace: float, done: Callable[[], Any]) -> None:
        # The connection finishes with every other one (its group is part of
        # the shutdown); only the retrying stops here.
        self._stop_trying()
        done()

    def _address(self) -> str:
        return format_address((self.host, self.port))
