"""Seed 1, server side: the "hello there" socket example, many clients at once.

The original accepts one connection, prints who connected, reads up to 100
bytes and prints them; a typical server hands each client to a thread.  Here
the reactor replaces the thread: every connection gets its own ``Hello``
protocol object, and one thread serves them all.

Run:  python examples/hello_server.py [--port 3000]
Then: python examples/hello_client.py localhost 3000
"""

import argparse

from reactor import Protocol, Reactor


class Hello(Protocol):
    def connection_made(self, transport):
        host, port = transport.get_extra_info("peername")[:2]
        print(f"Server accepts connection from: {host} {port}", flush=True)
        self.received = b""

    def data_received(self, data):
        # A stream has no message boundaries: collect until the client closes.
        self.received += data

    def eof_received(self):
        print(f"Server read: {self.received[:100].decode(errors='backslashreplace')}",
              flush=True)
        return False  # close our side too


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    reactor = Reactor()
    listener = reactor.listen_tcp(Hello, args.host, args.port)
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
