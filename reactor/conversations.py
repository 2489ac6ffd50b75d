"""Protocols that run the seed conversations: thin adapters between a
sans-IO machine (``reactor.machines``) and a transport.

Theory of operation
-------------------
After every input (the start, bytes, the EOF, a deadline) the adapter does
the same things, in ``_after``: write what ``data_to_send()`` returns, report
each event as one log line, close the transport (flushing it) once the
machine is finished, and make sure it is woken no later than the machine's
``deadline``.  Nothing about the conversation itself is decided here.

Deadlines cost nothing per byte.  The idle deadline is the transport's
(``serve`` sets it on the listener; a protocol made alone sets it on its
transport), and reaches ``deadline_exceeded``, which logs it as the seed
server did.  The message deadline is the machine's: its ``deadline`` is the
only timer contract between the two, and all connections of one server
share one ``DeadlineQueue`` for it.  The adapter touches the queue only
when the deadline moves *earlier* than the wake-up already queued (a
message started); a wake-up that comes early finds time left and queues
the connection again at its real deadline.

Subclass ``AckProtocol``, ``ReadProtocol`` or ``EchoProtocol`` and override
``event_received`` (or ``report``) to do something other than log.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Type, Union

from .addresses import format_address
from .deadlines import DeadlineQueue
from .machines import (
    AckMachine,
    Echoed,
    EchoMachine,
    EndOfStream,
    Event,
    IncompleteRecord,
    MessageReceived,
    ReadMachine,
    Rejected,
    TimedOut,
)
from .protocols import DatagramProtocol, Protocol
from .tcp import DEFAULT_BACKLOG, listen_tcp
from .transports import DeadlineExceeded
from .udp import UDPTransport, listen_udp
from .unix import listen_unix

if TYPE_CHECKING:  # pragma: no cover
    import ssl as ssl_module

    from .listeners import Listener
    from .loop import Reactor
    from .tcp import Hosts
    from .transports import Transport

__all__ = [
    "Settings", "ConversationProtocol", "AckProtocol", "ReadProtocol", "EchoProtocol",
    "PROTOCOLS", "DEFAULT_PORTS", "serve", "format_address", "DatagramEcho", "serve_udp_echo",
]

logger = logging.getLogger("reactor.conversations")

Log = Callable[[str], None]
Machine = Union[AckMachine, ReadMachine, EchoMachine]


@dataclass
class Settings:
    """How a conversation server treats its connections."""

    #: Close a connection that sends nothing for this long (0/None: never).
    idle_timeout: Optional[float] = 30.0
    #: Close a connection whose message is still unfinished this long after
    #: its first byte (0/None: never).  Stops one-byte-at-a-time tricklers.
    message_timeout: Optional[float] = None
    #: Longest message accepted by ack and read; longer closes the connection.
    max_message: int = 65536
    #: Echo only whole records of this many bytes (like SO_RCVLOWAT).
    record_size: Optional[int] = None
    #: Abort a connection whose peer has read none of our pending output for
    #: this long (0/None: never), so a client that stops reading cannot pin
    #: memory.  (Echo stops reading from such a client meanwhile.)
    write_timeout: Optional[float] = 60.0
    #: Report every echoed chunk, not only connection events.
    verbose: bool = False
    #: Stop accepting while this many connections are open (None: no limit).
    max_connections: Optional[int] = None
    #: Close at once a connection from a host that has this many open.
    max_connections_per_host: Optional[int] = None


class ServerContext:
    """What every connection of one server shares: one object per server
    rather than several attributes per connection."""

    __slots__ = ("reactor", "settings", "log", "deadlines", "now")

    def __init__(self, reactor: "Reactor", settings: Settings, log: Log) -> None:
        self.reactor = reactor
        #: The reactor's clock, read directly on the per-chunk path.
        self.now: Callable[[], float] = reactor.clock.now
        self.settings = settings
        self.log = log
        #: One timer for the deadlines of all the server's connections.
        self.deadlines = DeadlineQueue(reactor, ConversationProtocol._deadline_due)


class ConversationProtocol(Protocol):
    """Runs one machine over one transport and logs what happens.

    Made alone as ``cls(reactor, settings, log)``; ``serve()`` passes one
    shared ``context`` to all of a server's protocols instead (a subclass
    with its own ``__init__`` should accept and pass on ``**kwargs``).
    """

    #: The name used in log lines and on the command line.
    name = "conversation"

    __slots__ = ("_context", "machine", "transport", "peer", "outcome", "_wake_at")

    def __init__(self, reactor: "Reactor", settings: Optional[Settings] = None,
                 log: Optional[Log] = None, *,
                 context: Optional[ServerContext] = None) -> None:
        if context is None:
            context = ServerContext(reactor, settings or Settings(), log or logger.info)
        self._context = context
        self.machine: Machine = self.make_machine()
        self.transport: Optional[Transport] = None
        self.peer = "?"
        self.outcome: Optional[str] = None  # why we closed, once known
        #: When the server's deadline queue will wake us (inf: it will not).
        self._wake_at = math.inf

    @property
    def reactor(self) -> "Reactor":
        return self._context.reactor

    @property
    def settings(self) -> Settings:
        return self._context.settings

    @property
    def log(self) -> Log:
        return self._context.log

    def make_machine(self) -> Machine:  # pragma: no cover  (always overridden)
        raise NotImplementedError

    # -- Protocol callbacks -----------------------------------------------------

    def connection_made(self, transport: "Transport") -> None:
        self.transport = transport
        # A no-op under serve(), which gives the listener the same value.
        transport.set_idle_timeout(self.settings.idle_timeout)
        peername = transport.get_extra_info("peername")
        self.peer = format_address(peername)
        self.report_accepted(peername)
        self._after(self.machine.start(self._context.now()))

    def data_received(self, data: bytes) -> None:
        self._after(self.machine.receive_data(data, self._context.now()))

    def eof_received(self) -> Optional[bool]:
        self._after(self.machine.receive_eof(self._context.now()))
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._forget_deadline()
        if isinstance(exc, DeadlineExceeded) and self.outcome == "timed out":
            return  # deadline_exceeded has said so
        if exc is not None:
            self.report(f"connection from {self.peer} failed: {exc!r}")
        elif self.outcome is None:
            self.report(f"connection from {self.peer} closed")

    def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
        """One of the transport's deadlines passed: log it as the seed
        servers do, and let the transport close."""
        reason = f"no data for {exc.timeout:g}s" if exc.kind == "idle" else str(exc)
        self.event_received(TimedOut(reason))
        return None

    def pause_writing(self) -> None:
        # The peer is not reading what we send: stop reading what it sends
        # until it catches up, so neither buffer grows without bound.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    # -- driving the machine ----------------------------------------------------

    def _after(self, events: List[Event]) -> None:
        """What follows every input to the machine (see the module
        docstring).  It runs once per chunk received: the common case (no
        events, not finished, no tracing) skips straight to the deadline
        check, and that check is two attribute reads and a comparison
        (benchmarks/instructions.py)."""
        machine = self.machine
        out = machine.data_to_send()
        if out:
            self.transport.write(out)  # type: ignore[union-attr]
        context = self._context
        if events or machine.finished or context.reactor.tracer is not None:
            if self._handle_events(events):
                return
        deadline = machine.deadline
        if deadline is not None and deadline < self._wake_at:
            self._wake_at = deadline
            context.deadlines.touch(self, deadline)

    def _handle_events(self, events: List[Event]) -> bool:
        """Trace and report ``events``; once the machine is finished, close
        the transport and return True."""
        if self.reactor.tracer is not None:
            self._trace(events)
        for event in events:
            self.event_received(event)
        if not self.machine.finished:
            return False
        self._forget_deadline()
        assert self.transport is not None
        self.transport.close()
        return True

    def _deadline_due(self, now: float) -> None:
        """The server's deadline queue woke us: the machine decides whether
        a deadline really passed; if not, ``_after`` queues us again.  An
        exception from reporting the events (``event_received``,
        ``report``) aborts this connection, as it would from
        ``data_received``."""
        self._wake_at = math.inf
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.reactor.call_user(self._after, self.machine.handle_timer(now),
                                   on_error=lambda exc: transport.abort(),
                                   protocol=self, transport=transport)

    def _forget_deadline(self) -> None:
        if self._wake_at != math.inf:
            self._context.deadlines.discard(self)
            self._wake_at = math.inf

    def _trace(self, events: List[Event]) -> None:
        tracer = self.reactor.tracer
        assert tracer is not None
        conn = tracer.id_of(self.transport)
        state = self.machine.state
        previous = tracer.state_changed(self.transport, state)
        if previous is not state:
            old = "-" if previous is None else previous.name
            tracer.record("machine", conn, f"{self.name}: {old} -> {state.name}")
        for event in events:
            if isinstance(event, TimedOut):
                tracer.record("timeout", conn, event.reason)
            elif not isinstance(event, Echoed):
                tracer.record("event", conn, repr(event))

    # -- reporting ----------------------------------------------------------------

    def report(self, line: str) -> None:
        """Log one line.  Override to send it somewhere else."""
        self.log(line)

    def report_accepted(self, peername: Any) -> None:
        self.report(f"accepted connection from {format_address(peername)}")

    def event_received(self, event: Event) -> None:
        """Called for each event the machine reports; the default logs the
        connection-level ones.  Subclasses add their message lines."""
        if isinstance(event, TimedOut):
            self.outcome = "timed out"
            self.report(f"connection from {self.peer} timed out: {event.reason}")
        elif isinstance(event, Rejected):
            self.outcome = "rejected"
            self.report(f"connection from {self.peer} closed: {event.reason}")
        elif isinstance(event, IncompleteRecord):
            self.report(f"connection from {self.peer} closed with {event.size} bytes "
                        f"of an incomplete record")


class AckProtocol(ConversationProtocol):
    """Seed 3: acknowledge, then report every message as
    ``Got the message:<text>``."""

    name = "ack"
    __slots__ = ()

    def make_machine(self) -> Machine:
        s = self.settings
        return AckMachine(message_timeout=s.message_timeout, max_message=s.max_message)

    def report_accepted(self, peername: Any) -> None:
        host, port = ((peername[0], peername[1]) if isinstance(peername, tuple)
                      else (format_address(peername), "?"))  # a Unix socket has no port
        self.report(f"server: got connection from = {host} and port = {port}")

    def event_received(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            self.report(f"Got the message:{event.text}")
        else:
            super().event_received(event)


class ReadProtocol(ConversationProtocol):
    """Seed 4 (and seed 1's server): report every message as ``--><text>``
    and the end of the stream as ``Ending connection``."""

    name = "read"
    __slots__ = ()

    def make_machine(self) -> Machine:
        s = self.settings
        return ReadMachine(message_timeout=s.message_timeout, max_message=s.max_message)

    def event_received(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            self.report(f"-->{event.text}")
        elif isinstance(event, EndOfStream):
            self.outcome = "ended"
            self.report("Ending connection")
        else:
            super().event_received(event)


class EchoProtocol(ConversationProtocol):
    """Seed 2: send every byte back (whole records only with
    ``record_size``)."""

    name = "echo"
    __slots__ = ()

    def make_machine(self) -> Machine:
        s = self.settings
        return EchoMachine(message_timeout=s.message_timeout, record_size=s.record_size,
                           report_echoes=s.verbose)

    def event_received(self, event: Event) -> None:
        if isinstance(event, Echoed):
            if self.settings.verbose:
                self.report(f"echoed {len(event.data)} bytes to {self.peer}")
        else:
            super().event_received(event)


PROTOCOLS: Dict[str, Type[ConversationProtocol]] = {
    "ack": AckProtocol,
    "read": ReadProtocol,
    "echo": EchoProtocol,
}

#: The seed programs' ports: echo 3005, ack 50544, read lets the kernel pick.
DEFAULT_PORTS = {"echo": 3005, "ack": 50544, "read": 0}


def serve(reactor: "Reactor", kind: str, host: "Hosts" = "localhost",
          port: Optional[int] = None, *, settings: Optional[Settings] = None,
          log: Optional[Log] = None, backlog: int = DEFAULT_BACKLOG,
          protocol_class: Optional[Type[ConversationProtocol]] = None,
          unix: Optional[str] = None,
          ssl: Optional["ssl_module.SSLContext"] = None) -> "Listener":
    """Start a server for conversation ``kind`` (``ack``, ``read`` or
    ``echo``) and return its listener: on ``host`` and ``port``, or on the
    Unix socket ``unix`` if given; over TLS with the server context
    ``ssl``.  All its connections share one deadline timer."""
    cls = protocol_class or PROTOCOLS[kind]
    settings = settings or Settings()
    context = ServerContext(reactor, settings, log or logger.info)

    def factory() -> ConversationProtocol:
        return cls(reactor, context=context)

    if unix is not None:
        return listen_unix(reactor, factory, unix, backlog=backlog,
                           write_timeout=settings.write_timeout,
                           idle_timeout=settings.idle_timeout,
                           max_connections=settings.max_connections, ssl=ssl)
    return listen_tcp(reactor, factory, host, DEFAULT_PORTS[kind] if port is None else port,
                      backlog=backlog, write_timeout=settings.write_timeout,
                      idle_timeout=settings.idle_timeout,
                      max_connections=settings.max_connections,
                      max_connections_per_host=settings.max_connections_per_host, ssl=ssl)


class DatagramEcho(DatagramProtocol):
    """Seed 2 over UDP: every datagram goes back to its sender, whole."""

    def __init__(self, log: Optional[Log] = None, verbose: bool = False) -> None:
        self.log = log or logger.info
        self.verbose = verbose
        self.echoed = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)
        self.echoed += 1
        if self.verbose:
            self.log(f"echoed {len(data)} bytes to {format_address(addr)}")

    def error_received(self, exc: Exception) -> None:
        self.log(f"datagram error: {exc}")


def serve_udp_echo(reactor: "Reactor", host: "Hosts" = "localhost", port: Optional[int] = None,
                   *, log: Optional[Log] = None, verbose: bool = False) -> UDPTransport:
    """The UDP echo server, on the echo port by default."""
    return listen_udp(reactor, lambda: DatagramEcho(log, verbose), host,
                      DEFAULT_PORTS["echo"] if port is None else port)
