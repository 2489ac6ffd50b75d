"""Seed 3, server side: acknowledge every connection, print every message.

The original (port 50544, SO_REUSEADDR, backlog 5) logs
``server: got connection from = <ip> and port = <port>``, writes the 18 bytes
``You are connected!``, reads one message and prints
``Got the message:<message>``.  Its text ends by asking for a server that
accepts forever and serves concurrent clients: this is that server.

Run:  python examples/ack_server.py [--port 50544]
Then: python examples/ack_client.py localhost 50544
"""

import argparse

from reactor import Reactor
from reactor.conversations import serve


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=50544)
    args = parser.parse_args()
    reactor = Reactor()
    listener = serve(reactor, "ack", args.host, args.port, backlog=5,
                     log=lambda line: print(line, flush=True))
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
