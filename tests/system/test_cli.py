"""python -m reactor: servers as real processes, clients and error paths
in-process, and the demo."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Callable, Iterator

import pytest

from reactor import cli

from ..procs import Server, python, run

# A name getaddrinfo refuses without asking any DNS server (a label longer
# than 63 bytes cannot be put in a query), so no lookup leaves the machine.
UNRESOLVABLE = "x" * 64 + ".invalid"


def serve(*args: str) -> Server:
    return Server(python("-m", "reactor", "serve", *args))


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(capsys, code: int, expected_code: int = 1) -> str:
    captured = capsys.readouterr()
    assert code == expected_code
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# -- servers ----------------------------------------------------------------------


def test_serve_prints_port_then_addresses_and_stops_on_sigterm() -> None:
    with serve("read") as server:
        assert server.lines[0] == f"Socket port {server.port}"
        server.wait_for(rf"^read server listening on 127\.0\.0\.1:{server.port}$")
        server.wait_for(rf"^read server listening on \[::1\]:{server.port}$")
        result = run(python("-m", "reactor", "send", "::1", str(server.port), "--nul",
                            "Half a league, half a league ... "))
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"Client connected to: [::1]:{server.port}",
            "Client sends: Half a league, half a league ... "]
        server.wait_for(r"^-->Half a league, half a league \.\.\. $")
        server.wait_for(r"^Ending connection$")
        assert server.stop(signal.SIGTERM) == 0
        assert server.lines[-1] == "SIGTERM: shutting down"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_sigint_flushes_and_closes_open_connections() -> None:
    with serve("ack", "--port", "0", "--host", "127.0.0.1") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            assert client.recv(18) == b"You are connected!"
            client.sendall(b"still here\n")
            server.wait_for(r"^Got the message:still here$")
            assert server.stop(signal.SIGINT) == 0
            assert client.recv(10) == b""  # the server closed it cleanly
        assert "SIGINT: shutting down" in server.lines


def test_dual_stack_host_accepts_ipv4_and_ipv6() -> None:
    with serve("echo", "--host", "::", "--port", "0", "--record-size", "4",
               "--verbose") as server:
        assert server.wait_for(r"listening on").endswith(f"[::]:{server.port}")
        for host in ("127.0.0.1", "::1"):
            result = run(python("-m", "reactor", "echo-client", host, str(server.port),
                                "--size", "8", "--count", "3"))
            assert result.returncode == 0, result.stderr
            assert "3 record(s) of 8 bytes came back intact" in result.stdout
        server.wait_for(r"accepted connection from \[::ffff:127\.0\.0\.1\]")
        server.wait_for(r"echoed 8 bytes to ", count=6)
        assert server.stop() == 0


def test_idle_timeout_flag() -> None:
    with serve("read", "--timeout", "0.2") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent:
            server.wait_for(r"timed out: no data for 0\.2s")
            assert silent.recv(1) == b""
        assert server.stop() == 0


def test_max_message_flag() -> None:
    with serve("ack", "--port", "0", "--max-message", "5") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            client.recv(18)
            client.sendall(b"far too long\n")
            server.wait_for(r"closed: message longer than 5 bytes")
        assert server.stop() == 0


def test_port_in_use_is_one_clear_line(capsys, free_port: int) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port))
        holder.listen()
        code = cli.main(["serve", "echo", "--host", "127.0.0.1", "--port", str(free_port)])
    line = one_line_error(capsys, code)
    assert line == (f"reactor serve: cannot listen on 127.0.0.1:{free_port}: "
                    "Address already in use")


def test_unknown_listen_host(capsys) -> None:
    line = one_line_error(capsys, cli.main(["serve", "read", "--host", UNRESOLVABLE]))
    assert line.startswith(f"reactor serve: unknown host '{UNRESOLVABLE}'")


# -- clients ----------------------------------------------------------------------


def test_send_refused_is_one_clear_line(capsys, free_port: int) -> None:
    line = one_line_error(capsys, cli.main(["send", "127.0.0.1", str(free_port)]))
    assert line == (f"reactor send: cannot connect to 127.0.0.1:{free_port}: "
                    "[Errno 111] Connection refused")


def test_send_unknown_host(capsys) -> None:
    line = one_line_error(capsys, cli.main(["send", UNRESOLVABLE, "80"]))
    assert line.startswith(f"reactor send: cannot connect to {UNRESOLVABLE}:80:")


@pytest.mark.parametrize("argv", [
    ["serve", "bogus"], ["serve", "echo", "--port", "70000"], ["send", "h", "port"],
    ["echo-client", "h", "--size", "0"], ["serve", "echo", "--timeout", "-1"],
    ["serve", "echo", "--timeout", "soon"], [],
])
def test_bad_arguments_are_one_line(capsys, argv) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    one_line_error(capsys, info.value.code, expected_code=2)


def _one_shot_server(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        with conn:
            behaviour(conn)

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        thread.join(10)
        listener.close()


def test_echo_client_detects_a_wrong_byte(capsys) -> None:
    def corrupt(conn: socket.socket) -> None:
        data = conn.recv(250)
        conn.sendall(data[:100] + b"?" + data[101:])
        conn.recv(10)

    for port in _one_shot_server(corrupt):
        code = cli.main(["echo-client", "127.0.0.1", str(port)])
    assert one_line_error(capsys, code) == "reactor echo-client: record 1: echoed byte 100 differs"


def test_echo_client_detects_an_early_close(capsys) -> None:
    def half(conn: socket.socket) -> None:
        conn.sendall(conn.recv(250)[:10])

    for port in _one_shot_server(half):
        code = cli.main(["echo-client", "127.0.0.1", str(port)])
    assert one_line_error(capsys, code) == ("reactor echo-client: server closed after 0 of 1 "
                                            "records and 10 bytes of the next")


def test_echo_client_times_out(capsys) -> None:
    def mute(conn: socket.socket) -> None:
        conn.recv(250)
        conn.recv(10)  # until the client gives up

    for port in _one_shot_server(mute):
        code = cli.main(["echo-client", "127.0.0.1", str(port), "--timeout", "0.3"])
    assert one_line_error(capsys, code) == "reactor echo-client: no answer within 0.3s"


def test_ack_client_against_our_server() -> None:
    with serve("ack", "--port", "0") as server:
        result = run(python("-m", "reactor", "ack-client", "localhost", str(server.port)),
                     input="hello from stdin\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout == ("You are connected!\nWhat message for the server? : "
                                 "Client sends: hello from stdin\n")
        server.wait_for(r"^Got the message:hello from stdin$")
        assert server.stop() == 0


def test_ack_client_reads_a_regular_file_too(tmp_path) -> None:
    (tmp_path / "message").write_text("hello from a file\nnot this line\n")
    with serve("ack", "--port", "0") as server, open(tmp_path / "message") as file:
        result = run(python("-m", "reactor", "ack-client", "localhost", str(server.port)),
                     stdin=file)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith("Client sends: hello from a file\n")
        server.wait_for(r"^Got the message:hello from a file$")
        assert server.stop() == 0


@pytest.mark.parametrize("stdin", ["empty pipe", "/dev/null"])
def test_ack_client_with_no_input_fails_cleanly(stdin: str) -> None:
    with serve("ack", "--port", "0") as server:
        command = python("-m", "reactor", "ack-client", "127.0.0.1", str(server.port))
        if stdin == "empty pipe":
            result = run(command, input="")
        else:
            with open("/dev/null") as devnull:
                result = run(command, stdin=devnull)
        assert result.returncode == 1
        assert result.stderr.strip() == "reactor ack-client: no message to send (end of input)"
        assert server.stop() == 0


def test_ack_client_rejects_a_wrong_greeting(capsys) -> None:
    def wrong(conn: socket.socket) -> None:
        conn.sendall(b"Go away!")
        conn.recv(10)

    for port in _one_shot_server(wrong):
        code = cli.main(["ack-client", "127.0.0.1", str(port)])
    assert one_line_error(capsys, code) == "reactor ack-client: not an acknowledgement: 'Go away!'"


# -- demo --------------------------------------------------------------------------


def test_demo_runs_every_conversation() -> None:
    result = run(python("-m", "reactor", "demo", "--clients", "4"), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == ("demo: all 12 conversations completed as expected "
                         "(4 ack, 4 read, 4 echo)")
    assert sum(line.startswith("ack server | Got the message:hello from ack client")
               for line in lines) == 4
    assert sum(line == "read server | Ending connection" for line in lines) == 4
    assert any("[::1]" in line for line in lines)  # IPv6 took part


def test_sigterm_right_after_the_port_line_is_clean() -> None:
    # The port line is the cue for scripts; a signal at that moment must
    # already find the handler installed.
    for _ in range(5):
        with serve("read") as server:
            assert server.stop(signal.SIGTERM) == 0


def test_ack_client_gives_up_even_while_stdin_stays_open() -> None:
    import subprocess
    import time as time_module

    from ..procs import ROOT, env
    with serve("ack", "--port", "0", "--host", "127.0.0.1") as server:
        started = time_module.monotonic()
        proc = subprocess.Popen(python("-m", "reactor", "ack-client", "127.0.0.1",
                                       str(server.port), "--timeout", "0.5"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=ROOT, env=env())
        try:
            proc.wait(timeout=10)  # stdin held open and never written
            err = proc.stderr.read()  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                pipe.close()  # type: ignore[union-attr]
        assert proc.returncode == 1
        assert b"no answer within 0.5s" in err
        assert time_module.monotonic() - started < 8
        assert server.stop() == 0


def test_serve_limits_connections_at_once_and_per_host() -> None:
    with serve("echo", "--host", "127.0.0.1", "--port", "0", "--max-connections", "1") as server:
        first = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        first.sendall(b"a")
        assert first.recv(1) == b"a"
        second.sendall(b"b")  # waits in the backlog: the server is at its limit
        second.settimeout(0.5)
        with pytest.raises(socket.timeout):
            second.recv(1)
        first.close()  # one leaves: the next is accepted and served
        second.settimeout(5)
        assert second.recv(1) == b"b"
        second.close()
        assert server.stop() == 0
    with serve("echo", "--host", "127.0.0.1", "--port", "0",
               "--max-connections-per-host", "1") as server:
        first = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert second.recv(1) == b""  # closed at once
        server.wait_for(r"^warning: refused a connection from 127\.0\.0\.1: it has 1 open "
                        r"already \(max_connections_per_host\)$")
        first.sendall(b"c")
        assert first.recv(1) == b"c"
        first.close()
        second.close()
        assert server.stop() == 0
