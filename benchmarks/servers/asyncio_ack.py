"""The ``ack`` conversation on asyncio, for the connection-churn benchmark.

    python asyncio_ack.py [--uvloop] [--host 127.0.0.1] [--port 0]

Does what ``python -m reactor serve ack`` does, with an ``asyncio.Protocol``:
sends the 18 bytes ``You are connected!`` on connect, logs
``server: got connection from = HOST and port = PORT``, logs every message
(ended by NUL, newline or the end of the stream) as
``Got the message:<text>``, closes when the peer does and logs
``connection from HOST:PORT closed``.  Every line is flushed as it happens,
like ours.  No idle timeout.  ``--uvloop`` runs it on uvloop.
SIGTERM or SIGINT stops it.
"""

import argparse
import asyncio
import re
import signal

ACK = b"You are connected!"
MAX_MESSAGE = 65536
ENDS = re.compile(rb"[\0\n]")


def log(line: str) -> None:
    print(line, flush=True)


class AckProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"
        transport.write(ACK)
        log(f"server: got connection from = {host} and port = {port}")

    def data_received(self, data):
        buffer = self.buffer + data
        while True:
            end = ENDS.search(buffer)
            if end is None:
                break
            self.message(buffer[:end.start()])
            buffer = buffer[end.end():]
        if len(buffer) > MAX_MESSAGE:
            log(f"connection from {self.peer} closed: message too long")
            self.transport.close()
        self.buffer = buffer

    def eof_received(self):
        if self.buffer:
            self.message(self.buffer)
            self.buffer = b""
        return False  # close

    def message(self, raw):
        log(f"Got the message:{raw.decode('utf-8', 'backslashreplace')}")

    def connection_lost(self, exc):
        log(f"connection from {self.peer} closed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(AckProtocol, args.host, args.port, backlog=100))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop.stop)
    log(f"Socket port {server.sockets[0].getsockname()[1]}")
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    main()
