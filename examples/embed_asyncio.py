"""Host the reactor inside an asyncio program, on the same thread.

asyncio watches the reactor's own descriptor (``reactor.fileno()``, the
epoll fd on Linux) with ``add_reader`` and calls ``run_once(0)`` when it is
readable; a ``call_later`` honours the reactor's timers
(``next_timeout()``).  To show both loops really share the thread, an
asyncio streams client talks to the reactor's echo server.

Run:  python examples/embed_asyncio.py [--messages 5]
"""

import argparse
import asyncio

from reactor import Reactor
from reactor.conversations import serve


class ReactorInAsyncio:
    """Drive ``reactor`` from the running asyncio loop until ``close()``."""

    def __init__(self, reactor, loop):
        self.reactor = reactor
        self.loop = loop
        self.timer = None
        fd = reactor.fileno()
        if fd is None:
            raise RuntimeError("this selector has no descriptor; poll with run_once(0)")
        loop.add_reader(fd, self.step)
        self.fd = fd
        self.reschedule()

    def step(self):
        self.reactor.run_once(0)
        self.reschedule()

    def reschedule(self):
        # Timers and call_soon callbacks do not make the fd readable.
        if self.timer is not None:
            self.timer.cancel()
        delay = self.reactor.next_timeout()
        self.timer = None if delay is None else self.loop.call_later(delay, self.step)

    def close(self):
        self.loop.remove_reader(self.fd)
        if self.timer is not None:
            self.timer.cancel()


async def main(messages):
    reactor = Reactor()
    listener = serve(reactor, "echo", "127.0.0.1", 0, log=lambda line: print("reactor:", line))
    bridge = ReactorInAsyncio(reactor, asyncio.get_running_loop())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        for i in range(messages):
            writer.write(f"message {i}\n".encode())
            line = await reader.readline()
            print("asyncio client got back:", line.decode().rstrip())
        writer.close()
        await writer.wait_closed()
        while listener.connections:  # let the reactor see the close
            await asyncio.sleep(0.01)
    finally:
        bridge.close()
        listener.close()
        reactor.close()
    print("done: both loops ran on one thread")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5)
    asyncio.run(main(parser.parse_args().messages))
