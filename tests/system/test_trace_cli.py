"""Tracing from the command line: ``serve --trace --stats`` and
``trace-demo``, as processes."""

from __future__ import annotations

import socket

from ..procs import Server, python, run


def test_cli_trace_and_stats_flags() -> None:
    with Server(python("-m", "reactor", "serve", "echo", "--host", "127.0.0.1", "--port", "0",
                       "--trace", "--stats", "0.2")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"abc")
            assert s.recv(3) == b"abc"
        server.wait_for(r"\baccept\s+from 127\.0\.0\.1:\d+")
        server.wait_for(r"\bread\s+3 bytes")
        server.wait_for(r"^stats: \d+ steps, .* 3 bytes in, 3 out; 0 accept errors, "
                        r"0 pauses at the connection limit, 0 refused per host$")
        assert server.stop() == 0


def test_trace_demo_prints_one_loop_serving_three_conversations() -> None:
    result = run(python("-m", "reactor", "trace-demo"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "demo: all 3 conversations completed as expected (1 ack, 1 read, 1 echo)"
    text = "\n".join(lines)
    for expected in ("select  wait", "accept  from 127.0.0.1:", "machine ack: - -> IDLE",
                     "machine read: IDLE -> CLOSED", "machine echo: - -> OPEN",
                     "ack server | Got the message:hello from ack client 1",
                     "read server | Ending connection"):
        assert expected in text, expected
    assert sum(" accept " in line for line in lines) == 3


