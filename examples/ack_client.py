"""Seed 3, client side: read the acknowledgement, send one line.

Prints the server's ``You are connected!``, prompts
``What message for the server? : ``, reads one line from standard input and
sends it without its newline.  Standard input is watched by the reactor
(``add_reader``), so the loop keeps running while you type; only a regular
file, which cannot be watched, is read in a thread.

Run:  python examples/ack_client.py HOST [PORT]     (default port 50544)
"""

import os
import sys
import threading

from reactor import Reactor
from reactor.clients import AckClient


def read_line(reactor, answer):
    """Call ``answer(line)`` (``None`` at end of input) once a line of
    standard input has arrived."""
    fd = sys.stdin.fileno()
    line = bytearray()

    def readable():
        chunk = os.read(fd, 4096)  # ready: this read does not block
        line.extend(chunk)
        if chunk and b"\n" not in chunk:
            return  # a pipe may deliver a line in pieces
        reactor.remove_reader(fd)
        answer(line.split(b"\n")[0].decode(errors="replace") if line else None)

    try:
        reactor.add_reader(fd, readable)
    except PermissionError:
        # A regular file (or /dev/null): epoll refuses it, since reading a
        # file never waits for input.  A daemon thread reads it instead.
        threading.Thread(target=lambda: reactor.call_soon_threadsafe(
            answer, sys.stdin.readline() or None), daemon=True).start()


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 50544
    reactor = Reactor()

    def ask(answer):
        print("What message for the server? : ", end="", flush=True)
        read_line(reactor, answer)

    client = AckClient(ask, log=lambda line: print(line, flush=True),
                       on_done=lambda _: reactor.stop())

    def connected(connector):
        if connector.error:
            client.fail(str(connector.error))

    reactor.connect_tcp(lambda: client, host, port, timeout=30).add_done_callback(connected)
    reactor.run()
    reactor.close()
    if not client.ok:
        print(f"\nack client failed: {client.problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
