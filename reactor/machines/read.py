"""The ``read`` conversation (seed 4, "print every message until the peer
closes", and the server side of seed 1, "hello there").

The server sends nothing; every message is reported (the adapter prints
``--><text>``) and the end of the stream is reported as ``EndOfStream``
(``Ending connection``).  Text is C-string text: a NUL ends a message, so the
original client's trailing NUL never shows.  Framing, deadlines and limits
are those of ``framing.MessageMachine``.
"""

from __future__ import annotations

from .framing import MessageMachine

__all__ = ["ReadMachine"]


class ReadMachine(MessageMachine):
    greeting = b""
