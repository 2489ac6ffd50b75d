"""Seed 4, client side (``streamwrite HOST PORT``).

Writes ``Half a league, half a league ... `` *with* its terminating NUL byte,
as the C original does (it writes ``sizeof DATA``), then closes.

Run:  python examples/streamwrite.py HOST PORT
"""

import sys

from reactor import Protocol, Reactor

DATA = b"Half a league, half a league ... \0"


class StreamWrite(Protocol):
    def connection_made(self, transport):
        transport.write(DATA)
        transport.close()

    def connection_lost(self, exc):
        reactor.stop()


reactor = Reactor()


def connected(connector):
    if connector.error:
        print(connector.error, file=sys.stderr)
        reactor.stop()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: streamwrite.py HOST PORT")
    connector = reactor.connect_tcp(StreamWrite, sys.argv[1], int(sys.argv[2]), timeout=10)
    connector.add_done_callback(connected)
    reactor.run()
    reactor.close()
    sys.exit(1 if connector.error else 0)
