"""Protocols that run the seed conversations: thin adapters between a
sans-IO machine (``reactor.machines``) and a transport.

Theory of operation
-------------------
Each adapter does the same four things after every input: hand the machine
the bytes (or the EOF, or the timer) with ``reactor.time()``, write what
``data_to_send()`` returns, report each event as one log line, and close the
transport (flushing it) once the machine says it is finished.  Nothing about
the conversation itself is decided here.

Deadlines cost nothing per byte.  All connections of one server share one
``IdleQueue`` (one timer for every idle deadline).  A read records its time
in the machine only; the queue hears of it at most once per ``idle.slack``
(a sixteenth of the timeout), and when it calls back early the machine,
which knows the real last activity, decides and the connection is queued
again at that time.  The rarer message deadline gets a per-connection timer armed
lazily when a message starts and never cancelled per message: when it fires
the machine re-checks, and the timer is re-armed only if a message is still
open.

Subclass ``AckProtocol``, ``ReadProtocol`` or ``EchoProtocol`` and override
``event_received`` (or ``report``) to do something other than log.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Type, Union

from .idle import IdleQueue
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
from .protocols import Protocol
from .servers import DEFAULT_BACKLOG, format_address

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .servers import Hosts, Listener
    from .timers import TimerHandle
    from .transports import Transport

__all__ = [
    "Settings", "ConversationProtocol", "AckProtocol", "ReadProtocol", "EchoProtocol",
    "PROTOCOLS", "DEFAULT_PORTS", "serve", "format_address",
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


class ServerContext:
    """What every connection of one server shares: one object per server
    rather than four attributes per connection."""

    __slots__ = ("reactor", "settings", "log", "idle", "now")

    def __init__(self, reactor: "Reactor", settings: Settings, log: Log,
                 idle: Optional[IdleQueue]) -> None:
        self.reactor = reactor
        #: The reactor's clock, read directly on the per-chunk path.
        self.now: Callable[[], float] = reactor._now
        self.settings = settings
        self.log = log
        self.idle = idle


class ConversationProtocol(Protocol):
    """Runs one machine over one transport and logs what happens.

    Made alone as ``cls(reactor, settings, log)``; ``serve()`` passes one
    shared ``context`` to all of a server's protocols instead (a subclass
    with its own ``__init__`` should accept and pass on ``**kwargs``).
    """

    #: The name used in log lines and on the command line.
    name = "conversation"

    __slots__ = ("_context", "machine", "transport", "peer", "outcome", "_message_timer",
                 "_idle_noted")

    def __init__(self, reactor: "Reactor", settings: Optional[Settings] = None,
                 log: Optional[Log] = None, idle: Optional[IdleQueue] = None, *,
                 context: Optional[ServerContext] = None) -> None:
        if context is None:
            settings = settings or Settings()
            if idle is None and settings.idle_timeout:
                # Used alone, not through serve(): share the reactor's queue
                # for this timeout with any other such protocol.
                idle = _shared_idle_queue(reactor, settings.idle_timeout)
            context = ServerContext(reactor, settings, log or logger.info, idle)
        self._context = context
        self.machine: Machine = self.make_machine()
        self.transport: Optional[Transport] = None
        self.peer = "?"
        self.outcome: Optional[str] = None  # why we closed, once known
        self._message_timer: Optional[TimerHandle] = None
        #: The activity time last given to the idle queue (see _note_activity).
        self._idle_noted = -math.inf

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
        peername = transport.get_extra_info("peername")
        self.peer = format_address(peername)
        self.report_accepted(peername)
        now = self.reactor.time()
        self._after(self.machine.start(now), now)

    def data_received(self, data: bytes) -> None:
        context = self._context
        now = context.now()
        machine = self.machine
        events = machine.receive_data(data, now)
        if events or machine.finished or machine.message_started is not None \
                or context.reactor.tracer is not None:
            self._after(events, now)
            return
        # The per-chunk case, _after() without the parts that cannot apply:
        # no events, no message timer to arm, nothing to trace.
        out = machine.data_to_send()
        if out:
            self.transport.write(out)  # type: ignore[union-attr]
        idle = context.idle
        if idle is not None and now - self._idle_noted >= idle.slack \
                and machine.last_activity == now:
            self._note_activity(idle, now)

    def eof_received(self) -> Optional[bool]:
        now = self.reactor.time()
        self._after(self.machine.receive_eof(now), now)
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._forget_deadlines()
        if exc is not None:
            self.report(f"connection from {self.peer} failed: {exc!r}")
        elif self.outcome is None:
            self.report(f"connection from {self.peer} closed")

    def pause_writing(self) -> None:
        # The peer is not reading what we send: stop reading what it sends
        # until it catches up, so neither buffer grows without bound.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    # -- driving the machine ----------------------------------------------------

    def _after(self, events: List[Event], now: float) -> None:
        # This runs for every chunk received: keep it to attribute reads.
        transport = self.transport
        assert transport is not None
        machine = self.machine
        context = self._context
        out = machine.data_to_send()
        if out:
            transport.write(out)
        if context.reactor.tracer is not None:
            self._trace(events)
        for event in events:
            self.event_received(event)
        if machine.finished:
            self._forget_deadlines()
            transport.close()
            return
        idle = context.idle
        if idle is not None and now - self._idle_noted >= idle.slack \
                and machine.last_activity == now:
            # Only real activity (bytes, or the start) moves us in the idle
            # queue, and at most once per idle.slack: the queue's callback
            # (_idle_expired) re-checks with the machine before closing.
            self._note_activity(idle, now)
        if machine.message_started is not None and self._message_timer is None:
            deadline = machine.message_deadline
            if deadline is not None:
                self._message_timer = context.reactor.call_at(deadline, self._check_deadlines)

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

    def _check_deadlines(self) -> None:
        """The message timer fired."""
        self._message_timer = None
        self._on_deadline()

    def _on_deadline(self) -> None:
        """A deadline may have passed (message timer or idle queue): the
        machine decides."""
        if self.transport is None or self.transport.is_closing():
            return
        now = self.reactor.time()
        self._after(self.machine.handle_timer(now), now)

    def _note_activity(self, idle: IdleQueue, when: float) -> None:
        idle.touch(self, when)
        self._idle_noted = when

    def _forget_deadlines(self) -> None:
        if self._context.idle is not None:
            self._context.idle.discard(self)
        if self._message_timer is not None:
            self._message_timer.cancel()
            self._message_timer = None

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


def _idle_expired(protocol: ConversationProtocol, now: float) -> None:
    """The idle queue found ``protocol`` due by the activity time it last
    recorded.  The machine decides; if it was active since (the adapter
    records activity at most once per ``idle.slack``), queue it again at
    its real last activity."""
    protocol._on_deadline()
    machine, transport, idle = protocol.machine, protocol.transport, protocol._context.idle
    if (idle is not None and not machine.finished and transport is not None
            and not transport.is_closing()):
        protocol._note_activity(idle, machine.last_activity)


def _shared_idle_queue(reactor: "Reactor", timeout: float) -> IdleQueue:
    """The reactor's idle queue for ``timeout``, shared by conversation
    protocols made without ``serve()``."""
    queues = reactor._idle_queues
    if timeout not in queues:
        queues[timeout] = IdleQueue(reactor, timeout, _idle_expired)
    return queues[timeout]


class AckProtocol(ConversationProtocol):
    """Seed 3: acknowledge, then report every message as
    ``Got the message:<text>``."""

    name = "ack"
    __slots__ = ()

    def make_machine(self) -> Machine:
        s = self.settings
        return AckMachine(idle_timeout=s.idle_timeout, message_timeout=s.message_timeout,
                          max_message=s.max_message)

    def report_accepted(self, peername: Any) -> None:
        host, port = (peername[0], peername[1]) if isinstance(peername, tuple) else (peername, "?")
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
        return ReadMachine(idle_timeout=s.idle_timeout, message_timeout=s.message_timeout,
                           max_message=s.max_message)

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
        return EchoMachine(idle_timeout=s.idle_timeout, message_timeout=s.message_timeout,
                           record_size=s.record_size, report_echoes=s.verbose)

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
          protocol_class: Optional[Type[ConversationProtocol]] = None) -> "Listener":
    """Start a server for conversation ``kind`` (``ack``, ``read`` or
    ``echo``) and return its listener.  All its connections share one idle
    timer."""
    cls = protocol_class or PROTOCOLS[kind]
    settings = settings or Settings()
    idle = None
    if settings.idle_timeout:
        idle = IdleQueue(reactor, settings.idle_timeout, _idle_expired)
    context = ServerContext(reactor, settings, log or logger.info, idle)

    def factory() -> ConversationProtocol:
        return cls(reactor, context=context)

    return reactor.listen_tcp(factory, host, DEFAULT_PORTS[kind] if port is None else port,
                              backlog=backlog, write_timeout=settings.write_timeout)
