"""Host the reactor in a game-style ``while True`` loop: one ``run_once(0)``
per frame, never blocking.

Each frame updates the "game" (a frame counter here), then gives the reactor
a non-blocking step to accept connections and move bytes.  Every client that
connects is sent ``frame <n>`` ten times a second of game time.  With
``--frames`` the loop ends after that many frames.

Run:  python examples/embed_game_loop.py [--port 0] [--fps 60] [--frames N]
Try:  nc localhost <port>
"""

import argparse
import time

from reactor import Protocol, Reactor


class Spectator(Protocol):
    def __init__(self, spectators):
        self.spectators = spectators

    def connection_made(self, transport):
        self.transport = transport
        self.spectators.add(self)

    def connection_lost(self, exc):
        self.spectators.discard(self)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    args = parser.parse_args()
    reactor = Reactor()
    spectators = set()
    listener = reactor.listen_tcp(lambda: Spectator(spectators), "localhost", args.port)
    print(f"Socket port {listener.port}", flush=True)
    frame_time = 1.0 / args.fps
    frame = 0
    try:
        while not args.frames or frame < args.frames:
            started = time.monotonic()
            frame += 1                            # update the game
            if frame % max(1, round(args.fps / 10)) == 0:
                for spectator in list(spectators):
                    spectator.transport.write(f"frame {frame}\n".encode())
            reactor.run_once(0)                   # the network, without blocking
            time.sleep(max(0.0, frame_time - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        for spectator in list(spectators):
            spectator.transport.close()
        reactor.run_once(0)
        listener.close()
        reactor.close()
    print(f"stopped after {frame} frames", flush=True)


if __name__ == "__main__":
    main()
