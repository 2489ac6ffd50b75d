"""The ``ack`` conversation (seed 3, the C++ cookbook's acknowledgement).

On connect the server sends the 18 bytes ``You are connected!`` (no newline,
no NUL); then every message the peer sends is reported, until the peer
closes.  (The original read one message and exited; this one keeps going.)
Framing, deadlines and limits are those of ``framing.MessageMachine``.
"""

from __future__ import annotations

from .framing import MessageMachine

__all__ = ["AckMachine", "ACK"]

#: The acknowledgement, byte for byte as the original server sends it.
ACK = b"You are connected!"


class AckMachine(MessageMachine):
    greeting = ACK
