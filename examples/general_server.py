"""Seed 5: the general pattern of a TCP server, without one thread per client.

The course page's server is socket, bind, listen (backlog 20), then a loop on
accept, where each accept returns a new socket for that client while the
listening socket keeps listening; it reads in modest pieces and handles each
piece as it arrives.  ``listen_tcp`` is socket+bind+listen, the reactor's
loop is the accept loop, and each client's socket becomes a transport with
its own protocol object.  This one answers every piece it reads with
``got <n> bytes``.  The default port is in the ephemeral range (49152-65535),
as the page advises.

Run:  python examples/general_server.py [--port 49200]
Try:  nc localhost 49200
"""

import argparse

from reactor import Protocol, Reactor


class PieceCounter(Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.peer = transport.get_extra_info("peername")[:2]
        print(f"accepted {self.peer[0]} port {self.peer[1]}", flush=True)

    def data_received(self, data):
        # Pieces arrive as TCP delivers them (at most 64 KiB each here).
        self.transport.write(f"got {len(data)} bytes\n".encode())

    def connection_lost(self, exc):
        print(f"closed {self.peer[0]} port {self.peer[1]}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=49200)
    args = parser.parse_args()
    reactor = Reactor()
    listener = reactor.listen_tcp(PieceCounter, args.host, args.port, backlog=20)
    print(f"Socket port {listener.port}", flush=True)
    try:
        reactor.run()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        reactor.close()


if __name__ == "__main__":
    main()
