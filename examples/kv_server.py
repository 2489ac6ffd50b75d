"""A request/response server on ``LengthPrefixedProtocol``: a key-value store.

Each request and each reply is one message: a 4-byte big-endian length,
then that many bytes.  Requests are ``SET key value``, ``GET key``,
``DEL key`` and ``KEYS``; replies are the value, ``OK``, ``(not found)`` or
``error: ...``.  The framing protocol does the cutting and enforces the
limits: a message over 64 KiB closes that connection, a message that takes
longer than 10 s to arrive closes it (the slowloris defence), and a client
silent for 5 minutes is dropped.  Pair it with ``examples/kv_client.py``,
which reconnects whenever this server goes away.

Run:  python examples/kv_server.py [--port 0]
"""

import argparse

from reactor import LengthPrefixedProtocol, Reactor


class KeyValue(LengthPrefixedProtocol):
    prefix_size = 4
    max_message_length = 64 * 1024
    message_timeout = 10

    def __init__(self, store):
        self.store = store

    def connection_made(self, transport):
        super().connection_made(transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host} port {port}"
        print(f"connection from {self.peer}", flush=True)

    def message_received(self, message):
        self.send_message(self.answer(message.decode("utf-8", "replace")).encode())

    def answer(self, request):
        verb, _, rest = request.partition(" ")
        key, _, value = rest.partition(" ")
        if verb == "SET" and key:
            self.store[key] = value
            return "OK"
        if verb == "GET" and key:
            return self.store.get(key, "(not found)")
        if verb == "DEL" and key:
            return "OK" if self.store.pop(key, None) is not None else "(not found)"
        if verb == "KEYS" and not rest:
            return " ".join(sorted(self.store))
        return f"error: cannot {request!r}: try SET key value, GET key, DEL key or KEYS"

    def connection_lost(self, exc):
        super().connection_lost(exc)
        print(f"closed {self.peer}" + (f": {exc}" if exc else ""), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    reactor = Reactor()
    store = {}
    listener = reactor.listen_tcp(lambda: KeyValue(store), args.host, args.port,
                                  idle_timeout=300)
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
