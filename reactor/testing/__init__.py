"""Test doubles for your own tests: a clock you move by hand and a transport
that keeps what a protocol wrote in memory.

Unit-test a protocol with no sockets and no sleeping::

    from reactor.testing import MemoryTransport

    transport = MemoryTransport()
    protocol = MyProtocol()
    transport.connect(protocol)         # calls connection_made
    transport.feed(b"hello")            # calls data_received
    assert transport.value() == b"..."  # what the protocol wrote
    transport.feed_eof()                # calls eof_received
    assert transport.closed

Drive timers on a reactor with a fake clock::

    clock = FakeClock()
    reactor = Reactor(clock=clock)
    reactor.call_later(30, fired)
    advance(reactor, 30)                # fires it at exactly t=30

Run two protocols against each other through the real transport code::

    pair = ConnectedPair(Reactor(), MyServer(), MyClient())
    pair.run_until(lambda: client.done)
    pair.reset(pair.client)             # fault injection: a peer reset
    pair.close()

Split data the way TCP might: ``chunks(data, 1)`` (one byte at a time),
``chunks(data, [3, 1, 7])``, or ``random_chunks(data, seed=4)``.

Test the loop's dispatch, or your own ``IOHandler``, with no real I/O:
``Reactor(selector=ScriptedSelector())``, then queue what ``select()`` should
return in ``selector.script``.
"""

from __future__ import annotations

from .chunks import chunks, random_chunks
from .clock import FakeClock, advance
from .leaks import LeakError, leak_check, open_descriptors
from .memory_pair import Link, MemoryPair
from .pairs import ConnectedPair
from .selector import ScriptedSelector
from .transport import MemoryTransport

__all__ = ["FakeClock", "advance", "MemoryTransport", "MemoryPair", "Link", "ConnectedPair",
           "ScriptedSelector", "chunks", "random_chunks", "leak_check", "LeakError",
           "open_descriptors"]
