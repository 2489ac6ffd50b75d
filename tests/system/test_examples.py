"""Every example runs, as a user would run it, against real loopback sockets."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from ..procs import ROOT, Server, python, run

EX = ROOT / "examples"


def example(name: str, *args: str) -> list:
    return python(str(EX / name), *args)


def test_every_example_has_a_docstring_and_a_test() -> None:
    source = Path(__file__).read_text()
    for path in sorted(EX.glob("*.py")):
        text = path.read_text()
        assert text.startswith('"""'), f"{path.name} has no docstring"
        assert "Run:" in text, f"{path.name}'s docstring does not say how to run it"
        assert f'"{path.name}"' in source, f"{path.name} is not exercised by a test"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_hello_pair(host: str) -> None:
    with Server(example("hello_server.py", "--port", "0")) as server:
        result = run(example("hello_client.py", host, str(server.port)))
        assert result.returncode == 0, result.stderr
        assert "Client sends: hello there" in result.stdout
        assert f"Client connected to: {host} {server.port}" in result.stdout
        server.wait_for(r"^Server read: hello there$")
        server.wait_for(rf"^Server accepts connection from: {host} \d+$")
        assert server.stop(signal.SIGINT) == 0


def test_hello_client_reports_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(example("hello_client.py", "127.0.0.1", str(port)))
    assert result.returncode == 1
    assert "cannot connect" in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_echo6_pair_dual_stack(host: str) -> None:
    with Server(example("echo6_server.py", "--port", "0")) as server:
        result = run(example("echo6_client.py", host, str(server.port)))
        assert result.returncode == 0, result.stderr
        assert "all 250 bytes came back" in result.stdout
        peer = r"::ffff:127\.0\.0\.1" if host == "127.0.0.1" else r"::1"
        server.wait_for(rf"accepted connection from \[{peer}\]:\d+")
        assert server.stop(signal.SIGINT) == 0


def test_echo6_server_times_out_a_silent_client() -> None:
    with Server(example("echo6_server.py", "--port", "0", "--timeout", "0.3")) as server:
        with socket.create_connection(("::1", server.port), timeout=5) as silent:
            server.wait_for(r"timed out: no data for 0\.3s")
            assert silent.recv(10) == b""  # the server closed it
        assert server.stop(signal.SIGINT) == 0


@pytest.mark.parametrize("stdin", ["pipe", "regular file"])
def test_ack_pair(stdin: str, tmp_path: Path) -> None:
    with Server(example("ack_server.py", "--port", "0")) as server:
        command = example("ack_client.py", "localhost", str(server.port))
        if stdin == "pipe":  # watched with add_reader
            result = run(command, input="hello from the example\n")
        else:  # epoll cannot watch a file: read in a thread
            (tmp_path / "in.txt").write_text("hello from the example\nnot this\n")
            with open(tmp_path / "in.txt") as file:
                result = run(command, stdin=file)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("You are connected!\nWhat message for the server? : ")
        server.wait_for(r"^server: got connection from = 127\.0\.0\.1 and port = \d+$")
        server.wait_for(r"^Got the message:hello from the example$")
        assert server.stop(signal.SIGINT) == 0


def test_read_server_and_streamwrite() -> None:
    with Server(example("read_server.py")) as server:
        for _ in range(2):
            result = run(example("streamwrite.py", "::1", str(server.port)))
            assert result.returncode == 0, result.stderr
        server.wait_for(r"^-->Half a league, half a league \.\.\. $", count=2)
        server.wait_for(r"^Ending connection$", count=2)
        assert server.stop(signal.SIGINT) == 0
    assert not any("\0" in line for line in server.lines)


def test_streamwrite_usage() -> None:
    result = run(example("streamwrite.py"))
    assert result.returncode == 1
    assert "usage" in result.stderr


def test_general_server_answers_each_piece() -> None:
    with Server(example("general_server.py", "--port", "0")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"x" * 10)
            assert s.recv(100) == b"got 10 bytes\n"
        server.wait_for(r"^closed 127\.0\.0\.1 port \d+$")
        assert server.stop(signal.SIGINT) == 0


