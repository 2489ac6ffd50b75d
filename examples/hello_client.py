"""Seed 1, client side: connect, say "hello there" (11 bytes), exit.

Run:  python examples/hello_client.py [HOST] [PORT]     (default localhost 3000)
"""

import sys

from reactor import Protocol, Reactor


class SayHello(Protocol):
    def connection_made(self, transport):
        host, port = transport.get_extra_info("peername")[:2]
        print(f"Client connected to: {host} {port}", flush=True)
        print("Client sends: hello there", flush=True)
        transport.write(b"hello there")
        transport.close()  # flushes first

    def connection_lost(self, exc):
        reactor.stop()


def connected(connector):
    if connector.error:
        print(connector.error, file=sys.stderr)
        reactor.stop()


reactor = Reactor()

if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    connector = reactor.connect_tcp(SayHello, host, port, timeout=10)
    connector.add_done_callback(connected)
    reactor.run()
    reactor.close()
    sys.exit(1 if connector.error else 0)
