"""Seed 4, server side: print every message until the peer closes.

The original binds port 0, prints ``Socket port <n>``, then accepts one
connection at a time, printing ``--><text>`` for every read() and
``Ending connection`` when read() returns 0.  Here every connection is served
at once, and a message is a C string (a NUL ends it), so the output is the
same however TCP splits the bytes.

Run:  python examples/read_server.py
Then: python examples/streamwrite.py localhost <port it printed>
"""

import argparse

from reactor import Reactor
from reactor.conversations import serve


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    reactor = Reactor()
    listener = serve(reactor, "read", args.host, args.port, backlog=5,
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
