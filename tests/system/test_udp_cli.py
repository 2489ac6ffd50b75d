"""The UDP echo server and client as processes, and socat as a real UDP
peer."""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest

from ..procs import Server, python, run

pytestmark = pytest.mark.timeout(60)

SOCAT = shutil.which("socat")


def test_udp_echo_server_and_client_on_both_loopbacks() -> None:
    with Server(python("-m", "reactor", "serve", "echo", "--udp", "--port", "0")) as server:
        server.wait_for(r"^echo server listening for UDP datagrams on 127\.0\.0\.1:\d+$")
        for host in ("127.0.0.1", "::1"):
            result = run(python("-m", "reactor", "echo-client", "--udp", host,
                                str(server.port), "--count", "5", "--size", "1400"))
            assert result.returncode == 0, result.stderr
            assert "echo-client: 5 datagram(s) of 1400 bytes came back intact" in result.stdout
        assert server.stop(signal.SIGTERM) == 0


@pytest.mark.skipif(SOCAT is None, reason="socat is not installed (.ci/run installs it; "
                    "apt-get install socat)")
def test_socat_against_the_udp_echo_server() -> None:
    with Server(python("-m", "reactor", "serve", "echo", "--udp", "--port", "0")) as server:
        result = subprocess.run([str(SOCAT), "-t", "2", "-", f"UDP:127.0.0.1:{server.port}"],
                                input=b"one datagram\n", capture_output=True, timeout=20)
        assert result.stdout == b"one datagram\n", result.stderr
        assert server.stop(signal.SIGTERM) == 0


def test_udp_client_with_nobody_there_is_one_clear_line() -> None:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(python("-m", "reactor", "echo-client", "--udp", "127.0.0.1", str(port)))
    assert result.returncode == 1
    assert result.stderr.strip() == ("reactor echo-client: the server is not there: "
                                     "[Errno 111] Connection refused")


@pytest.mark.parametrize("argv", [["serve", "read", "--udp"],
                                  ["serve", "echo", "--udp", "--unix", "/tmp/x"],
                                  ["echo-client", "--udp", "--unix", "/tmp/x"]])
def test_bad_udp_arguments(argv: list) -> None:
    result = run(python("-m", "reactor", *argv))
    assert result.returncode == 2 and "--udp" in result.stderr, result.stderr
