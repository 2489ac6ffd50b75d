"""A UDP flood cannot starve TCP on the same reactor: 100,000 datagrams at
a UDP echo endpoint while 50 TCP clients echo through the same loop.  The
UDP endpoint reads a bounded batch per step, so the TCP clients keep being
served; nothing crashes, and nothing is reported."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, List

import pytest

from reactor import DatagramProtocol, Protocol, Reactor

pytestmark = pytest.mark.timeout(120)

FLOOD = """
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"f" * 512
for i in range(100_000):
    try:
        s.sendto(payload, ("127.0.0.1", port))
    except OSError:
        pass
print("sent", flush=True)
"""


class TCPEcho(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class UDPEcho(DatagramProtocol):
    received = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        UDPEcho.received += 1
        self.transport.sendto(data, addr)


def tcp_clients(port: int, stop: threading.Event, latencies: List[float],
                failures: List[str]) -> None:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    try:
        while not stop.is_set():
            for i, sock in enumerate(socks):
                message = b"%05d" % i
                started = time.monotonic()
                sock.sendall(message)
                got = b""
                while len(got) < len(message):
                    chunk = sock.recv(100)
                    if not chunk:
                        failures.append("a TCP connection closed")
                        return
                    got += chunk
                latencies.append(time.monotonic() - started)
                if got != message:
                    failures.append(f"wrong echo {got!r}")
                    return
    except OSError as exc:
        failures.append(repr(exc))
    finally:
        for sock in socks:
            sock.close()


def test_a_udp_flood_beside_50_tcp_echo_clients(reactor: Reactor, errors: List[Any]) -> None:
    listener = reactor.listen_tcp(TCPEcho, "127.0.0.1", 0)
    endpoint = reactor.listen_udp(UDPEcho, "127.0.0.1", 0)
    udp_port = endpoint.get_extra_info("sockname")[1]
    stop = threading.Event()
    before: List[float] = []
    during: List[float] = []
    failures: List[str] = []

    def step_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            reactor.run_once(0.01)

    # Quiet first, for a reference latency; then the flood.
    thread = threading.Thread(target=tcp_clients, args=(listener.port, stop, before, failures))
    thread.start()
    step_for(1.0)
    stop.set()
    while thread.is_alive():
        reactor.run_once(0.01)
    stop.clear()
    thread = threading.Thread(target=tcp_clients, args=(listener.port, stop, during, failures))
    thread.start()
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(udp_port)],
                             stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while flood.poll() is None and time.monotonic() < deadline:
        reactor.run_once(0.01)
    step_for(0.2)
    stop.set()
    while thread.is_alive():
        reactor.run_once(0.01)
    assert flood.wait(5) == 0 and flood.stdout is not None and flood.stdout.read() == "sent\n"
    flood.stdout.close()

    assert failures == [] and errors == []
    assert UDPEcho.received > 1000  # the flood did reach the endpoint
    assert len(during) > 500  # and TCP kept being served through it
    # Bounded: no TCP request waited behind the whole flood.  Generous, as
    # this is a shared 2-core machine; a drain-everything reader would hold
    # the loop for the flood's whole length.
    assert max(during) < 2.0, (statistics.median(before), max(during))
    endpoint.abort()
    listener.close()
    reactor.run_once(0)
