"""Seed 3, client side: read the acknowledgement, send one line.

Prints the server's ``You are connected!``, prompts
``What message for the server? : ``, reads one line from standard input (in
a worker thread, so the loop keeps running) and sends it without its newline.

Run:  python examples/ack_client.py HOST [PORT]     (default port 50544)
"""

import sys
import threading

from reactor import Reactor
from reactor.clients import AckClient


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 50544
    reactor = Reactor()

    def ask(answer):
        print("What message for the server? : ", end="", flush=True)
        # Reading stdin blocks, so it happens in a thread; the answer comes
        # back on the reactor thread.  A daemon thread: if the server goes
        # away first, a read still waiting must not keep us from exiting.
        def read():
            reactor.call_soon_threadsafe(answer, sys.stdin.readline() or None)

        threading.Thread(target=read, daemon=True).start()

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
