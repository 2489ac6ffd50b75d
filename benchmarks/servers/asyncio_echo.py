"""Echo server on asyncio: the benchmarks' baselines.

    python asyncio_echo.py [--streams] [--uvloop] [--host 127.0.0.1] [--port 0 | --unix PATH]
                           [--tls-cert CERT --tls-key KEY]

Default: an ``asyncio.Protocol`` whose ``data_received`` writes the data
back (the baseline every ratio is taken against).  ``--streams``: the same
with ``asyncio.start_server`` (StreamReader/StreamWriter, one task per
connection).  ``--uvloop``: the same code on uvloop's event loop.
``--tls-cert``/``--tls-key``: serve TLS, a server ``SSLContext`` with
that certificate chain given to the server as ``ssl=``.

Prints ``Socket port N`` first, then one line per accepted and per closed
connection, as ``python -m reactor serve echo`` does.  No idle timeout.
SIGTERM or SIGINT stops it.
"""

import argparse
import asyncio
import signal
import ssl


def log(line: str) -> None:
    print(line, flush=True)


def peer(transport: asyncio.BaseTransport) -> str:
    name = transport.get_extra_info("peername")
    return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else "a Unix client"


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.peer = peer(transport)
        log(f"accepted connection from {self.peer}")

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        log(f"connection from {self.peer} closed")


async def handle_stream(reader, writer):
    name = peer(writer.transport)
    log(f"accepted connection from {name}")
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        log(f"connection from {name} closed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--streams", action="store_true")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--unix", default=None, help="serve this Unix socket instead")
    parser.add_argument("--tls-cert", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this private key (PEM)")
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.uvloop:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if args.unix:
        start = loop.create_unix_server(EchoProtocol, args.unix, ssl=context, backlog=100)
    elif args.streams:
        start = asyncio.start_server(handle_stream, args.host, args.port, ssl=context,
                                     backlog=100)
    else:
        start = loop.create_server(EchoProtocol, args.host, args.port, ssl=context,
                                   backlog=100)
    server = loop.run_until_complete(start)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop.stop)
    if args.unix:
        log(f"Socket path {args.unix}")
    else:
        log(f"Socket port {server.sockets[0].getsockname()[1]}")
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    main()
