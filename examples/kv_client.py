"""A client for ``examples/kv_server.py`` that survives the server going away.

It sends each request given on the command line, one at a time, waiting
``--interval`` seconds between them (a ``call_every`` timer), and prints
each reply.  A ``ReconnectingClient`` keeps the connection up: when the
server goes away, it retries with exponential backoff and jitter, printing
each failed attempt, and once connected again it resends the request that
had no answer yet.  It exits when every request has its reply.

Run:  python examples/kv_client.py HOST PORT "SET greeting hello" "GET greeting"
"""

import argparse
import logging
import sys

from reactor import LengthPrefixedProtocol, Reactor, ReconnectingClient


class Requests:
    """What to send, and what has been answered: it outlives connections."""

    def __init__(self, requests):
        self.waiting = list(requests)
        self.in_flight = None
        self.connection = None

    def tick(self):
        if self.connection is not None and self.in_flight is None and self.waiting:
            self.in_flight = self.waiting.pop(0)
            print(f"> {self.in_flight}", flush=True)
            self.connection.send_message(self.in_flight.encode())

    def answered(self, reply):
        print(f"< {reply}", flush=True)
        self.in_flight = None

    def lost(self):
        self.connection = None
        if self.in_flight is not None:  # send it again on the next connection
            self.waiting.insert(0, self.in_flight)
            self.in_flight = None

    def done(self):
        return not self.waiting and self.in_flight is None


class KeyValueClient(LengthPrefixedProtocol):
    def __init__(self, requests):
        self.requests = requests

    def connection_made(self, transport):
        super().connection_made(transport)
        host, port = transport.get_extra_info("peername")[:2]
        print(f"connected to {host} port {port}", flush=True)
        self.requests.connection = self

    def message_received(self, message):
        self.requests.answered(message.decode("utf-8", "replace"))

    def connection_lost(self, exc):
        super().connection_lost(exc)
        if self.requests.done():
            print("connection closed", flush=True)
        else:
            print(f"connection lost: {exc or 'the server closed it'}", flush=True)
        self.requests.lost()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("requests", nargs="+")
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds between requests (default 0.5)")
    parser.add_argument("--max-delay", type=float, default=5.0,
                        help="longest wait between reconnection attempts (default 5)")
    args = parser.parse_args()

    # on_attempt below prints each failed attempt; the library's own log
    # line (a WARNING on the "reactor.reconnect" logger) would repeat it.
    logging.getLogger("reactor.reconnect").setLevel(logging.ERROR)
    reactor = Reactor()
    requests = Requests(args.requests)

    def on_attempt(attempt):
        if attempt.error is not None:
            print(f"attempt {attempt.number} failed: {attempt.error}; "
                  f"next in {attempt.delay:.2f}s", flush=True)

    client = ReconnectingClient(reactor, lambda: KeyValueClient(requests), args.host,
                                args.port, initial_delay=0.1, max_delay=args.max_delay,
                                on_attempt=on_attempt)
    print(f"connecting to {args.host} port {args.port}", flush=True)

    def tick():
        requests.tick()
        if requests.done():
            print(f"done: {len(args.requests)} replies", flush=True)
            client.stop()
            reactor.stop()

    client.start()
    timer = reactor.call_every(args.interval, tick)
    try:
        reactor.run()
    except KeyboardInterrupt:
        return 1
    finally:
        timer.cancel()
        client.stop()
        reactor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
