"""The ``echo`` conversation (seed 2, the fixed-size echo with a 30 s wait).

Everything that affects this machine lives in this file.

Without a record size every byte is sent back as soon as it arrives.  With
``record_size`` set (the original used SO_RCVLOWAT = 250) bytes are held
until a whole record is in, then the complete records are sent back, so the
peer sees exactly what a low-water mark would have produced whatever the
segmentation: ``reactor.framing.RecordFramer`` does the cutting.  A
partial record left when the peer closes is dropped and reported as
``IncompleteRecord``.  A record in progress counts as a message for the
message deadline (``base.Deadlines``).
"""

from __future__ import annotations

import enum
from typing import List, Optional

from ..framing import RecordFramer
from .base import Echoed, EndOfStream, Event, IncompleteRecord, Machine

__all__ = ["State", "Trigger", "TRANSITIONS", "EchoMachine"]


class State(enum.Enum):
    # Identity hashing in C: Enum's own __hash__ is Python code, and every
    # input looks a (state, trigger) pair up in the table
    # (benchmarks/instructions.py).
    __hash__ = object.__hash__

    #: Created; ``start()`` has not been called.
    NEW = "new"
    #: Open, nothing held back.
    OPEN = "open"
    #: Part of a record has arrived and is held until the rest comes.
    IN_RECORD = "in record"
    #: Finished: the peer closed or a deadline passed.
    CLOSED = "closed"


class Trigger(enum.Enum):
    __hash__ = object.__hash__

    #: The connection was made.
    START = "start"
    #: Bytes arrived and everything received has been echoed.
    ECHOED = "echoed"
    #: Bytes arrived and part of a record is held back.
    PARTIAL = "partial"
    #: The peer closed its side.
    EOF = "eof"
    #: The record (message) deadline passed.
    TIMEOUT = "timeout"


S, T = State, Trigger
TRANSITIONS = {
    (S.NEW, T.START): S.OPEN,
    (S.OPEN, T.ECHOED): S.OPEN,
    (S.OPEN, T.PARTIAL): S.IN_RECORD,
    (S.IN_RECORD, T.PARTIAL): S.IN_RECORD,
    (S.IN_RECORD, T.ECHOED): S.OPEN,
    (S.OPEN, T.EOF): S.CLOSED,
    (S.IN_RECORD, T.EOF): S.CLOSED,
    (S.OPEN, T.TIMEOUT): S.CLOSED,
    (S.IN_RECORD, T.TIMEOUT): S.CLOSED,
}

# The members used per chunk, as globals: on Python 3.11 ``S.OPEN`` goes
# through the enum metaclass's ``__getattr__`` hook and costs ten times a
# global lookup (benchmarks/instructions.py).
_OPEN, _IN_RECORD, _ECHOED, _PARTIAL = S.OPEN, S.IN_RECORD, T.ECHOED, T.PARTIAL


class EchoMachine(Machine):
    """Sends back what it receives, whole records at a time if
    ``record_size`` is set."""

    # Slots, and a buffer only while part of a record is held: a server keeps
    # one of these per connection.
    TRANSITIONS, INITIAL, CLOSED, TIMEOUT = TRANSITIONS, S.NEW, S.CLOSED, T.TIMEOUT

    __slots__ = ("record_size", "report_echoes", "_records")

    def __init__(self, *, message_timeout: Optional[float] = None,
                 record_size: Optional[int] = None, report_echoes: bool = True) -> None:
        if record_size is not None and record_size < 1:
            raise ValueError(f"record_size must be at least 1, not {record_size!r}")
        super().__init__(message_timeout)
        self.record_size = record_size
        #: Whether to report an ``Echoed`` event per chunk (for logging);
        #: a server that does not log them is spared one object per chunk.
        self.report_echoes = report_echoes
        #: Cuts the stream into records (only with a record size).
        self._records = RecordFramer(record_size) if record_size is not None else None

    # -- inputs (outputs, the transition check and handle_timer: base.Machine)

    def start(self, now: float) -> List[Event]:
        self._to(T.START)
        return []

    def receive_data(self, data: bytes, now: float) -> List[Event]:
        state = self.state
        if state is not _OPEN and state is not _IN_RECORD:
            self._to(_ECHOED)  # raises MachineError naming the state
        records = self._records
        if records is None:  # no records, no messages: no deadline to keep
            self._outgoing = self._outgoing + data if self._outgoing else data
            if state is not _OPEN:
                self._to(_ECHOED)  # the common case, OPEN -> OPEN, needs no lookup
            return [Echoed(data)] if self.report_echoes else []
        whole = records.feed(data)
        events: List[Event] = []
        if whole:
            out = b"".join(whole)
            self._outgoing = self._outgoing + out if self._outgoing else out
            if self.report_echoes:
                events.append(Echoed(out))
        if records.pending:
            if state is _OPEN or whole:  # a new record began in this chunk
                self.message_started = now
            self._to(_PARTIAL)
        else:
            self.message_started = None
            self._to(_ECHOED)
        self._refresh_deadline()
        return events

    def receive_eof(self, now: float) -> List[Event]:
        self._to(T.EOF)
        events: List[Event] = []
        if self._records is not None and self._records.pending:
            events.append(IncompleteRecord(len(self._records.take_pending())))
        events.append(EndOfStream())
        return events

    def _drop_held(self) -> None:
        if self._records is not None:
            self._records.take_pending()
