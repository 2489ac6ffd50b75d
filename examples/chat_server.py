"""A custom protocol written by subclassing ``LineProtocol``: a chat room.

Every line a client sends is relayed to every other client as
``<name>: <line>``.  It shows what the seed programs cannot: state shared
between connections (the room), framing lines out of a byte stream, a limit
on line length, flow control (a client that stops reading is dropped rather
than allowed to pin memory), and per-connection cleanup in
``connection_lost``.  The lines come from ``LineProtocol``.

Run:  python examples/chat_server.py [--port 0]
Try:  nc localhost <port>   (in two terminals)
"""

import argparse

from reactor import LineProtocol, Reactor


class ChatRoom:
    def __init__(self):
        self.members = set()
        self.joined = 0

    def broadcast(self, sender, line):
        for member in self.members:
            if member is not sender:
                member.send(line)


class Chatter(LineProtocol):
    # LineProtocol cuts the byte stream into lines at the delimiter and
    # never buffers more than max_line_length bytes of one.
    delimiter = b"\n"
    max_line_length = 1024
    # The slowloris defence: a line, once begun, must be finished in 60 s.
    message_timeout = 60

    def __init__(self, room):
        self.room = room

    def connection_made(self, transport):
        super().connection_made(transport)  # keeps self.transport
        self.room.joined += 1
        self.name = f"guest{self.room.joined}"
        self.room.members.add(self)
        self.send(f"* you are {self.name}; {len(self.room.members)} here")
        self.room.broadcast(self, f"* {self.name} joined")

    def line_received(self, line):
        text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
        if text:
            self.room.broadcast(self, f"{self.name}: {text}")

    def frame_too_long(self, exc):
        self.send("* line too long, goodbye")
        self.transport.close(exc)

    def send(self, text):
        self.send_line(text.encode())

    def pause_writing(self):
        # This client is not reading what the room says: drop it.
        self.transport.abort()

    def connection_lost(self, exc):
        super().connection_lost(exc)
        self.room.members.discard(self)
        self.room.broadcast(self, f"* {self.name} left")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    reactor = Reactor()
    room = ChatRoom()
    listener = reactor.listen_tcp(lambda: Chatter(room), args.host, args.port)
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
