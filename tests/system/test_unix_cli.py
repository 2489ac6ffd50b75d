"""The CLI over Unix sockets, against our own programs and socat: serve
--unix, send --unix, echo-client --unix, abstract names, and the error
lines."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from ..procs import Server, python, run

pytestmark = pytest.mark.timeout(60)

SOCAT = shutil.which("socat")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed (.ci/run "
                                 "installs it; apt-get install socat)")


@pytest.fixture
def sockdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rx-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve_unix(kind: str, path: str, *args: str) -> Server:
    return Server(python("-m", "reactor", "serve", kind, "--unix", path, *args),
                  ready=r"^Socket path ")


def test_echo_server_and_client_over_a_unix_socket(sockdir: Path) -> None:
    path = str(sockdir / "echo.sock")
    with serve_unix("echo", path) as server:
        server.wait_for(rf"^echo server listening on {path}$")
        result = run(python("-m", "reactor", "echo-client", "--unix", path, "--count", "3"))
        assert result.returncode == 0, result.stderr
        assert "echo-client: 3 record(s) of 250 bytes came back intact" in result.stdout
        assert f"Client connected to: {path}" in result.stdout
        server.wait_for(r"^accepted connection from \(unnamed\)$")
        assert server.stop(signal.SIGTERM) == 0
    assert not os.path.exists(path)  # the server removed its socket file


@needs_socat
def test_socat_against_our_echo_server(sockdir: Path) -> None:
    path = str(sockdir / "echo.sock")
    with serve_unix("echo", path) as server:
        result = subprocess.run([str(SOCAT), "-t", "5", "-", f"UNIX-CONNECT:{path}"],
                                input=b"hello from socat\n", capture_output=True, timeout=20)
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"hello from socat\n"
        assert server.stop(signal.SIGTERM) == 0


def test_read_server_on_an_abstract_name_and_send() -> None:
    name = f"@rx-{uuid.uuid4().hex[:12]}"
    with serve_unix("read", name) as server:
        server.wait_for(rf"^read server listening on {name}$")
        result = run(python("-m", "reactor", "send", "--unix", name, "--nul", "hello", "there"))
        assert result.returncode == 0, result.stderr
        server.wait_for(r"^-->hello$")
        server.wait_for(r"^-->there$")
        server.wait_for(r"^Ending connection$")
        assert server.stop(signal.SIGINT) == 0


@needs_socat
def test_send_to_a_socat_server(sockdir: Path) -> None:
    path = str(sockdir / "socat.sock")
    listener = subprocess.Popen([str(SOCAT), "-u", f"UNIX-LISTEN:{path}", "-"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            assert time.monotonic() < deadline and listener.poll() is None, "socat did not start"
            time.sleep(0.02)
        result = run(python("-m", "reactor", "send", "--unix", path, "--nul", "to socat"))
        assert result.returncode == 0, result.stderr
        out, _ = listener.communicate(timeout=10)
        assert out == b"to socat\0"
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait(5)


def test_a_live_path_is_one_clear_line(sockdir: Path) -> None:
    path = str(sockdir / "taken.sock")
    with serve_unix("echo", path) as server:
        result = run(python("-m", "reactor", "serve", "echo", "--unix", path))
        assert result.returncode == 1
        assert result.stderr.strip() == (f"reactor serve: cannot listen on {path}: "
                                         f"address in use: a server is listening there")
        assert server.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("argv, message", [
    (["serve", "echo", "--unix", "/tmp/x.sock", "--port", "3005"], "--port or --unix"),
    (["echo-client"], "HOST [PORT] or --unix PATH"),
    (["echo-client", "localhost", "--unix", "/tmp/x.sock"], "HOST [PORT] or --unix PATH"),
    (["send", "localhost"], "send needs HOST PORT"),
])
def test_bad_unix_arguments(argv: list, message: str) -> None:
    result = run(python("-m", "reactor", *argv))
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_connecting_to_nothing_is_one_clear_line(sockdir: Path) -> None:
    path = str(sockdir / "nobody.sock")
    result = run(python("-m", "reactor", "send", "--unix", path))
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"reactor send: cannot connect to {path}: ")
