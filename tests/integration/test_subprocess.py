"""Child processes: 10 MiB through cat with flow control both ways, a child
that stops reading early, signals, 200 short-lived children with no zombie
and no descriptor left, and a reactor on another thread."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Dict, List, Optional

import pytest

from reactor import ProcessProtocol, Reactor
from reactor.process import DEVNULL
from reactor.testing import open_descriptors

from ..conftest import run_until

pytestmark = pytest.mark.timeout(60)


class Recorder(ProcessProtocol):
    def __init__(self) -> None:
        self.out: Dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.events: List[Any] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.out[fd] += data

    def pipe_connection_lost(self, fd: int, exc: Optional[BaseException]) -> None:
        self.events.append(("pipe lost", fd, exc))

    def process_exited(self, returncode: int) -> None:
        self.events.append(("exited", returncode))

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.events.append(("lost", exc))


def test_ten_mib_through_cat_with_flow_control_both_ways(reactor: Reactor) -> None:
    payload = os.urandom(10 * 1024 * 1024)

    class Feeder(Recorder):
        sent = 0
        pauses = 0
        reading_pauses = 0

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.stdin = transport.get_pipe_transport(0)
            self.paused = False
            self.feed()

        def feed(self) -> None:
            while not self.paused and self.sent < len(payload):
                self.stdin.write(payload[self.sent:self.sent + 65536])
                self.sent += 65536
            if self.sent >= len(payload):
                self.stdin.close()

        def pause_writing(self) -> None:
            self.paused = True
            self.pauses += 1

        def resume_writing(self) -> None:
            self.paused = False
            self.feed()

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            super().pipe_data_received(fd, data)
            if len(self.out[1]) // (1024 * 1024) > self.reading_pauses:
                # Read slower for a moment: cat then blocks on its stdout.
                self.reading_pauses += 1
                stdout = self.transport.get_pipe_transport(1)
                stdout.pause_reading()
                reactor.call_later(0.01, stdout.resume_reading)

    protocol = Feeder()
    reactor.spawn_process(lambda: protocol, ["cat"])
    run_until(reactor, lambda: ("lost", None) in protocol.events, timeout=50)
    assert bytes(protocol.out[1]) == payload
    assert protocol.pauses > 0 and protocol.reading_pauses >= 9
    assert ("exited", 0) in protocol.events
    assert protocol.events[-1] == ("lost", None)


def test_a_child_that_stops_reading_early(reactor: Reactor, errors: List[Any]) -> None:
    protocol = Recorder()
    transport = reactor.spawn_process(
        lambda: protocol, [sys.executable, "-c", "import sys; sys.stdin.buffer.read(10)"],
        stdout=DEVNULL, stderr=DEVNULL)
    stdin = transport.get_pipe_transport(0)
    stdin.write(b"x" * (4 * 1024 * 1024))  # far more than it reads
    run_until(reactor, lambda: ("lost", None) in protocol.events)
    broken = [e for e in protocol.events if e[0] == "pipe lost"]
    assert len(broken) == 1 and broken[0][1] == 0  # reported once, on stdin
    assert isinstance(broken[0][2], BrokenPipeError)
    assert ("exited", 0) in protocol.events
    assert errors == []  # a routine event, not an error
    assert transport.get_pipe_transport(0) is None


def test_output_env_cwd_and_stderr(reactor: Reactor, tmp_path: Any) -> None:
    protocol = Recorder()
    reactor.spawn_process(lambda: protocol,
                          ["sh", "-c", 'echo "$GREETING"; pwd; echo oops >&2; exit 3'],
                          stdin=DEVNULL, env={"GREETING": "hi", "PATH": os.environ["PATH"]},
                          cwd=str(tmp_path))
    run_until(reactor, lambda: ("lost", None) in protocol.events)
    assert protocol.out[1] == f"hi\n{os.path.realpath(tmp_path)}\n".encode()
    assert protocol.out[2] == b"oops\n"
    assert ("exited", 3) in protocol.events
    # connection_lost is last: after the exit and after every pipe closed.
    assert protocol.events[-1] == ("lost", None)
    assert sorted(e[1] for e in protocol.events if e[0] == "pipe lost") == [1, 2]


def test_signals(reactor: Reactor) -> None:
    protocol = Recorder()
    transport = reactor.spawn_process(lambda: protocol, ["sleep", "30"], stdin=DEVNULL)
    assert transport.get_returncode() is None and transport.get_pid() > 0
    transport.terminate()
    run_until(reactor, lambda: ("lost", None) in protocol.events)
    assert transport.get_returncode() == -signal.SIGTERM
    transport.kill()  # reaped already: nothing happens


def test_two_hundred_short_lived_children_leave_nothing(reactor: Reactor) -> None:
    before = open_descriptors()
    protocols = [Recorder() for _ in range(200)]
    for protocol in protocols:
        reactor.spawn_process(lambda p=protocol: p, ["true"])
    run_until(reactor, lambda: all(("lost", None) in p.events for p in protocols), timeout=50)
    assert all(("exited", 0) in p.events for p in protocols)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left to reap: no zombie
    assert open_descriptors() == before
    assert reactor.registered_count() == 0


def test_a_reactor_on_another_thread(errors: List[Any]) -> None:
    result: List[Any] = []

    def run() -> None:
        with Reactor() as reactor:
            protocol = Recorder()
            reactor.spawn_process(lambda: protocol, ["sh", "-c", "echo from a thread"])
            while ("lost", None) not in protocol.events:
                reactor.run_once(0.05)
            result.append((bytes(protocol.out[1]), protocol.events))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    (out, events), = result
    assert out == b"from a thread\n" and ("exited", 0) in events


def test_close_kills_a_running_child(reactor: Reactor) -> None:
    protocol = Recorder()
    transport = reactor.spawn_process(lambda: protocol, ["sleep", "30"])
    transport.close()
    run_until(reactor, lambda: ("lost", None) in protocol.events)
    assert transport.get_returncode() == -signal.SIGKILL


def test_reactor_close_reaps_a_running_child() -> None:
    reactor = Reactor()
    protocol = Recorder()
    transport = reactor.spawn_process(lambda: protocol, ["sleep", "30"])
    reactor.close()
    assert transport.get_returncode() == -signal.SIGKILL
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_stdin_unused_closes_cleanly(reactor: Reactor) -> None:
    protocol = Recorder()
    reactor.spawn_process(lambda: protocol, ["true"])
    run_until(reactor, lambda: ("lost", None) in protocol.events)
    assert ("pipe lost", 0, None) in protocol.events  # nothing was lost: no error


def test_a_failing_start_kills_and_reaps_the_child(reactor: Reactor,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from reactor import process

    def refuse(self: Any) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(process.ProcessTransport, "_watch_exit", refuse)
    before = open_descriptors()
    with pytest.raises(OSError, match="Too many open files"):
        reactor.spawn_process(Recorder, ["sleep", "30"])
    for _ in range(3):
        reactor.run_once(0)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # killed and reaped
    assert open_descriptors() == before and reactor.registered_count() == 0
