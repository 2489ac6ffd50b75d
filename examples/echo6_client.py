"""Seed 2, client side: send 250 bytes, read until all 250 are back.

Takes a server name: an IPv6 or IPv4 literal, ``localhost`` or a host name
(resolved in a worker thread so the loop never blocks).  Exits 0 only if
every byte came back.

Run:  python examples/echo6_client.py [SERVER] [PORT]     (default ::1 3005)
"""

import sys

from reactor import Reactor
from reactor.clients import EchoClient


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else "::1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 3005
    reactor = Reactor()
    client = EchoClient(size=250, count=1, log=print, on_done=lambda _: reactor.stop())

    def connected(connector):
        if connector.error:
            client.fail(str(connector.error))

    reactor.connect_tcp(lambda: client, server, port, timeout=30).add_done_callback(connected)
    reactor.call_later(30, client.fail, "no echo within 30 s")
    reactor.run()
    reactor.close()
    if not client.ok:
        print(f"echo failed: {client.problem}", file=sys.stderr)
        return 1
    print("all 250 bytes came back", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
