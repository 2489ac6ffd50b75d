"""What every conversation machine shares: events, deadlines and the
transition check.

A machine is sans-IO: bytes and the current time go in, events and bytes to
send come out, and it never touches a socket or reads a clock.  The protocol
adapters in ``reactor.conversations`` connect one to a transport.

Every input method returns the list of events it caused.  ``data_to_send()``
hands over (and forgets) the bytes the machine wants written.  ``deadline``
is the time at which ``handle_timer`` must be called if nothing else happens
first (``None``: no deadline); it is the only timer contract between a
machine and its adapter.  Calling ``handle_timer`` early is harmless (it
re-checks); late is allowed.  ``deadline`` is a plain attribute, not a
property, because an adapter reads it after every chunk.  Once ``finished``
is true the connection should be closed, after flushing.

The one deadline a machine keeps is the message deadline: ``message_timeout``
after the first byte of a message that has not yet ended.  It stops a peer
that trickles one byte at a time from holding a connection forever
(slowloris), and only the machine knows where a message begins.  The idle
deadline (the 30-second select() wait of the original echo server) knows
nothing of messages, so it belongs to the transport
(``StreamTransport.set_idle_timeout``), where every protocol gets it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, List, Mapping, Optional, Tuple, Type, TypeVar

__all__ = [
    "Event", "MessageReceived", "Echoed", "EndOfStream", "TimedOut", "Rejected",
    "IncompleteRecord", "MachineError", "readable", "check_transition", "Deadlines", "Machine",
]


def readable(data: bytes) -> str:
    """Bytes as text for a log line: UTF-8, with anything else shown as
    ``\\xNN`` escapes rather than failing."""
    return data.decode("utf-8", "backslashreplace")


class Event:
    """Base class of everything a machine reports."""

    __slots__ = ()


# Events are made per message or per chunk, so they are plain slotted
# dataclasses: a frozen one's __init__ is several times slower
# (benchmarks/instructions.py).

@dataclass
class MessageReceived(Event):
    """A complete message (its delimiter removed)."""

    __slots__ = ("data",)
    data: bytes

    @property
    def text(self) -> str:
        return readable(self.data)


@dataclass
class Echoed(Event):
    """Bytes that were queued to be sent back."""

    __slots__ = ("data",)
    data: bytes


@dataclass
class EndOfStream(Event):
    """The peer closed its side; the machine is finished."""

    __slots__ = ()


@dataclass
class IncompleteRecord(Event):
    """The peer closed with part of a record unsent; those bytes are dropped."""

    __slots__ = ("size",)
    size: int


@dataclass
class TimedOut(Event):
    """A deadline passed; the machine is finished.  ``reason`` says which."""

    __slots__ = ("reason",)
    reason: str


@dataclass
class Rejected(Event):
    """The peer broke a limit (e.g. message too long); the machine is
    finished.  ``reason`` says what."""

    __slots__ = ("reason",)
    reason: str


class MachineError(RuntimeError):
    """An input the machine cannot accept in its current state: a bug in the
    code driving it, never the peer's fault."""

    def __init__(self, machine: str, state: enum.Enum, trigger: enum.Enum) -> None:
        super().__init__(f"{machine}: cannot handle {trigger.name} in state {state.name}")
        self.state = state
        self.trigger = trigger


StateT = TypeVar("StateT", bound=enum.Enum)
TriggerT = TypeVar("TriggerT", bound=enum.Enum)


def check_transition(machine: Type[object], table: Mapping[Tuple[StateT, TriggerT], StateT],
                     state: StateT, trigger: TriggerT) -> StateT:
    """Look up ``(state, trigger)`` in ``table``; raise ``MachineError``
    naming both when the table has no such transition."""
    try:
        return table[state, trigger]
    except KeyError:
        raise MachineError(machine.__name__, state, trigger) from None


class Deadlines:
    """The message deadline of one connection, as plain numbers.  Machines
    inherit from it (one object per connection, not two);
    ``machine.deadlines`` is the machine itself, for readable call sites."""

    __slots__ = ("message_timeout", "message_started", "deadline")

    def __init__(self, message_timeout: Optional[float]) -> None:
        if message_timeout is not None and not message_timeout >= 0:
            raise ValueError(f"message_timeout must be >= 0 or None, not {message_timeout!r}")
        # 0 disables, like None: "wait forever".
        self.message_timeout = message_timeout or None
        self.message_started: Optional[float] = None
        #: When ``handle_timer`` is next due, or ``None``.
        self.deadline: Optional[float] = None

    @property
    def deadlines(self) -> "Deadlines":
        return self

    @property
    def message_deadline(self) -> Optional[float]:
        if self.message_timeout is None or self.message_started is None:
            return None
        return self.message_started + self.message_timeout

    def _refresh_deadline(self) -> None:
        """Work ``deadline`` out again after an input started or ended a
        message."""
        self.deadline = self.message_deadline

    def expired(self, now: float) -> Optional[str]:
        """Why the connection is out of time at ``now``, or ``None``."""
        message = self.message_deadline
        if message is not None and now >= message:
            return f"message not complete within {self.message_timeout:g}s"
        return None


EventList = List[Event]


class Machine(Deadlines):
    """What every conversation machine shares: its state and the one place
    it changes, the outgoing bytes, and the deadline check.

    A subclass sets ``TRANSITIONS`` (its table), ``INITIAL``, ``CLOSED`` and
    ``TIMEOUT`` (its trigger for a passed deadline), and ``_drop_held()`` to
    forget whatever it buffered when it times out.
    """

    TRANSITIONS: ClassVar[Mapping[Tuple[Any, Any], Any]]
    INITIAL: ClassVar[enum.Enum]
    CLOSED: ClassVar[enum.Enum]
    TIMEOUT: ClassVar[enum.Enum]

    __slots__ = ("state", "finished", "_outgoing")

    def __init__(self, message_timeout: Optional[float]) -> None:
        super().__init__(message_timeout)
        self.state: Any = self.INITIAL
        #: True once the machine is CLOSED: close the connection (after flushing).
        self.finished = False
        self._outgoing = b""

    def data_to_send(self) -> bytes:
        """The bytes to write now (handed over once)."""
        out, self._outgoing = self._outgoing, b""
        return out

    def _to(self, trigger: enum.Enum) -> None:
        """The one place the state changes, always through the table."""
        try:
            self.state = self.TRANSITIONS[self.state, trigger]
        except KeyError:
            check_transition(type(self), self.TRANSITIONS, self.state, trigger)  # raises
        self.finished = self.state is self.CLOSED
        if self.finished:
            self.deadline = None

    def handle_timer(self, now: float) -> List[Event]:
        """Check the deadlines at ``now``.  Harmless when none has passed,
        before ``start()``, or once finished."""
        if (self.state, self.TIMEOUT) not in self.TRANSITIONS:
            return []
        reason = self.expired(now)
        if reason is None:
            return []
        self._to(self.TIMEOUT)
        self._drop_held()
        return [TimedOut(reason)]

    def _drop_held(self) -> None:  # pragma: no cover  (each machine has one)
        raise NotImplementedError
