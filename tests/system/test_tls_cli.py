"""The CLI over TLS: ``serve --tls-cert/--tls-key`` against our clients'
``--tls`` (``--cafile``, ``--insecure``, ``--server-name``) and against
``openssl s_client``; the error lines; ``demo --tls``, with and without
the openssl command."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from ..procs import ROOT, Server, env, free_port, python, run, wait_listening
from ..tlscerts import Certs, needs_openssl

pytestmark = [pytest.mark.timeout(60), needs_openssl]


@pytest.fixture
def echo(tls_certs: Certs) -> Iterator[Server]:
    with Server(python("-m", "reactor", "serve", "echo", "--port", "0", "--host", "127.0.0.1",
                       "--tls-cert", str(tls_certs.cert), "--tls-key", str(tls_certs.key))
                ) as server:
        server.wait_for(r"^echo server listening on 127\.0\.0\.1:\d+ over TLS$")
        yield server
        assert server.stop(signal.SIGTERM) == 0


def test_echo_client_over_tls(echo: Server, tls_certs: Certs) -> None:
    result = run(python("-m", "reactor", "echo-client", "127.0.0.1", str(echo.port),
                        "--count", "3", "--tls", "--cafile", str(tls_certs.cert)))
    assert result.returncode == 0, result.stderr
    assert "echo-client: 3 record(s) of 250 bytes came back intact" in result.stdout
    echo.wait_for(r"^accepted connection from 127\.0\.0\.1:\d+$")
    echo.wait_for(r"^connection from 127\.0\.0\.1:\d+ closed$")


def test_a_client_that_does_not_trust_the_certificate(echo: Server) -> None:
    result = run(python("-m", "reactor", "echo-client", "127.0.0.1", str(echo.port), "--tls"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"reactor echo-client: cannot connect to 127.0.0.1:{echo.port}: TLS handshake "
        "failed: certificate verify failed: self-signed certificate")
    # The server: one line, and it carries on.
    echo.wait_for(r"^warning: TLS handshake with 127\.0\.0\.1:\d+ failed: .*unknown ca$")
    result = run(python("-m", "reactor", "echo-client", "127.0.0.1", str(echo.port), "--tls",
                        "--insecure"))
    assert result.returncode == 0, result.stderr


def test_a_wrong_server_name(echo: Server, tls_certs: Certs) -> None:
    result = run(python("-m", "reactor", "send", "127.0.0.1", str(echo.port), "hi", "--tls",
                        "--cafile", str(tls_certs.cert), "--server-name", "example.org"))
    assert result.returncode == 1
    assert "Hostname mismatch" in result.stderr or "example.org" in result.stderr


def test_a_plain_client_at_the_tls_port(echo: Server) -> None:
    result = run(python("-m", "reactor", "echo-client", "127.0.0.1", str(echo.port)))
    assert result.returncode == 1
    echo.wait_for(r"^warning: TLS handshake with .* failed: .*the peer does not speak TLS")


@pytest.mark.parametrize("kind", ["ack", "read"])
def test_openssl_s_client_against_the_ack_and_read_servers(tls_certs: Certs,
                                                            kind: str) -> None:
    with Server(python("-m", "reactor", "serve", kind, "--port", "0", "--host", "127.0.0.1",
                       "--tls-cert", str(tls_certs.cert), "--tls-key", str(tls_certs.key))
                ) as server:
        message = b"over TLS from openssl\x00" if kind == "read" else b"over TLS from openssl\n"
        proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}",
                                 "-CAfile", str(tls_certs.cert), "-verify_return_error",
                                 "-quiet", "-no_ign_eof"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            assert proc.stdin is not None
            proc.stdin.write(message)
            proc.stdin.flush()
            if kind == "ack":
                server.wait_for(r"^Got the message:over TLS from openssl")
            else:
                server.wait_for(r"^-->over TLS from openssl$")
            stdout, stderr = proc.communicate(timeout=20)  # closes stdin: s_client ends
            if kind == "read":  # the client's close_notify is its end of input
                server.wait_for(r"^Ending connection$")
        finally:
            proc.kill()
            proc.communicate()
        assert proc.returncode == 0, stderr
        if kind == "ack":
            assert stdout.startswith(b"You are connected!")
        assert server.stop(signal.SIGINT) == 0


def test_a_missing_key_is_one_line(tmp_path: Path, tls_certs: Certs) -> None:
    result = run(python("-m", "reactor", "serve", "echo", "--port", "0",
                        "--tls-cert", str(tls_certs.cert), "--tls-key",
                        str(tmp_path / "nowhere.pem")))
    assert result.returncode == 1
    assert result.stderr.startswith("reactor serve: cannot load the TLS certificate ")
    assert len(result.stderr.strip().splitlines()) == 1
    result = run(python("-m", "reactor", "send", "localhost", "1", "--insecure"))
    assert result.returncode == 2 and "go with --tls" in result.stderr


def test_demo_over_tls() -> None:
    result = run(python("-m", "reactor", "demo", "--tls", "--clients", "2"), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("demo: every conversation runs over TLS")
    assert "demo: all 6 conversations completed as expected" in result.stdout


def test_demo_over_tls_without_openssl(tmp_path: Path) -> None:
    """With no openssl on the PATH the demo says TLS is skipped, and runs
    in the clear."""
    environment = env()
    environment["PATH"] = str(tmp_path)  # an empty directory: no openssl
    result = subprocess.run(python("-m", "reactor", "demo", "--tls", "--clients", "1"),
                            capture_output=True, text=True, timeout=60, env=environment,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("demo: TLS skipped: the openssl command is not installed")
    assert "demo: all 3 conversations completed as expected" in result.stdout


def test_ack_client_and_server_over_tls(tls_certs: Certs) -> None:
    with Server(python("-m", "reactor", "serve", "ack", "--port", "0", "--host", "localhost",
                       "--tls-cert", str(tls_certs.cert), "--tls-key", str(tls_certs.key))
                ) as server:
        result = run(python("-m", "reactor", "ack-client", "localhost", str(server.port),
                            "--tls", "--cafile", str(tls_certs.cert)),
                     input="hello over TLS\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout == ("You are connected!\nWhat message for the server? : "
                                 "Client sends: hello over TLS\n")
        server.wait_for(r"^Got the message:hello over TLS$")
        assert server.stop(signal.SIGTERM) == 0


SOCAT = shutil.which("socat")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed (.ci/run "
                                 "installs it; apt-get install socat)")


@needs_socat
def test_socat_over_tls_against_our_echo_server(echo: Server, tls_certs: Certs) -> None:
    result = subprocess.run([str(SOCAT), "-t", "5", "-",
                             f"OPENSSL:127.0.0.1:{echo.port},cafile={tls_certs.cert},"
                             "commonname=localhost"],
                            input=b"hello from socat over TLS\n", capture_output=True,
                            timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello from socat over TLS\n"


@needs_socat
def test_our_echo_client_against_a_socat_tls_server(tls_certs: Certs) -> None:
    port = free_port()
    # fork: a child per connection, so the readiness probe costs nothing.
    server = subprocess.Popen([str(SOCAT), f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,"
                               f"fork,cert={tls_certs.cert},key={tls_certs.key},verify=0",
                               "EXEC:cat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, server)
        result = run(python("-m", "reactor", "echo-client", "127.0.0.1", str(port),
                            "--count", "3", "--tls", "--cafile", str(tls_certs.cert),
                            "--server-name", "localhost"))
        assert result.returncode == 0, result.stderr
        assert "echo-client: 3 record(s) of 250 bytes came back intact" in result.stdout
    finally:
        server.kill()
        server.communicate()
