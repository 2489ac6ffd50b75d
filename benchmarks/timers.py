"""Timer benchmark: schedule and cancel N timers, in-process.

    python benchmarks/timers.py {reactor,asyncio} N

Prints one JSON object: the implementation, N, the seconds taken and the
microseconds per ``call_later`` + ``cancel`` pair.

Both loops do the same thing: in batches of 1,000, schedule 1,000 timers
with ``call_later`` (deadlines 10-11 s away, all different), cancel all of
them with ``.cancel()``, then run one loop step so that each loop drops its
cancelled entries the way it normally would.  benchmarks/run.py runs this in
a fresh process pinned to the server's core; the garbage collector is on.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any, Callable, Dict, List

BATCH = 1000


def noop() -> None:
    pass


def bench_reactor(n: int) -> float:
    from reactor import Reactor

    reactor = Reactor()
    try:
        call_later = reactor.call_later
        handles: List[Any] = [None] * BATCH
        gc.collect()
        start = time.perf_counter()
        done = 0
        while done < n:
            count = min(BATCH, n - done)
            for i in range(count):
                handles[i] = call_later(10.0 + i * 0.001, noop)
            for i in range(count):
                handles[i].cancel()
            reactor.run_once(0)
            done += count
        elapsed = time.perf_counter() - start
        assert reactor.next_deadline() is None, "a cancelled timer is still pending"
        return elapsed
    finally:
        reactor.close()


def bench_asyncio(n: int) -> float:
    loop = asyncio.new_event_loop()
    try:
        call_later = loop.call_later
        handles: List[Any] = [None] * BATCH
        gc.collect()
        start = time.perf_counter()
        done = 0
        while done < n:
            count = min(BATCH, n - done)
            for i in range(count):
                handles[i] = call_later(10.0 + i * 0.001, noop)
            for i in range(count):
                handles[i].cancel()
            loop.call_soon(loop.stop)  # one step of the loop
            loop.run_forever()
            done += count
        return time.perf_counter() - start
    finally:
        loop.close()


BENCHES: Dict[str, Callable[[int], float]] = {
    "reactor": bench_reactor,
    "asyncio": bench_asyncio,
}


def main(argv: Any = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in BENCHES or not args[1].isdigit() or int(args[1]) < 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    impl, n = args[0], int(args[1])
    seconds = BENCHES[impl](n)
    print(json.dumps({"impl": impl, "count": n, "seconds": seconds,
                      "us_per_pair": seconds / n * 1e6}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
