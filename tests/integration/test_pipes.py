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
    assert protocol.events == [("lost", None)]  # noticed; nothing was lost, so no error


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


class Timed(Recorder):
    keep = False

    def deadline_exceeded(self, exc: Any) -> Optional[bool]:
        self.events.append(("deadline", exc.kind, str(exc)))
        return self.keep


def test_the_idle_deadline_on_a_read_pipe(clock: Any, fake_reactor: Reactor) -> None:
    from reactor.testing import advance

    r, w = os.pipe()
    protocol = Timed()
    transport = fake_reactor.connect_read_pipe(lambda: protocol, r)
    transport.set_idle_timeout(5)
    assert transport.get_idle_timeout() == 5
    advance(fake_reactor, 3)
    os.write(w, b"a sign of life")
    advance(fake_reactor, 4.9)  # 4.9 s since the data: not idle yet
    assert protocol.events == []
    transport.pause_reading()
    advance(fake_reactor, 20)  # paused: the writer is not idle, we are not reading
    assert protocol.events == []
    transport.resume_reading()
    advance(fake_reactor, 5)
    assert protocol.events[0] == ("deadline", "idle", "no data received for 5s")
    advance(fake_reactor, 0)
    assert protocol.events[-1][0] == "lost" and protocol.events[-1][1].kind == "idle"
    os.close(w)


def test_the_write_stall_and_lifetime_on_a_write_pipe(clock: Any,
                                                      fake_reactor: Reactor) -> None:
    from reactor.testing import advance

    r, w = os.pipe()
    protocol = Timed()
    transport = fake_reactor.connect_write_pipe(lambda: protocol, w)
    transport.set_write_timeout(2)
    advance(fake_reactor, 10)  # nothing waiting: no stall
    assert protocol.events == []
    transport.write(b"x" * (1024 * 1024))  # more than the pipe holds; nobody reads
    advance(fake_reactor, 2)
    assert protocol.events[0] == "pause"
    assert protocol.events[1][:2] == ("deadline", "write")
    assert "bytes waiting" in protocol.events[1][2]
    advance(fake_reactor, 0)
    assert protocol.events[-1][1].kind == "write"
    os.close(r)

    r, w = os.pipe()
    protocol = Timed()
    protocol.keep = True
    transport = fake_reactor.connect_write_pipe(lambda: protocol, w)
    transport.set_max_lifetime(3)
    advance(fake_reactor, 7)
    assert [e[:2] for e in protocol.events] == [("deadline", "lifetime")] * 2  # kept: again
    transport.set_max_lifetime(None)
    advance(fake_reactor, 10)
    assert len(protocol.events) == 2 and transport.get_max_lifetime() is None
    transport.close()
    advance(fake_reactor, 0)
    os.close(r)


def test_input_on_a_socket_does_not_close_a_write_transport(reactor: Reactor) -> None:
    import socket

    ours, theirs = socket.socketpair()
    protocol = Recorder()
    transport = reactor.connect_write_pipe(lambda: protocol, ours.detach())
    theirs.sendall(b"typed at us")
    for _ in range(5):
        reactor.run_once(0.01)
    assert protocol.events == [] and not transport.is_closing()
    transport.write(b"still writing")
    theirs.settimeout(5)
    assert theirs.recv(100) == b"still writing"
    transport.close()
    run_until(reactor, lambda: protocol.events)
    theirs.close()


def test_a_memoryview_of_wide_items_is_written_whole(reactor: Reactor) -> None:
    import array

    r, w = os.pipe()
    protocol = Recorder()
    transport = reactor.connect_write_pipe(lambda: protocol, w)
    data = memoryview(array.array("i", range(100_000)))  # 400,000 bytes
    transport.write(data)
    transport.close()
    got = bytearray()

    def read_all() -> None:
        with open(r, "rb", buffering=0) as reader:
            while chunk := reader.read(65536):
                got.extend(chunk)
    thread = threading.Thread(target=read_all)
    thread.start()
    run_until(reactor, lambda: ("lost", None) in protocol.events)
    thread.join(10)
    assert bytes(got) == data.tobytes()
