"""A custom protocol written by subclassing ``Protocol``: a line-based chat.

Every line a client sends is relayed to every other client as
``<name>: <line>``.  It shows what the seed programs cannot: state shared
between connections (the room), framing lines out of a byte stream, a limit
on line length, flow control (a client that stops reading is dropped rather
than allowed to pin memory), and per-connection cleanup in
``connection_lost``.

Run:  python examples/chat_server.py [--port 0]
Try:  nc localhost <port>   (in two terminals)
"""

import argparse

from reactor import Protocol, Reactor

MAX_LINE = 1024


class ChatRoom:
    def __init__(self):
        self.members = set()
        self.joined = 0

    def broadcast(self, sender, line):
        for member in self.members:
            if member is not sender:
                member.send(line)


class Chatter(Protocol):
    def __init__(self, room):
        self.room = room
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport
        self.room.joined += 1
        self.name = f"guest{self.room.joined}"
        self.room.members.add(self)
        self.send(f"* you are {self.name}; {len(self.room.members)} here")
        self.room.broadcast(self, f"* {self.name} joined")

    def data_received(self, data):
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > MAX_LINE:
            self.send("* line too long, goodbye")
            self.transport.close()
            return
        for line in lines:
            text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
            if text:
                self.room.broadcast(self, f"{self.name}: {text}")

    def send(self, text):
        self.transport.write(text.encode() + b"\n")

    def pause_writing(self):
        # This client is not reading what the room says: drop it.
        self.transport.abort()

    def connection_lost(self, exc):
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
