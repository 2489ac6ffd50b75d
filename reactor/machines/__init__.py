"""Sans-IO state machines for the seed conversations: bytes and the time in,
events and bytes out.  See ``base`` for the common contract."""

from .ack import ACK, AckMachine
from .base import (
                   Echoed,
                   EndOfStream,
                   Event,
                   IncompleteRecord,
                   MachineError,
                   MessageReceived,
                   Rejected,
                   TimedOut,
                   readable,
)
from .echo import EchoMachine
from .framing import MessageMachine
from .read import ReadMachine

__all__ = [
    "ACK", "AckMachine", "EchoMachine", "Echoed", "EndOfStream", "Event", "IncompleteRecord",
    "MachineError", "MessageMachine", "MessageReceived", "ReadMachine", "Rejected", "TimedOut",
    "readable",
]
