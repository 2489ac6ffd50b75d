"""Echo server on Twisted (its epoll reactor on Linux).

    python twisted_echo.py [--host 127.0.0.1] [--port 0]

A ``Protocol`` whose ``dataReceived`` writes the data back, with TCP_NODELAY
on (as asyncio and reactor set it).  Prints ``Socket port N`` first, then one
line per accepted and per closed connection.  SIGTERM or SIGINT stops it.
"""

import argparse
import sys


def log(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if sys.platform.startswith("linux"):
        from twisted.internet import epollreactor
        epollreactor.install()
    from twisted.internet import protocol, reactor

    class Echo(protocol.Protocol):
        def connectionMade(self):
            self.transport.setTcpNoDelay(True)
            peer = self.transport.getPeer()
            self.peer = f"{peer.host}:{peer.port}"
            log(f"accepted connection from {self.peer}")

        def dataReceived(self, data):
            self.transport.write(data)

        def connectionLost(self, reason):
            log(f"connection from {self.peer} closed")

    port = reactor.listenTCP(args.port, protocol.Factory.forProtocol(Echo),
                             backlog=100, interface=args.host)
    log(f"Socket port {port.getHost().port}")
    reactor.run()


if __name__ == "__main__":
    main()
