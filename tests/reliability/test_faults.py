"""Reliability items 5, 6, 7, 10, 14 and 17: resets, aborts, raising
callbacks, half-close, descriptor reuse, and nothing left behind."""

from __future__ import annotations

import gc
import logging
import selectors
import socket
import struct
import weakref
from typing import Any, List, Optional

import pytest

from reactor import Protocol, Reactor, StreamTransport

pytestmark = pytest.mark.timeout(60)


class Log(Protocol):
    """Records every callback, in order, and whether it was re-entered."""

    def __init__(self) -> None:
        self.calls: List[Any] = []
        self.depth = 0
        self.reentered = False
        self.lost: List[Optional[BaseException]] = []

    def _enter(self, name: str, *args: Any) -> None:
        if self.depth:
            self.reentered = True
        self.calls.append((name, *args))

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._enter("made")

    def data_received(self, data: bytes) -> None:
        self._enter("data", data)
        self.depth += 1
        try:
            self.on_data(data)
        finally:
            self.depth -= 1

    def on_data(self, data: bytes) -> None:
        pass

    def eof_received(self) -> Optional[bool]:
        self._enter("eof")
        return self.keep_open_on_eof()

    def keep_open_on_eof(self) -> Optional[bool]:
        return None

    def connection_lost(self, exc) -> None:
        self._enter("lost", exc)
        self.lost.append(exc)


def pair(reactor: Reactor, protocol: Protocol):
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = StreamTransport(reactor, ours, protocol)
    transport.start()
    return transport, theirs


