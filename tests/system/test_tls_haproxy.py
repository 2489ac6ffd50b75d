"""HAProxy as a TLS peer: it connects over TLS to our echo server (its
backend checks our certificate and the host name), and it terminates TLS
for our client in front of our plain echo server."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest

from ..procs import Server, free_port, python, run, wait_listening
from ..tlscerts import Certs, needs_openssl

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists()
                                      else None)

pytestmark = [pytest.mark.timeout(60), needs_openssl,
              pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (.ci/run "
                                 "installs it; apt-get install haproxy)")]


def haproxy(tmp_path: Path, sections: str) -> Iterator[subprocess.Popen]:
    config = tmp_path / "haproxy.cfg"
    config.write_text("global\n    maxconn 64\n"
                      "defaults\n    mode tcp\n    timeout connect 5s\n"
                      "    timeout client 10s\n    timeout server 10s\n" + sections)
    assert HAPROXY is not None
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.kill()
        proc.communicate()


@pytest.fixture
def echo(tls_certs: Certs) -> Iterator[Server]:
    with Server(python("-m", "reactor", "serve", "echo", "--port", "0", "--host", "127.0.0.1",
                       "--tls-cert", str(tls_certs.cert), "--tls-key", str(tls_certs.key))
                ) as server:
        yield server
        assert server.stop(signal.SIGTERM) == 0


def test_haproxy_connects_over_tls_to_our_server(echo: Server, tls_certs: Certs,
                                                 tmp_path: Path) -> None:
    front = free_port()
    sections = (f"frontend plain\n    bind 127.0.0.1:{front}\n    default_backend ours\n"
                f"backend ours\n    server echo 127.0.0.1:{echo.port} ssl verify required "
                f"ca-file {tls_certs.cert} verifyhost localhost sni str(localhost)\n")
    for proc in haproxy(tmp_path, sections):
        wait_listening(front, proc)
        replies: List[bytes] = []
        for n in range(3):
            with socket.create_connection(("127.0.0.1", front), timeout=10) as plain:
                message = b"through haproxy %d\n" % n
                plain.sendall(message)
                got = b""
                while len(got) < len(message):
                    chunk = plain.recv(100)
                    assert chunk, "haproxy closed early"
                    got += chunk
                replies.append(got)
        assert replies == [b"through haproxy %d\n" % n for n in range(3)]
    echo.wait_for(r"^accepted connection from 127\.0\.0\.1:\d+$", count=3)
    # The readiness probe made haproxy open a backend connection and drop
    # it mid-handshake: that one may show, as the routine line it is.
    warnings = [line for line in echo.lines if line.startswith("warning")]
    assert len(warnings) <= 1, warnings
    assert all("failed: connection reset by the peer" in w
               or "during the TLS handshake" in w for w in warnings), warnings


def test_our_client_through_haproxy_terminating_tls(tls_certs: Certs, tmp_path: Path) -> None:
    combined = tmp_path / "combined.pem"
    combined.write_bytes(tls_certs.cert.read_bytes() + tls_certs.key.read_bytes())
    with Server(python("-m", "reactor", "serve", "echo", "--port", "0", "--host",
                       "127.0.0.1")) as plain_echo:
        front = free_port()
        sections = (f"frontend tls\n    bind 127.0.0.1:{front} ssl crt {combined}\n"
                    f"    default_backend ours\n"
                    f"backend ours\n    server echo 127.0.0.1:{plain_echo.port}\n")
        for proc in haproxy(tmp_path, sections):
            wait_listening(front, proc)
            result = run(python("-m", "reactor", "echo-client", "localhost", str(front),
                                "--count", "3", "--tls", "--cafile", str(tls_certs.cert)))
            assert result.returncode == 0, result.stderr
            assert "echo-client: 3 record(s) of 250 bytes came back intact" in result.stdout
        assert plain_echo.stop(signal.SIGTERM) == 0
