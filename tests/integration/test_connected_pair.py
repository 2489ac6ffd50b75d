"""Tests for reactor.testing.ConnectedPair: two protocols over real
transports on loopback, with reset injection."""

from __future__ import annotations

from typing import Any, List

import pytest

from reactor import Protocol, Reactor

pytestmark = pytest.mark.timeout(30)


# -- FakeClock ----------------------------------------------------------------------


# -- advance() ------------------------------------------------------------------------


# -- MemoryTransport ---------------------------------------------------------------------


# -- helpers for users' protocol tests (chunking, pairs, faults) --------------------


def test_connected_pair_runs_two_protocols_through_real_transports() -> None:
    from reactor.clients import EchoClient
    from reactor.conversations import EchoProtocol, Settings
    from reactor.testing import ConnectedPair
    with Reactor() as reactor:
        server = EchoProtocol(reactor, Settings(record_size=100), lambda line: None)
        client = EchoClient(size=100, count=5)
        pair = ConnectedPair(reactor, server, client)
        pair.run_until(lambda: client.ok is not None)
        assert client.ok and client.index == 5
        pair.run_until(lambda: pair.server.is_closing())  # the server saw our close
        pair.close()
        assert reactor.registered_count() == 0


def test_connected_pair_reset_injection() -> None:
    from reactor.testing import ConnectedPair

    class Lost(Protocol):
        def __init__(self) -> None:
            self.lost: List[Any] = []

        def connection_lost(self, exc: Any) -> None:
            self.lost.append(exc)

    with Reactor() as reactor:
        a, b = Lost(), Lost()
        pair = ConnectedPair(reactor, a, b)
        pair.reset(pair.client)
        pair.run_until(lambda: a.lost and b.lost)
        assert len(b.lost) == 1 and isinstance(b.lost[0], ConnectionResetError)
        assert len(a.lost) == 1  # the other side saw the connection drop
        with pytest.raises(AssertionError):
            pair.run_until(lambda: False, timeout=0.05)
        pair.close()


