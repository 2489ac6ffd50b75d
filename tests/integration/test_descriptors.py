"""add_reader / add_writer on users' own descriptors: pipes and socketpairs,
removal from inside a callback, a descriptor closed while watched, and a
clear error for a descriptor a transport owns."""

from __future__ import annotations

import os
import socket
from typing import Any, Callable, List, Tuple

import pytest

from reactor import Protocol, Reactor, StreamTransport

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pipe() -> Any:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    ends = {"r": r, "w": w}
    yield ends
    for fd in ends.values():
        try:
            os.close(fd)
        except OSError:
            pass


def steps(reactor: Reactor, n: int = 3) -> None:
    for _ in range(n):
        reactor.run_once(0.01)


def test_reader_on_a_pipe_is_called_with_its_args_until_removed(reactor: Reactor,
                                                               pipe: Any) -> None:
    got: List[Tuple[str, bytes]] = []
    reactor.add_reader(pipe["r"], lambda tag: got.append((tag, os.read(pipe["r"], 100))), "p")
    assert reactor.registered_count() == 1
    steps(reactor)
    assert got == []  # nothing to read yet: not called
    os.write(pipe["w"], b"hello")
    steps(reactor)
    assert got == [("p", b"hello")]
    assert reactor.remove_reader(pipe["r"]) is True
    assert reactor.remove_reader(pipe["r"]) is False
    os.write(pipe["w"], b"unread")
    steps(reactor)
    assert got == [("p", b"hello")] and reactor.registered_count() == 0


def test_writer_removed_from_inside_its_callback_runs_once(reactor: Reactor,
                                                           pipe: Any) -> None:
    calls: List[int] = []

    def writable() -> None:
        calls.append(os.write(pipe["w"], b"x"))
        assert reactor.remove_writer(pipe["w"]) is True

    reactor.add_writer(pipe["w"], writable)
    steps(reactor, 5)
    assert calls == [1] and reactor.registered_count() == 0
    assert os.read(pipe["r"], 10) == b"x"