def test_chat_server_relays_between_clients() -> None:
    with Server(example("chat_server.py")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as a, \
                socket.create_connection(("127.0.0.1", server.port), timeout=5) as b:
            fa, fb = a.makefile("rb"), b.makefile("rb")
            assert fa.readline() == b"* you are guest1; 1 here\n"
            assert fb.readline() == b"* you are guest2; 2 here\n"
            assert fa.readline() == b"* guest2 joined\n"
            b.sendall(b"hi there\r\n")
            assert fa.readline() == b"guest2: hi there\n"
            a.sendall(b"x" * 2000)
            assert fa.readline() == b"* line too long, goodbye\n"
            assert fb.readline() == b"* guest1 left\n"
            fa.close()
            fb.close()
        assert server.stop(signal.SIGINT) == 0


def test_embed_asyncio_runs_both_loops_on_one_thread() -> None:
    result = run(example("embed_asyncio.py", "--messages", "4"))
    assert result.returncode == 0, result.stderr
    got = [ln for ln in result.stdout.splitlines() if ln.startswith("asyncio client got back:")]
    assert got == [f"asyncio client got back: message {i}" for i in range(4)]
    assert "reactor: accepted connection from 127.0.0.1:" in result.stdout
    assert result.stdout.rstrip().endswith("done: both loops ran on one thread")


def test_embed_game_loop_serves_between_frames() -> None:
    with Server(example("embed_game_loop.py", "--frames", "400", "--fps", "200")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            lines = s.makefile("rb")
            frames = [int(lines.readline().split()[1]) for _ in range(3)]
            lines.close()
        assert frames == sorted(frames) and len(set(frames)) == 3
        assert all(f % 20 == 0 for f in frames)  # ten times a second of game time
        assert server.wait(timeout=20) == 0
        assert server.lines[-1] == "stopped after 400 frames"


def test_embed_tkinter_serves_from_tk_event_loop() -> None:
    pytest.importorskip("tkinter", reason="this Python was built without Tk")
    with Server(example("embed_tkinter.py", "--seconds", "3")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"  # echoed by the reactor, driven by Tk
            server.wait_for(r"^clients: 1  bytes in: 4  out: 4$")
        assert server.wait(timeout=20) == 0


def test_kv_server_answers_length_prefixed_requests() -> None:
    import struct

    def ask(sock: socket.socket, request: bytes) -> bytes:
        sock.sendall(struct.pack(">I", len(request)) + request)
        reader = sock.makefile("rb")
        (size,) = struct.unpack(">I", reader.read(4))
        reply = reader.read(size)
        reader.close()
        return reply

    with Server(example("kv_server.py", "--port", "0")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            assert ask(s, b"SET colour blue") == b"OK"
            assert ask(s, b"GET colour") == b"blue"
            assert ask(s, b"GET size") == b"(not found)"
            assert ask(s, b"FLY away").startswith(b"error: cannot 'FLY away'")
            s.sendall(struct.pack(">I", 10_000_000))  # past the 64 KiB limit
            assert s.recv(100) == b""  # that connection only
        server.wait_for(r"^closed 127\.0\.0\.1 port \d+: frame of 10000000 bytes")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            assert ask(s, b"KEYS") == b"colour"
        assert server.stop(signal.SIGINT) == 0


def test_kv_client_reconnects_when_the_server_comes_back() -> None:
    requests = ["SET greeting hello", "GET greeting"] + ["GET greeting"] * 40
    with Server(example("kv_server.py", "--port", "0")) as first:
        port = first.port
        client = Server(example("kv_client.py", "127.0.0.1", str(port), *requests,
                                "--interval", "0.05", "--max-delay", "0.5"),
                        ready=r"^connecting to 127\.0\.0\.1 port \d+$")
        with client:
            client.wait_for(r"^< hello$")
            assert first.stop(signal.SIGINT) == 0  # the server goes away mid-run
            client.wait_for(r"^connection lost")
            client.wait_for(r"^attempt \d+ failed: .*refused.*; next in \d\.\d\ds$")
            with Server(example("kv_server.py", "--port", str(port))) as second:
                # A new server, so an empty store: the rest are not found.
                client.wait_for(r"^< \(not found\)$", timeout=20)
                assert client.wait(timeout=30) == 0
                second.wait_for(r"^connection from 127\.0\.0\.1")
                assert second.stop(signal.SIGINT) == 0
    out = client.lines
    assert out[-2:] == [f"done: {len(requests)} replies", "connection closed"]
    assert len([line for line in out if line.startswith("< ")]) == len(requests)
    assert len([line for line in out if line.startswith("connected to")]) == 2
