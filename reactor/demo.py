"""``reactor demo``: the three seed conversations at once, on one reactor.

Starts an ack, a read and an echo server on free loopback ports, runs
several clients of each against them concurrently (alternating IPv4 and
IPv6 where both exist), prints the transcript as it happens, and checks
every conversation: each client must finish cleanly, and each server must
have logged exactly what its clients sent.  Exit status 0 means all did.

``reactor trace-demo`` runs one client of each with tracing on and prints
the loop's timeline: every select() call and what it returned, each accept,
read and write, and each connection's and machine's state changes, so you
can watch one thread serve three conversations at once.

``reactor demo --tls`` runs every conversation over TLS, with a throwaway
self-signed certificate that the ``openssl`` command makes in a temporary
directory; without that command it says TLS is skipped and runs them in
the clear.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from .addresses import format_address
from .clients import AckClient, Client, EchoClient, SendClient
from .conversations import Settings, serve
from .loop import Reactor
from .tcp import has_ipv6_loopback
from .trace import Tracer

__all__ = ["run_demo", "self_signed_certificate"]

READ_TEXT = "Half a league, half a league ..."


def _answer_with(message: str) -> Callable[[Callable[[Optional[str]], None]], None]:
    """An AckClient prompt answered at once with ``message``."""
    def ask(answer: Callable[[Optional[str]], None]) -> None:
        answer(message)
    return ask


def self_signed_certificate(directory: Path, days: int = 2) -> Tuple[Path, Path]:
    """Make a self-signed certificate for ``localhost``, 127.0.0.1 and ::1
    with the ``openssl`` command, in ``directory``; return the paths of
    the certificate and its key.  ``FileNotFoundError`` without openssl;
    ``subprocess.CalledProcessError`` if it fails."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days),
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def run_demo(clients_per_kind: int, timeout: float, out: Callable[[str], None],
             trace: bool = False, tls: bool = False) -> int:
    """Run the demo; with ``trace``, one client per conversation on IPv4 and
    the loop's timeline printed as it happens (``reactor trace-demo``);
    with ``tls``, over TLS (see the module docstring)."""
    if not tls:
        return _run_demo(clients_per_kind, timeout, out, trace)
    if shutil.which("openssl") is None:
        out("demo: TLS skipped: the openssl command is not installed (it makes the "
            "throwaway certificate); running in the clear")
        return _run_demo(clients_per_kind, timeout, out, trace)
    with tempfile.TemporaryDirectory(prefix="reactor-demo-") as where:
        try:
            cert, key = self_signed_certificate(Path(where))
        except (OSError, subprocess.SubprocessError) as exc:
            out(f"demo: TLS skipped: openssl could not make a certificate ({exc}); "
                "running in the clear")
            return _run_demo(clients_per_kind, timeout, out, trace)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        client = ssl.create_default_context(cafile=str(cert))
        out("demo: every conversation runs over TLS (a throwaway self-signed certificate "
            "for localhost)")
        return _run_demo(clients_per_kind, timeout, out, trace, (server, client))


def _run_demo(clients_per_kind: int, timeout: float, out: Callable[[str], None],
              trace: bool,
              tls: Optional[Tuple[ssl.SSLContext, ssl.SSLContext]] = None) -> int:
    hosts = ["127.0.0.1", "::1"] if has_ipv6_loopback() and not trace else ["127.0.0.1"]
    server_lines: List[str] = []
    clients: List[Client] = []
    tracer = Tracer(echo=out) if trace else None
    summary = out
    if tracer is not None:
        # The transcript goes into the timeline, between the loop's events.
        def out(line: str) -> None:
            tracer.record("log", None, line)

    with Reactor(trace=tracer) as reactor:
        listeners = {}
        for kind in ("ack", "read", "echo"):
            def log(line: str, kind: str = kind) -> None:
                server_lines.append(f"{kind}: {line}")
                out(f"{kind} server | {line}")
            listeners[kind] = serve(reactor, kind, "localhost", 0, log=log,
                                    settings=Settings(idle_timeout=timeout),
                                    ssl=tls[0] if tls else None)
            for address in listeners[kind].addresses:
                out(f"{kind} server | listening on {format_address(address)}")

        pending = [0]

        def done(client: Client) -> None:
            pending[0] -= 1
            if pending[0] == 0:
                reactor.call_later(0.05, reactor.stop)  # let servers log their last lines

        def start(kind: str, n: int, client: Client) -> None:
            host = hosts[n % len(hosts)]
            client.log = lambda line: out(f"{kind} client {n + 1} | {line}")
            client.on_done = done
            clients.append(client)
            pending[0] += 1

            def connected(connector: object) -> None:
                error = getattr(connector, "error", None)
                if error is not None:
                    client.fail(str(error))

            reactor.connect_tcp(lambda: client, host, listeners[kind].port, timeout=timeout,
                                ssl=tls[1] if tls else None,
                                server_hostname="localhost" if tls else None,
                                ).add_done_callback(connected)

        expected: Counter[str] = Counter()
        for n in range(clients_per_kind):
            message = f"hello from ack client {n + 1}"
            start("ack", n, AckClient(_answer_with(message)))
            expected[f"ack: Got the message:{message}"] += 1
            text = f"{READ_TEXT} (client {n + 1})"
            start("read", n, SendClient([text.encode()], nul=True))
            expected[f"read: -->{text}"] += 1
            expected["read: Ending connection"] += 1
            start("echo", n, EchoClient(250, count=2))

        reactor.call_later(timeout, reactor.stop)
        reactor.run()
        for listener in listeners.values():
            for transport in listener.connections:
                transport.abort()
            listener.close()
        reactor.run_once(0)

    failures = [f"{type(c).__name__}: {c.problem or 'did not finish'}"
                for c in clients if not c.ok]
    seen = Counter(server_lines)
    for line, count in expected.items():
        if seen[line] != count:
            failures.append(f"server logged {line!r} {seen[line]} time(s), expected {count}")
    total = len(clients)
    if failures:
        for failure in failures:
            summary(f"demo: FAILED: {failure}")
        return 1
    summary(f"demo: all {total} conversations completed as expected "
            f"({clients_per_kind} ack, {clients_per_kind} read, {clients_per_kind} echo)")
    return 0