def test_reader_and_writer_on_one_socket_and_replacing_a_reader(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        seen: List[str] = []
        reactor.add_reader(a, seen.append, "old reader")
        reactor.add_reader(a.fileno(), seen.append, "reader")  # replaces, by number too
        reactor.add_writer(a, seen.append, "writer")
        assert reactor.registered_count() == 1
        b.send(b"ping")
        reactor.run_once(0.01)
        assert seen == ["reader", "writer"]
        assert reactor.remove_writer(a) is True
        seen.clear()
        reactor.run_once(0.01)
        assert seen == ["reader"]  # still readable: the reader alone is left
        assert reactor.remove_reader(a) is True and reactor.registered_count() == 0
    finally:
        a.close()
        b.close()


def test_a_reader_that_removes_the_writer_stops_it_in_the_same_step(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    try:
        seen: List[str] = []

        def reader() -> None:
            seen.append("reader")
            reactor.remove_writer(a)

        reactor.add_reader(a, reader)
        reactor.add_writer(a, seen.append, "writer")
        b.send(b"ping")  # readable and writable in the same select()
        reactor.run_once(0.01)
        assert seen == ["reader"]
        reactor.remove_reader(a)
    finally:
        a.close()
        b.close()


def test_a_raising_callback_is_reported_and_stays_registered(reactor: Reactor, pipe: Any,
                                                             errors: List[Any]) -> None:
    def broken() -> None:
        os.read(pipe["r"], 100)
        raise ValueError("bad reader")

    reactor.add_reader(pipe["r"], broken)
    os.write(pipe["w"], b"1")
    steps(reactor)
    os.write(pipe["w"], b"2")
    steps(reactor)
    assert [(e["callback"], e["fd"], type(e["exception"])) for e in errors] == [
        (broken, pipe["r"], ValueError)] * 2
    assert reactor.remove_reader(pipe["r"])


def test_a_descriptor_closed_while_watched(reactor: Reactor, errors: List[Any]) -> None:
    a, b = socket.socketpair()
    calls: List[int] = []
    fd = a.fileno()
    reactor.add_reader(fd, calls.append, 1)
    b.send(b"pending")
    a.close()  # closed without remove_reader: epoll forgets it by itself
    b.close()
    steps(reactor)
    assert calls == [] and errors == []  # no callback, no error, no spinning
    # The number can come back for a new descriptor: watching it works, and
    # removing the stale reader first leaves only the new registration.
    c, d = socket.socketpair()
    try:
        assert reactor.remove_reader(fd) is True
        reactor.add_reader(c, calls.append, 2)
        d.send(b"x")
        steps(reactor)
        assert calls and set(calls) == {2}
        assert reactor.remove_reader(c) is True and reactor.registered_count() == 0
    finally:
        c.close()
        d.close()


def test_adding_to_a_descriptor_closed_while_watched_watches_the_new_one(
        reactor: Reactor) -> None:
    # Closed while watched, its number reused, and add_writer called for the
    # new descriptor without a remove first: epoll has dropped the old one,
    # so the reactor registers the descriptor now behind that number.
    a, b = socket.socketpair()
    fd = a.fileno()
    reactor.add_reader(fd, lambda: None)
    a.close()
    b.close()
    c, d = socket.socketpair()
    try:
        if c.fileno() != fd:  # pragma: no cover
            pytest.skip("the kernel gave the new socket another number")
        seen: List[str] = []
        reactor.add_writer(c.fileno(), seen.append, "w")
        reactor.run_once(0.01)
        assert "w" in seen
        reactor.remove_writer(c.fileno())
        reactor.remove_reader(c.fileno())
        assert reactor.registered_count() == 0
    finally:
        c.close()
        d.close()


def test_a_transports_descriptor_cannot_be_watched_or_unwatched(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    transport = StreamTransport(reactor, a, Protocol())
    transport.start()
    try:
        for call in (lambda: reactor.add_reader(a, print),
                     lambda: reactor.add_writer(a.fileno(), print),
                     lambda: reactor.remove_reader(a)):
            with pytest.raises(RuntimeError, match=r"watched by <StreamTransport"):
                call()
        assert transport.is_reading()  # untouched
    finally:
        transport.abort()
        reactor.run_once(0)
        b.close()


def test_read_lines_from_a_pipe_without_a_thread(reactor: Reactor, pipe: Any) -> None:
    """The pattern the CLI's ack-client uses for standard input."""
    lines: List[str] = []
    buffer = bytearray()

    def readable(on_line: Callable[[str], None]) -> None:
        chunk = os.read(pipe["r"], 4096)
        buffer.extend(chunk)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            on_line(line.decode())
        if not chunk:
            reactor.remove_reader(pipe["r"])

    reactor.add_reader(pipe["r"], readable, lines.append)
    os.write(pipe["w"], b"first\nsec")
    steps(reactor)
    os.write(pipe["w"], b"ond\n")
    os.close(pipe.pop("w"))
    steps(reactor)
    assert lines == ["first", "second"] and reactor.registered_count() == 0


def test_a_reader_for_a_reused_number_with_the_same_events_is_watched(
        reactor: Reactor) -> None:
    # add_reader(7), 7 closed, a new pipe gets 7, add_reader(7) again: the
    # events are the same, yet the new descriptor must really be watched.
    r1, w1 = os.pipe()
    reactor.add_reader(r1, lambda: None)
    os.close(r1)
    os.close(w1)
    r2, w2 = os.pipe()
    try:
        if r2 != r1:  # pragma: no cover
            pytest.skip("the kernel gave the new pipe another number")
        got: List[bytes] = []
        reactor.add_reader(r2, lambda: got.append(os.read(r2, 100)))
        os.write(w2, b"new")
        steps(reactor)
        assert got == [b"new"]
        assert reactor.remove_reader(r2) and reactor.registered_count() == 0
    finally:
        os.close(r2)
        os.close(w2)


def test_removing_one_callback_of_a_closed_descriptor_does_not_raise(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    reactor.add_reader(fd, lambda: None)
    reactor.add_writer(fd, lambda: None)
    a.close()
    b.close()
    assert reactor.remove_writer(fd) is True  # the reader cannot fire any more either
    assert reactor.registered_count() == 0