def rst_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def tcp_pair(reactor: Reactor, protocol: Protocol):
    """A real TCP connection (RST needs TCP, not a Unix socketpair)."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    conn, _ = server.accept()
    server.close()
    conn.setblocking(False)
    transport = StreamTransport(reactor, conn, protocol)
    transport.start()
    return transport, client


# -- item 5 ----------------------------------------------------------------------


def test_reset_mid_write_is_routine(reactor: Reactor, run, errors, caplog) -> None:
    protocol = Log()
    transport, peer = tcp_pair(reactor, protocol)
    transport.write(b"x" * (8 << 20))  # far more than the kernel buffers hold
    assert transport.get_write_buffer_size() > 0
    rst_close(peer)
    run(reactor, lambda: protocol.lost)
    assert len(protocol.lost) == 1
    assert isinstance(protocol.lost[0], (ConnectionResetError, BrokenPipeError))
    assert errors == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    transport.write(b"later")  # harmless no-ops
    transport.writelines([b"a", b"b"])
    transport.close()
    transport.abort()
    reactor.run_once(0)
    assert len(protocol.lost) == 1


def test_reset_with_unread_data_is_routine(reactor: Reactor, run, errors, caplog) -> None:
    protocol = Log()
    transport, peer = tcp_pair(reactor, protocol)
    transport.write(b"you will never read this")
    run(reactor, lambda: transport.get_write_buffer_size() == 0)
    peer.close()  # unread data in its receive queue: the kernel sends RST
    run(reactor, lambda: protocol.lost)
    assert len(protocol.lost) == 1
    assert protocol.lost[0] is None or isinstance(protocol.lost[0], ConnectionResetError)
    assert errors == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- item 6 ----------------------------------------------------------------------


def test_abort_inside_data_received_then_more_calls(reactor: Reactor, run) -> None:
    class AbortsAndKeepsGoing(Log):
        def on_data(self, data: bytes) -> None:
            self.transport.write(b"before abort is fine?")  # sent before the abort
            self.transport.abort()
            self.transport.write(b"AFTER")
            self.transport.abort()
            self.transport.close()
            self.transport.write_eof()
            assert self.lost == []  # not called from inside our own callback

    protocol = AbortsAndKeepsGoing()
    transport, peer = pair(reactor, protocol)
    peer.sendall(b"go")
    run(reactor, lambda: protocol.lost)
    reactor.run_once(0)
    peer.settimeout(5)
    received = b""
    while True:
        chunk = peer.recv(100)
        if not chunk:
            break
        received += chunk
    peer.close()
    assert b"AFTER" not in received
    assert protocol.lost == [None] and not protocol.reentered
    assert [c[0] for c in protocol.calls] == ["made", "data", "lost"]


# -- item 7 ----------------------------------------------------------------------


class Echo(Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


@pytest.mark.parametrize("where", ["connection_made", "data_received", "eof_received",
                                   "connection_lost", "pause_writing"])
def test_exception_in_a_protocol_callback(reactor: Reactor, run, errors, where: str) -> None:
    """Reported once with context; that connection closes; the loop and the
    other connection carry on."""

    class Faulty(Log):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            transport.set_write_buffer_limits(high=10)
            if where == "connection_made":
                raise ValueError(where)

        def on_data(self, data: bytes) -> None:
            if where == "pause_writing":
                self.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                self.transport.write(b"z" * (1 << 20))
            if where == "data_received":
                raise ValueError(where)

        def keep_open_on_eof(self) -> Optional[bool]:
            if where == "eof_received":
                raise ValueError(where)
            return None

        def connection_lost(self, exc) -> None:
            super().connection_lost(exc)
            if where == "connection_lost":
                raise ValueError(where)

        def pause_writing(self) -> None:
            if where == "pause_writing":
                raise ValueError(where)

    healthy = Echo()
    healthy_transport, healthy_peer = pair(reactor, healthy)
    faulty = Faulty()
    transport, peer = pair(reactor, faulty)
    try:
        peer.sendall(b"hello")
        peer.shutdown(socket.SHUT_WR)
        run(reactor, lambda: faulty.lost)
        reactor.run_once(0)
        assert len(faulty.lost) == 1
        assert [c["message"] for c in errors] == [f"exception in Faulty.{where}()"]
        context = errors[0]
        assert isinstance(context["exception"], ValueError)
        assert context["protocol"] is faulty and context["transport"] is transport
        assert context["callback"] == getattr(faulty, where)  # the callable itself
        if where != "connection_lost":  # an error before the end closes with it
            assert faulty.lost[0] is context["exception"]
        # The other connection still works.
        healthy_peer.sendall(b"ping")
        healthy_peer.settimeout(5)
        got = b""
        while len(got) < 4:
            reactor.run_once(0.05)
            try:
                got += healthy_peer.recv(10, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
        assert got == b"ping"
    finally:
        peer.close()
        healthy_transport.close()
        healthy_peer.close()


def test_exception_in_timer_call_soon_and_the_handler_itself(reactor: Reactor, caplog) -> None:
    ran: List[str] = []

    def boom(label: str) -> None:
        raise RuntimeError(label)

    def handler(_reactor: Reactor, context: dict) -> None:
        ran.append(context["message"])
        raise KeyError("the handler is broken too")

    reactor.set_exception_handler(handler)
    reactor.call_soon(boom, "soon")
    reactor.call_later(0, boom, "timer")
    reactor.call_soon(ran.append, "after")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.run_once(0.01)  # one step: a raising callback does not end it
    assert "after" in ran
    assert sum(m.endswith("boom()") for m in ran) == 2
    broken = [r for r in caplog.records if "the exception handler raised" in r.getMessage()]
    assert len(broken) == 2
    assert all(isinstance(r.exc_info[1], KeyError) for r in broken)  # type: ignore[index]
    assert "original_context" in broken[0].getMessage()


# -- item 10 ---------------------------------------------------------------------


def test_half_close_from_the_peer_delivers_everything_first(reactor: Reactor, run) -> None:
    class KeepOpen(Log):
        def keep_open_on_eof(self) -> Optional[bool]:
            self.transport.write(b"reply after your EOF")
            return True

    protocol = KeepOpen()
    transport, peer = pair(reactor, protocol)
    for i in range(50):
        peer.sendall(b"%03d," % i)
    peer.shutdown(socket.SHUT_WR)
    run(reactor, lambda: any(c[0] == "eof" for c in protocol.calls))
    reactor.run_once(0)
    assert not transport.is_closing()  # True from eof_received kept it open
    transport.close()
    run(reactor, lambda: protocol.lost)
    data = b"".join(c[1] for c in protocol.calls if c[0] == "data")
    assert data == b"".join(b"%03d," % i for i in range(50))
    assert [c[0] for c in protocol.calls][-2:] == ["eof", "lost"]
    peer.settimeout(5)
    assert peer.recv(100) == b"reply after your EOF"
    assert peer.recv(100) == b""
    peer.close()


def test_write_eof_waits_for_the_buffer_and_twice_is_harmless(reactor: Reactor, run) -> None:
    protocol = Log()
    transport, peer = tcp_pair(reactor, protocol)
    payload = bytes(range(256)) * 40_000  # 10 MB: certainly buffered
    transport.write(payload)
    transport.write_eof()
    transport.write_eof()
    assert transport.get_write_buffer_size() > 0
    received = bytearray()
    peer.setblocking(False)
    while True:
        reactor.run_once(0.01)
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            continue
        if not chunk:
            break
        received += chunk
    assert bytes(received) == payload  # all of it, then EOF
    peer.sendall(b"still listening?")  # our read side stays open
    run(reactor, lambda: any(c[0] == "data" for c in protocol.calls))
    transport.close()
    run(reactor, lambda: protocol.lost)
    peer.close()


# -- item 14 ---------------------------------------------------------------------


def test_reused_descriptor_never_gets_the_old_owners_events(reactor: Reactor, run, errors) -> None:
    old = Log()
    old_transport, old_peer = pair(reactor, old)
    fd = old_transport.get_extra_info("socket").fileno()
    stale_key = reactor._selector.get_key(old_transport.get_extra_info("socket"))
    old_transport.abort()
    old_peer.close()
    run(reactor, lambda: old.lost)
    new = Log()
    new_transport, new_peer = pair(reactor, new)
    assert new_transport.get_extra_info("socket").fileno() == fd  # the same number
    # A stale event for the old owner, as if it were still in this step's list.
    reactor._dispatch([(stale_key, selectors.EVENT_READ | selectors.EVENT_WRITE)])
    assert [c[0] for c in new.calls] == ["made"]
    assert [c[0] for c in old.calls] == ["made", "lost"]
    assert errors == []  # the old transport did not touch its closed socket
    new_peer.sendall(b"mine")
    run(reactor, lambda: len(new.calls) > 1)
    assert new.calls[1] == ("data", b"mine")
    new_transport.close()
    new_peer.close()
    run(reactor, lambda: new.lost)


def test_events_for_a_transport_aborted_earlier_in_the_step_are_dropped(reactor: Reactor,
                                                                        run) -> None:
    victims: List[Log] = []

    class Killer(Log):
        def on_data(self, data: bytes) -> None:
            for victim in victims:
                victim.transport.abort()

    killer, victim = Killer(), Log()
    victims.append(victim)
    victim_transport, victim_peer = pair(reactor, victim)
    killer_transport, killer_peer = pair(reactor, killer)
    victim_peer.sendall(b"data for the victim")
    killer_peer.sendall(b"kill")
    # One select() sees both; dispatch the killer's event first.
    events = reactor._selector.select(1)
    events.sort(key=lambda e: e[0].data is not killer_transport)
    reactor._dispatch(events)
    reactor._run_ready()
    assert [c[0] for c in victim.calls] == ["made", "lost"]
    killer_transport.close()
    for s in (victim_peer, killer_peer):
        s.close()
    run(reactor, lambda: killer.lost)


def test_removing_a_closed_socket_is_tolerated(reactor: Reactor, run) -> None:
    protocol = Log()
    transport, peer = pair(reactor, protocol)
    transport.get_extra_info("socket").close()  # behind the transport's back
    transport.abort()  # must not raise
    run(reactor, lambda: protocol.lost)
    peer.close()
    assert reactor.registered_count() == 0


# -- item 17 ---------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["close", "abort", "peer reset"])
def test_protocols_and_transports_are_collectable(reactor: Reactor, run, ending: str) -> None:
    def exchange() -> list:
        protocol = Log()
        transport, peer = tcp_pair(reactor, protocol)
        peer.sendall(b"x")
        run(reactor, lambda: len(protocol.calls) > 1)
        if ending == "close":
            transport.close()
        elif ending == "abort":
            transport.abort()
        if ending == "peer reset":
            rst_close(peer)
        else:
            peer.close()
        run(reactor, lambda: protocol.lost)
        return [weakref.ref(protocol), weakref.ref(transport)]

    refs = exchange()
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert reactor.registered_count() == 0
