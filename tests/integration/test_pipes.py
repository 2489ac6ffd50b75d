"""Pipe transports over real pipes, a FIFO and a pseudo-terminal: reading to
EOF, writing with flow control, a reader that goes away, and what cannot be
watched."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, List, Optional

import pytest

from reactor import Protocol, Reactor

from ..conftest import run_until

pytestmark = pytest.mark.timeout(30)


class Recorder(Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.events: List[Any] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> Optional[bool]:
        self.events.append("eof")
        return None

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))


def test_read_a_pipe_to_eof(reactor: Reactor) -> None:
    r, w = os.pipe()
    protocol = Recorder()
    transport = reactor.connect_read_pipe(lambda: protocol, r)
    os.write(w, b"first ")
    run_until(reactor, lambda: protocol.data == b"first ")
    transport.pause_reading()
    os.write(w, b"second")
    for _ in range(3):
        reactor.run_once(0.01)
    assert protocol.data == b"first " and not transport.is_reading()
    transport.resume_reading()
    os.close(w)
    run_until(reactor, lambda: protocol.events)
    assert protocol.data == b"first second"
    assert protocol.events == ["eof", ("lost", None)]
    with pytest.raises(OSError):
        os.fstat(r)  # the transport closed its descriptor


def test_write_a_pipe_with_flow_control(reactor: Reactor) -> None:
    r, w = os.pipe()
    protocol = Recorder()
    transport = reactor.connect_write_pipe(lambda: protocol, w)
    transport.set_write_buffer_limits(high=256 * 1024, low=64 * 1024)
    payload = os.urandom(4 * 1024 * 1024)
    for start in range(0, len(payload), 100_000):
        transport.write(payload[start:start + 100_000])
    assert protocol.events == ["pause"] and transport.get_write_buffer_size() > 256 * 1024
    transport.write_eof()  # flushes, then closes: the reader sees EOF
    got = bytearray()

    def read_all() -> None:
        with open(r, "rb", buffering=0) as reader:
            while chunk := reader.read(65536):
                got.extend(chunk)
    thread = threading.Thread(target=read_all)
    thread.start()
    run_until(reactor, lambda: protocol.events[-1:] == [("lost", None)])
    thread.join(10)
    assert protocol.events == ["pause", "resume", ("lost", None)]
    assert bytes(got) == payload


def test_a_reader_that_goes_away_is_noticed_without_writing(reactor: Reactor) -> None:
    r, w = os.pipe()
    protocol = Recorder()
    reactor.connect_write_pipe(lambda: protocol, w)
    os.close(r)
    run_until(reactor, lambda: protocol.events)
    ((lost, exc),) = protocol.events
    assert isinstance(exc, BrokenPipeError)


def test_a_write_to_a_gone_reader_fails_once(reactor: Reactor) -> None:
    r, w = os.pipe()
    protocol = Recorder()
    transport = reactor.connect_write_pipe(lambda: protocol, w)
    os.close(r)
    transport.write(b"nobody reads this")
    transport.write(b"nor this")
    run_until(reactor, lambda: protocol.events)
    ((lost, exc),) = protocol.events
    assert isinstance(exc, BrokenPipeError)


def test_a_fifo(reactor: Reactor, tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(path, os.O_WRONLY)
    protocol = Recorder()
    reactor.connect_read_pipe(lambda: protocol, reader)
    os.write(writer, b"through the fifo")
    os.close(writer)
    run_until(reactor, lambda: protocol.events)
    assert protocol.data == b"through the fifo" and protocol.events[0] == "eof"


def test_a_terminal(reactor: Reactor) -> None:
    main, other = os.openpty()
    protocol = Recorder()
    transport = reactor.connect_read_pipe(lambda: protocol, main)
    os.write(other, b"typed\n")
    run_until(reactor, lambda: b"typed" in protocol.data)
    transport.close()
    os.close(other)
    run_until(reactor, lambda: protocol.events)


def test_a_regular_file_is_refused(reactor: Reactor, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x")
    with open(path, "rb") as file:
        with pytest.raises(ValueError, match="regular file cannot be watched"):
            reactor.connect_read_pipe(Recorder, file)
