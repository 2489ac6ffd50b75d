"""Tests for reactor.loop with real descriptors: I/O is never starved, the
loop is woken from other threads and by signals, stale events go nowhere,
and the lean epoll selector reports what the standard one does."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest

from reactor import Protocol, Reactor, StreamTransport
from reactor.testing import ScriptedSelector

pytestmark = pytest.mark.timeout(30)

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


# -- the ready queue -------------------------------------------------------------


def test_self_rescheduling_callback_does_not_starve_io(reactor: Reactor) -> None:
    # A callback that always reschedules itself runs once per step, and each
    # step still polls the selector.
    a, b = socket.socketpair()
    try:
        count = [0]

        def spin() -> None:
            count[0] += 1
            reactor.call_soon(spin)

        got: List[bytes] = []

        class Reader(Protocol):
            def data_received(self, data: bytes) -> None:
                got.append(data)

        a.setblocking(False)
        t = StreamTransport(reactor, a, Reader())
        t.start()
        reactor.call_soon(spin)
        b.sendall(b"ping")
        for _ in range(5):
            reactor.run_once(0)
        assert count[0] == 5
        assert got == [b"ping"]
        t.abort()
        reactor.run_once(0)
    finally:
        b.close()


# -- timers through the loop ---------------------------------------------------------


# -- run / stop -----------------------------------------------------------------------


def _later_in_thread(delay: float, fn: Any, *args: Any) -> threading.Thread:
    def body() -> None:
        time.sleep(delay)
        fn(*args)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


@pytest.mark.timeout(10)
def test_call_soon_threadsafe_wakes_run_once_none(reactor: Reactor) -> None:
    ran_on: List[int] = []
    thread = _later_in_thread(0.05, reactor.call_soon_threadsafe,
                              lambda: ran_on.append(threading.get_ident()))
    try:
        reactor.run_once(None)  # blocks until the other thread wakes it
        if not ran_on:  # woken (waker drained) but handle not yet run
            reactor.run_once(0)
    finally:
        thread.join()
    assert ran_on == [threading.get_ident()]


@pytest.mark.timeout(10)
def test_call_soon_threadsafe_wakes_run(reactor: Reactor) -> None:
    thread = _later_in_thread(0.05, reactor.call_soon_threadsafe, reactor.stop)
    try:
        reactor.run()
    finally:
        thread.join()
    assert not reactor.is_running()


@pytest.mark.timeout(10)
def test_stop_from_another_thread_wakes_run(reactor: Reactor) -> None:
    started = threading.Event()
    reactor.call_soon(started.set)

    def body() -> None:
        started.wait(5)
        time.sleep(0.05)
        reactor.stop()

    thread = threading.Thread(target=body)
    thread.start()
    try:
        reactor.run()
    finally:
        thread.join()
    assert started.is_set()


# -- errors ---------------------------------------------------------------------------


# -- dispatch with a scripted selector ---------------------------------------------------


class Recorder(Protocol):
    def __init__(self) -> None:
        self.data: List[bytes] = []
        self.lost: List[Optional[BaseException]] = []

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


def test_dispatch_routes_by_key_data_and_ignores_stale_transport(errors: List[Any]) -> None:
    selector = ScriptedSelector()
    r = Reactor(selector=selector)
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        old_proto = Recorder()
        old = StreamTransport(r, a, old_proto)
        old.start()
        fd = a.fileno()
        assert selector.keys[fd].data is old
        assert selector.keys[fd].events == EVENT_READ
        stale_key = selector.keys[fd]

        old.abort()
        assert fd not in selector.keys  # unregistered at once
        r.run_once(0)                   # connection_lost runs, socket closes
        assert old_proto.lost == [None]
        assert a.fileno() == -1

        # The descriptor number is reused by a new connection; a stale event
        # for the old owner arrives in the same step as one for the new.
        c, d = socket.socketpair()
        try:
            c.setblocking(False)
            b.close()
            new_proto = Recorder()
            new = StreamTransport(r, c, new_proto)
            new.start()
            new_fd = c.fileno()
            d.sendall(b"for the new owner")
            selector.script.append([(stale_key, EVENT_READ | EVENT_WRITE),
                                    (selector.keys[new_fd], EVENT_READ)])
            r.run_once(0)
            assert old_proto.data == []
            assert new_proto.data == [b"for the new owner"]
            assert errors == []
            new.abort()
            r.run_once(0)
            assert new_proto.lost == [None]
        finally:
            d.close()
            c.close()
    finally:
        a.close()
        b.close()
        r.close()
    assert selector.closed


# -- lifetime -----------------------------------------------------------------------------


# -- signals --------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_signal_handler_wakes_a_blocked_loop_and_runs_on_the_loop(reactor: Reactor) -> None:
    ran_on: List[Tuple[int, str]] = []
    reactor.add_signal_handler(signal.SIGUSR1, lambda tag: ran_on.append(
        (threading.get_ident(), tag)), "usr1")
    thread = _later_in_thread(0.05, os.kill, os.getpid(), signal.SIGUSR1)
    try:
        for _ in range(3):
            reactor.run_once(None)  # blocks until the signal arrives
            if ran_on:
                break
    finally:
        thread.join()
        reactor.remove_signal_handler(signal.SIGUSR1)
    assert ran_on == [(threading.get_ident(), "usr1")]


# -- the lean epoll selector ------------------------------------------------------


needs_epoll = pytest.mark.skipif(not hasattr(selectors, "EpollSelector"),
                                 reason="epoll is Linux-only")


@needs_epoll
def test_default_reactor_uses_the_lean_epoll_selector() -> None:
    from reactor.selector import LeanEpollSelector, default_selector

    selector = default_selector()
    try:
        assert isinstance(selector, LeanEpollSelector)
        assert isinstance(selector, selectors.EpollSelector)  # registration is the stdlib's
    finally:
        selector.close()
    with Reactor() as r:
        assert isinstance(r._selector, LeanEpollSelector)


@needs_epoll
def test_lean_select_reports_what_the_stdlib_selector_reports() -> None:
    from reactor.selector import LeanEpollSelector

    lean, plain = LeanEpollSelector(), selectors.EpollSelector()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        for s in (a, c):
            s.setblocking(False)
        for sel in (lean, plain):
            sel.register(a, EVENT_READ | EVENT_WRITE, "a")
            sel.register(c, EVENT_READ, "c")

        def ready(sel: selectors.BaseSelector) -> Dict[Any, int]:
            return {key.data: mask for key, mask in sel.select(0)}

        # a is writable only; c has nothing.
        assert ready(lean) == ready(plain) == {"a": EVENT_WRITE}
        b.sendall(b"x")
        d.sendall(b"y")
        assert ready(lean) == ready(plain) == {"a": EVENT_READ | EVENT_WRITE, "c": EVENT_READ}
        # A hang-up counts as readable and writable, as the stdlib says, so
        # whoever waits on either finds out.  The one difference: the stdlib
        # then narrows the mask to what was registered, the lean one leaves
        # that to the handler (transports check their own interest).
        d.close()
        c.recv(1)
        assert ready(plain)["c"] == EVENT_READ
        assert ready(lean)["c"] == EVENT_READ | EVENT_WRITE
        lean.unregister(a)
        plain.unregister(a)
        assert "a" not in ready(lean)
    finally:
        lean.close()
        plain.close()
        for s in (a, b, c):
            s.close()


@needs_epoll
def test_lean_select_rounds_a_timeout_up_and_never_returns_early() -> None:
    from reactor.selector import LeanEpollSelector

    with LeanEpollSelector() as selector:
        started = time.monotonic()
        assert selector.select(0.0105) == []
        assert time.monotonic() - started >= 0.0105
        assert selector.select(-1) == []  # negative means "do not wait"




def test_second_shutdown_keeps_the_first_deadline(reactor: Reactor) -> None:
    import socket as socket_module

    from reactor import Protocol

    class Lingers(Protocol):
        def shutdown_requested(self) -> bool:
            return True  # finishing up; never closes by itself

    listener = reactor.listen_tcp(Lingers, "127.0.0.1", 0)
    peer = socket_module.create_connection(("127.0.0.1", listener.port))
    try:
        while not listener.connections:
            reactor.run_once(0.05)
        started = time.monotonic()
        reactor.shutdown(0.3)
        reactor.shutdown(0.3)  # must not stop the loop at once
        reactor.run()
        assert time.monotonic() - started >= 0.3
        assert not listener.connections  # aborted at the deadline
    finally:
        peer.close()
