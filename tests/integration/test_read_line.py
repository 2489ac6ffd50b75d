"""The CLI's standard-input reader: a pipe or a terminal is watched with
add_reader (no thread); a regular file or /dev/null, which epoll cannot
watch, is read by one daemon thread."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any, List, Optional

import pytest

from reactor import Reactor
from reactor.cli import read_line

pytestmark = pytest.mark.timeout(30)


def answers_until(reactor: Reactor, got: List[Optional[str]], timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.01)):
        if got:
            return
        reactor.run_once(0.01)
    raise AssertionError("no answer")


def reader_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "reactor-stdin"]


def test_a_pipe_is_read_without_a_thread_even_in_pieces(reactor: Reactor) -> None:
    r, w = os.pipe()
    with os.fdopen(r, "r") as stream, os.fdopen(w, "wb", buffering=0) as writer:
        got: List[Optional[str]] = []
        read_line(reactor, got.append, stream)
        assert reactor.registered_count() == 1 and reader_threads() == []
        writer.write(b"hello ")
        for _ in range(3):
            reactor.run_once(0.01)
        assert got == []  # half a line: keep waiting
        writer.write("w\u00f6rld\nand more\n".encode())
        answers_until(reactor, got)
        assert got == ["hello w\u00f6rld\n"]
        assert reactor.registered_count() == 0 and reader_threads() == []


def test_end_of_input_on_a_pipe_answers_none(reactor: Reactor) -> None:
    r, w = os.pipe()
    os.close(w)
    with os.fdopen(r, "r") as stream:
        got: List[Optional[str]] = []
        read_line(reactor, got.append, stream)
        answers_until(reactor, got)
        assert got == [None] and reactor.registered_count() == 0


def test_a_terminal_is_read_without_a_thread(reactor: Reactor) -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "r") as stream:
        try:
            got: List[Optional[str]] = []
            read_line(reactor, got.append, stream)
            assert reactor.registered_count() == 1 and reader_threads() == []
            os.write(master, b"typed at a terminal\n")
            answers_until(reactor, got)
            assert got == ["typed at a terminal\n"]
        finally:
            os.close(master)


@pytest.mark.parametrize("kind", ["regular file", "/dev/null", "no descriptor"])
def test_what_epoll_cannot_watch_is_read_in_a_thread(reactor: Reactor, tmp_path: Path,
                                                     kind: str) -> None:
    if kind == "regular file":
        path = tmp_path / "input.txt"
        path.write_text("from a file\nsecond line\n")
        stream: Any = open(path)
        expected: Optional[str] = "from a file\n"
    elif kind == "/dev/null":
        stream, expected = open(os.devnull), None
    else:
        stream, expected = io.StringIO("from memory\n"), "from memory\n"
    try:
        got: List[Optional[str]] = []
        read_line(reactor, got.append, stream)
        assert reactor.registered_count() == 0  # nothing watched
        answers_until(reactor, got)
        assert got == [expected]
    finally:
        stream.close()
