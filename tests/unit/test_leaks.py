"""leak_check: each kind of planted leak is caught, a clean block passes."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from reactor import Protocol, Reactor, StreamTransport
from reactor.testing import LeakError, MemoryTransport, leak_check, open_descriptors

pytestmark = pytest.mark.timeout(30)


def test_a_clean_block_passes() -> None:
    with leak_check():
        a, b = socket.socketpair()
        a.close()
        b.close()
        reactor = Reactor()
        reactor.call_later(1, lambda: None)
        reactor.close()
        MemoryTransport().connect(Protocol())  # a double holds nothing


def test_a_leaked_socket_is_named() -> None:
    with pytest.raises(LeakError) as caught:
        with leak_check():
            sock = socket.socket()
    try:
        (leak,) = caught.value.leaks
        assert leak.startswith(f"descriptor {sock.fileno()} (socket:[")
        assert "still open" in leak
    finally:
        sock.close()


def test_an_open_transport_and_its_registration() -> None:
    reactor = Reactor()
    a, b = socket.socketpair()
    try:
        with pytest.raises(LeakError) as caught:
            with leak_check(reactor):
                transport = StreamTransport(reactor, a, Protocol())
                transport.start()
        leaks = caught.value.leaks
        assert any(leak.startswith("transport <StreamTransport") for leak in leaks)
        assert f"descriptor {a.fileno()} still registered on" in "\n".join(leaks)
        transport.abort()
        reactor.run_once(0)
        with leak_check(reactor):
            pass  # what was there before the block is not a leak
    finally:
        reactor.close()
        b.close()


def test_a_reactor_left_open() -> None:
    with pytest.raises(LeakError, match="created in the block and not closed") as caught:
        with leak_check():
            reactor = Reactor()
    reactor.close()
    assert any("descriptor" in leak for leak in caught.value.leaks)  # its selector, its waker


def test_a_reader_left_on_a_given_reactor() -> None:
    reactor = Reactor()
    a, b = socket.socketpair()
    try:
        with pytest.raises(LeakError, match=f"descriptor {a.fileno()} still registered"):
            with leak_check(reactor):
                reactor.add_reader(a, lambda: None)
        reactor.remove_reader(a)
    finally:
        reactor.close()
        a.close()
        b.close()


def test_the_blocks_own_error_wins() -> None:
    with pytest.raises(KeyError):
        with leak_check():
            sock = socket.socket()
            raise KeyError("mine")
    sock.close()


def test_open_descriptors_lists_this_process() -> None:
    with socket.socket() as sock:
        found: Any = open_descriptors()
        assert found is not None and found[sock.fileno()].startswith("socket:")
    found = open_descriptors()
    assert sock.fileno() == -1 and found is not None


def test_what_the_garbage_collector_closed_is_a_leak_too() -> None:
    def forget() -> None:
        Reactor()  # never closed: its waker sockets go with the garbage

    with pytest.raises(LeakError, match="closed by the garbage collector.*unclosed") as caught:
        with leak_check():
            forget()
    assert all("garbage collector" in leak for leak in caught.value.leaks)


def test_other_warnings_pass_through() -> None:
    import warnings

    with pytest.warns(UserWarning, match="not a leak"):
        with leak_check():
            warnings.warn("not a leak", UserWarning, stacklevel=1)


def test_proxies_and_mocks_are_not_transports_or_reactors() -> None:
    import weakref
    from unittest import mock

    from reactor import Transport

    reactor = Reactor()
    proxy = weakref.proxy(reactor)
    other = Reactor()
    other.close()
    dead = weakref.proxy(other)
    del other  # the proxy's referent is gone
    try:
        with leak_check():
            fake = mock.Mock(spec=Transport)
        assert fake is not None and proxy.is_closed() is False and dead is not None
    finally:
        reactor.close()
