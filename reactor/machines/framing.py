"""The message-framing machine behind the ``ack`` and ``read`` conversations.

Everything that affects this machine lives in this file.

A TCP stream has no message boundaries, so the machine makes its own: a
message ends at a NUL byte (C-string text: the original ``streamwrite``
client sends its trailing NUL), at a newline (``\\r\\n`` counts as one), or
at the end of the stream.  Empty messages are not reported.  Because a
message is only ever reported once its end is seen, the events are the same
whether the peer's bytes arrive in one piece or one byte at a time.

A message longer than ``max_message`` bytes finishes the machine with
``Rejected``; the buffer never grows past ``max_message`` plus one received chunk.
"""

from __future__ import annotations

import enum
import re
from typing import List, Optional

from .base import EndOfStream, Event, Machine, MessageReceived, Rejected

__all__ = ["State", "Trigger", "TRANSITIONS", "MessageMachine"]


class State(enum.Enum):
    # Identity hashing in C: Enum's own __hash__ is Python code, and every
    # input looks a (state, trigger) pair up in the table
    # (benchmarks/instructions.py).
    __hash__ = object.__hash__

    #: Created; ``start()`` has not been called.
    NEW = "new"
    #: Between messages: nothing is buffered.
    IDLE = "idle"
    #: Part of a message has arrived and is buffered.
    IN_MESSAGE = "in message"
    #: Finished: the peer closed, a deadline passed or a limit was broken.
    CLOSED = "closed"


class Trigger(enum.Enum):
    __hash__ = object.__hash__

    #: The connection was made.
    START = "start"
    #: Bytes arrived and every message in the buffer ended.
    COMPLETE = "complete"
    #: Bytes arrived and a message is still unfinished.
    PARTIAL = "partial"
    #: The peer closed its side.
    EOF = "eof"
    #: The message deadline passed.
    TIMEOUT = "timeout"
    #: A message is longer than ``max_message``.
    TOO_LONG = "too long"


S, T = State, Trigger
TRANSITIONS = {
    (S.NEW, T.START): S.IDLE,
    (S.IDLE, T.COMPLETE): S.IDLE,
    (S.IDLE, T.PARTIAL): S.IN_MESSAGE,
    (S.IN_MESSAGE, T.PARTIAL): S.IN_MESSAGE,
    (S.IN_MESSAGE, T.COMPLETE): S.IDLE,
    (S.IDLE, T.EOF): S.CLOSED,
    (S.IN_MESSAGE, T.EOF): S.CLOSED,
    (S.IDLE, T.TIMEOUT): S.CLOSED,
    (S.IN_MESSAGE, T.TIMEOUT): S.CLOSED,
    (S.IDLE, T.TOO_LONG): S.CLOSED,
    (S.IN_MESSAGE, T.TOO_LONG): S.CLOSED,
}

# The members used per chunk, as globals: on Python 3.11 ``S.IDLE`` goes
# through the enum metaclass's ``__getattr__`` hook and costs ten times a
# global lookup (benchmarks/instructions.py).
_IDLE, _IN_MESSAGE, _PARTIAL, _COMPLETE = S.IDLE, S.IN_MESSAGE, T.PARTIAL, T.COMPLETE

_DELIMITER = re.compile(b"[\n\0]")
_EMPTY = bytearray()  # shared and never mutated: "nothing buffered"


class MessageMachine(Machine):
    """Splits a byte stream into messages.  Subclasses set ``greeting``
    (bytes sent on start)."""

    #: Bytes to send as soon as the connection starts.
    greeting = b""

    # Slots, and buffers only while something is held: a server keeps one of
    # these per connection, most of them idle.
    TRANSITIONS, INITIAL, CLOSED, TIMEOUT = TRANSITIONS, S.NEW, S.CLOSED, T.TIMEOUT

    __slots__ = ("max_message", "_buffer", "_scanned")

    def __init__(self, *, message_timeout: Optional[float] = None,
                 max_message: int = 65536) -> None:
        if max_message < 1:
            raise ValueError(f"max_message must be at least 1, not {max_message!r}")
        super().__init__(message_timeout)
        self.max_message = max_message
        self._buffer = _EMPTY  # bytes of an unfinished message (a bytearray then)
        self._scanned = 0  # bytes of _buffer already known to hold no delimiter

    # -- inputs (outputs, the transition check and handle_timer: base.Machine)

    def start(self, now: float) -> List[Event]:
        self._to(T.START)
        self._outgoing += self.greeting
        return []

    def receive_data(self, data: bytes, now: float) -> List[Event]:
        state = self.state
        if state is not _IDLE and state is not _IN_MESSAGE:
            self._to(_PARTIAL)  # raises MachineError naming the state
        if self._buffer:
            self._buffer += data  # our own bytearray: append in place
        else:
            self._buffer = bytearray(data)  # never mutate the shared _EMPTY
        buffer = self._buffer
        events: List[Event] = []
        start = 0
        while True:
            found = _DELIMITER.search(buffer, max(start, self._scanned))
            if found is None:
                break
            end = found.start()
            message = buffer[start:end]
            if buffer[end] == 0x0A and message.endswith(b"\r"):
                message = message[:-1]
            if len(message) > self.max_message:
                return events + self._reject()
            if message:
                events.append(MessageReceived(bytes(message)))
            start = end + 1
            self._scanned = start
        del buffer[:start]
        self._scanned = len(buffer)
        if not buffer:
            self._buffer = _EMPTY
        # One byte of slack: a trailing "\r" may yet turn out to be part of
        # "\r\n" and not count.  The same limit then holds for every split.
        if len(buffer) > self.max_message + 1:
            return events + self._reject()
        if buffer:
            if state is _IDLE or start:  # a new message began in this chunk
                self.message_started = now
            self._to(_PARTIAL)
        else:
            self.message_started = None
            self._to(_COMPLETE)
        self._refresh_deadline()
        return events

    def receive_eof(self, now: float) -> List[Event]:
        if len(self._buffer) > self.max_message:
            return self._reject()
        self._to(T.EOF)
        events: List[Event] = []
        if self._buffer:
            events.append(MessageReceived(bytes(self._buffer)))
            self._buffer = _EMPTY
        events.append(EndOfStream())
        return events

    def _drop_held(self) -> None:
        self._buffer = _EMPTY

    def _reject(self) -> List[Event]:
        self._to(T.TOO_LONG)
        self._buffer = _EMPTY
        return [Rejected(f"message longer than {self.max_message} bytes")]
