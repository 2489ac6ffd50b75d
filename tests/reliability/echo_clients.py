"""A client process for the reliability tests: many idle connections and a
few active ones against one echo server, driven by commands on stdin.

    python echo_clients.py PORT

Commands, one per line; each answer is one line of JSON on stdout:

    active N          open N connections that will echo      {"active": N}
    idle N            open N connections that stay silent    {"idle": N}
    measure SECONDS   round trips of 64 bytes on every active connection,
                      one in flight each, for SECONDS        {"p50": .., "p99": .., "max": ..,
                                                              "count": .., "errors": ..}
    closed [N]        how many idle connections the server has closed
                      (waiting up to 5 s for N of them)
                                                             {"closed": N}
    quit

Latencies are in milliseconds, measured with the monotonic clock.
Connections are opened in batches that wait to be connected, so the
server's listen backlog never overflows.  Loopback only; every wait bounded.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
from typing import Any, Dict, List

BATCH = 500
MESSAGE = bytes(range(64))


def connect_many(port: int, count: int) -> List[socket.socket]:
    socks: List[socket.socket] = []
    while len(socks) < count:
        batch = []
        for _ in range(min(BATCH, count - len(socks))):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            batch.append(sock)
        with selectors.DefaultSelector() as selector:
            for sock in batch:
                selector.register(sock, selectors.EVENT_WRITE)
            pending = set(batch)
            deadline = time.monotonic() + 30
            while pending and time.monotonic() < deadline:
                for key, _ in selector.select(1):
                    pending.discard(key.fileobj)  # type: ignore[arg-type]
                    selector.unregister(key.fileobj)
            if pending:
                raise SystemExit(f"{len(pending)} connections did not complete")
        socks += batch
    return socks


def measure(active: List[socket.socket], seconds: float) -> Dict[str, Any]:
    latencies: List[float] = []
    errors = 0
    sent_at: Dict[socket.socket, float] = {}  # the sockets with a message in flight
    got: Dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in active:
            selector.register(sock, selectors.EVENT_READ)
            sock.send(MESSAGE)
            sent_at[sock], got[sock] = time.monotonic(), b""
        end = time.monotonic() + seconds
        # Send again after each reply until the end; then wait (bounded) for
        # the replies still in flight, so the next phase starts clean.
        while sent_at and time.monotonic() < end + 5:
            for key, _ in selector.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    errors += 1
                    selector.unregister(sock)
                    sent_at.pop(sock, None)
                    continue
                got[sock] += chunk
                if len(got[sock]) < len(MESSAGE):
                    continue
                latencies.append((time.monotonic() - sent_at.pop(sock)) * 1000)
                errors += got[sock] != MESSAGE
                got[sock] = b""
                if time.monotonic() < end:
                    sock.send(MESSAGE)
                    sent_at[sock] = time.monotonic()
    latencies.sort()

    def pick(q: float) -> Any:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) \
            if latencies else None

    return {"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0), "count": len(latencies),
            "errors": errors + len(sent_at)}


def closed_by_server(idle: List[socket.socket]) -> int:
    closed = 0
    for sock in idle:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def main() -> None:
    port = int(sys.argv[1])
    active: List[socket.socket] = []
    idle: List[socket.socket] = []
    for line in sys.stdin:
        command, *args = line.split()
        if command == "active":
            active += connect_many(port, int(args[0]))
            answer: Dict[str, Any] = {"active": len(active)}
        elif command == "idle":
            idle += connect_many(port, int(args[0]))
            answer = {"idle": len(idle)}
        elif command == "measure":
            answer = measure(active, float(args[0]))
        elif command == "closed":
            # "closed N": the server's FINs may still be on their way through
            # the kernel; wait (at most 5 s) until N are in.
            want = int(args[0]) if args else 0
            deadline = time.monotonic() + 5
            count = closed_by_server(idle)
            while count < want and time.monotonic() < deadline:
                time.sleep(0.01)
                count = closed_by_server(idle)
            answer = {"closed": count}
        else:
            break
        print(json.dumps(answer), flush=True)
    for sock in active + idle:
        sock.close()


if __name__ == "__main__":
    main()
