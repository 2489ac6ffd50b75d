"""Seed 2, server side: fixed-size echo over IPv6 with a 30-second wait.

The original is one AF_INET6 socket with IPV6_V6ONLY off (IPv4 clients show
up as ::ffff:a.b.c.d), SO_REUSEADDR, port 3005, backlog 10; it waits at most
30 s for data, receives exactly 250 bytes (SO_RCVLOWAT), echoes them and
closes.  Here ``--host ::`` is the same dual-stack socket, the echo machine
holds bytes until a whole 250-byte record is in, and the 30-second select()
timeout is each connection's idle deadline: many clients, one thread.

Run:  python examples/echo6_server.py [--port 3005] [--timeout 30]
Then: python examples/echo6_client.py ::1 3005
"""

import argparse

from reactor import Reactor
from reactor.conversations import Settings, serve


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="::")
    parser.add_argument("--port", type=int, default=3005)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    reactor = Reactor()
    settings = Settings(idle_timeout=args.timeout, record_size=250)
    listener = serve(reactor, "echo", args.host, args.port, settings=settings,
                     log=lambda line: print(line, flush=True), backlog=10)
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
