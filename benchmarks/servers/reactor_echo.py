"""Echo server on this reactor, written as a user would: a plain
``Protocol`` and the transport's own idle deadline.

    python reactor_echo.py [--host 127.0.0.1] [--port 0 | --unix PATH] [--idle-timeout 30]
                           [--tls-cert CERT --tls-key KEY]

The same program as ``asyncio_echo.py``'s default (its ``data_received``
writes the data back), with ``listen_tcp(..., idle_timeout=30)`` added: the
generic idle deadline every protocol gets, armed for every connection.
Prints ``Socket port N`` first (``Socket path PATH`` with ``--unix``,
which serves a Unix socket through ``listen_unix``), then one line per
accepted and per closed connection, as the asyncio servers do.  SIGTERM or SIGINT stops it.

``--tls-cert``/``--tls-key`` serve TLS: a server ``SSLContext`` with that
certificate chain, given as ``listen_tcp(..., ssl=context)``; the protocol
is the same.
"""

import argparse
import signal
import ssl

from reactor import Protocol, Reactor


def log(line: str) -> None:
    print(line, flush=True)


class EchoProtocol(Protocol):
    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a Unix client"
        log(f"accepted connection from {self.peer}")

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        log(f"connection from {self.peer} closed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--unix", default=None)
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    parser.add_argument("--tls-cert", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this private key (PEM)")
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    with Reactor() as reactor:
        if args.unix:
            listener = reactor.listen_unix(EchoProtocol, args.unix, ssl=context,
                                           idle_timeout=args.idle_timeout)
        else:
            listener = reactor.listen_tcp(EchoProtocol, args.host, args.port, ssl=context,
                                          idle_timeout=args.idle_timeout)
        for sig in (signal.SIGINT, signal.SIGTERM):
            reactor.add_signal_handler(sig, reactor.stop)
        log(f"Socket path {args.unix}" if args.unix else f"Socket port {listener.port}")
        reactor.run()
        listener.close()
        for transport in listener.connections:
            transport.abort()


if __name__ == "__main__":
    main()
