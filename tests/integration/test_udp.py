"""UDP endpoints on loopback: echo over IPv4 and IPv6, connected endpoints
and ICMP refusal, truncation, bounded reads, flow control, errors in the
protocol, close and shutdown."""

from __future__ import annotations

import socket
from typing import Any, List, Optional, Tuple

import pytest

from reactor import DatagramProtocol, DatagramTruncated, Reactor
from reactor.tcp import has_ipv6_loopback

from ..conftest import run_until

pytestmark = pytest.mark.timeout(30)


class Echo(DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


class Recorder(DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: List[Tuple[bytes, Any]] = []
        self.errors: List[Exception] = []
        self.lost: List[Optional[BaseException]] = []
        self.events: List[str] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost.append(exc)


def ask(sock: socket.socket, data: bytes, addr: Any, reactor: Reactor) -> bytes:
    sock.setblocking(False)
    sock.sendto(data, addr)
    got: List[bytes] = []

    def answered() -> bool:
        try:
            got.append(sock.recv(70000))
        except BlockingIOError:
            pass
        return bool(got)
    run_until(reactor, answered)
    return got[0]


def test_echo_on_both_loopbacks(reactor: Reactor) -> None:
    endpoint = reactor.listen_udp(Echo, "localhost", 0)
    port = endpoint.get_extra_info("sockname")[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4:
        assert ask(v4, b"over IPv4", ("127.0.0.1", port), reactor) == b"over IPv4"
    if has_ipv6_loopback():
        assert len(endpoint.get_extra_info("sockets")) == 2
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as v6:
            assert ask(v6, b"over IPv6", ("::1", port), reactor) == b"over IPv6"
    endpoint.close()
    run_until(reactor, lambda: endpoint.get_protocol() is None)


def test_a_connected_endpoint_and_icmp_refusal(reactor: Reactor) -> None:
    server = reactor.listen_udp(Echo, "127.0.0.1", 0)
    port = server.get_extra_info("sockname")[1]
    client = Recorder()
    transport = reactor.connect_udp(lambda: client, "127.0.0.1", port)
    assert transport.get_extra_info("peername") == ("127.0.0.1", port)
    transport.sendto(b"ping")
    run_until(reactor, lambda: client.datagrams)
    assert client.datagrams == [(b"ping", ("127.0.0.1", port))]
    with pytest.raises(ValueError, match="connected to"):
        transport.sendto(b"x", ("127.0.0.1", 9))
    server.abort()  # nobody on that port now: the next datagram is refused
    run_until(reactor, lambda: server.get_protocol() is None)
    transport.sendto(b"anyone?")
    run_until(reactor, lambda: client.errors)
    assert isinstance(client.errors[0], ConnectionRefusedError)
    assert not transport.is_closing()  # the endpoint carries on
    transport.close()
    run_until(reactor, lambda: client.lost == [None])


def test_a_datagram_over_the_limit_is_reported_not_cut(reactor: Reactor) -> None:
    protocol = Recorder()
    endpoint = reactor.listen_udp(lambda: protocol, "127.0.0.1", 0, max_datagram_size=100)
    addr = endpoint.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"x" * 100, addr)
        peer.sendto(b"y" * 101, addr)
        peer.sendto(b"z" * 5000, addr)
        peer.sendto(b"after", addr)
        run_until(reactor, lambda: len(protocol.datagrams) == 2)
    assert [d for d, _ in protocol.datagrams] == [b"x" * 100, b"after"]
    assert len(protocol.errors) == 2
    assert all(isinstance(e, DatagramTruncated) and e.limit == 100 for e in protocol.errors)
    endpoint.abort()
    run_until(reactor, lambda: protocol.lost)


def test_reads_per_step_are_bounded(reactor: Reactor) -> None:
    protocol = Recorder()
    endpoint = reactor.listen_udp(lambda: protocol, "127.0.0.1", 0)
    addr = endpoint.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for i in range(200):
            peer.sendto(b"%d" % i, addr)
        reactor.run_once(1)
        assert len(protocol.datagrams) == endpoint.read_batch  # one batch per step
        run_until(reactor, lambda: len(protocol.datagrams) == 200)
    assert [d for d, _ in protocol.datagrams] == [b"%d" % i for i in range(200)]
    endpoint.abort()
    run_until(reactor, lambda: protocol.lost)


def test_a_raising_protocol_is_reported_and_the_endpoint_carries_on(
        reactor: Reactor, errors: List[Any]) -> None:
    class Picky(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if data == b"bad":
                raise ValueError("cannot parse")
            super().datagram_received(data, addr)

    protocol = Picky()
    endpoint = reactor.listen_udp(lambda: protocol, "127.0.0.1", 0)
    addr = endpoint.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"bad", addr)
        peer.sendto(b"good", addr)
        run_until(reactor, lambda: protocol.datagrams)
    assert [d for d, _ in protocol.datagrams] == [b"good"]
    (context,) = errors
    assert isinstance(context["exception"], ValueError)
    assert context["transport"] is endpoint and "datagram_received" in context["message"]
    errors.clear()
    endpoint.abort()
    run_until(reactor, lambda: protocol.lost)


class Choked(socket.socket):
    """A UDP socket whose kernel buffer is 'full' while ``choked``: what
    loopback never shows (it drops rather than blocks)."""

    choked = True

    def sendto(self, data: Any, addr: Any) -> int:  # type: ignore[override]
        if self.choked:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return super().sendto(data, addr)


def test_flow_control_when_the_kernel_will_not_take_more(reactor: Reactor) -> None:
    from reactor.udp import UDPTransport

    protocol = Recorder()
    sock = Choked(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    endpoint = UDPTransport(reactor, [sock], protocol)
    endpoint.start()
    endpoint.set_write_buffer_limits(high=20_000, low=5_000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        target = sink.getsockname()
        for i in range(30):
            endpoint.sendto(b"%04d" % i + b"d" * 996, target)
        assert protocol.events == ["pause"] and endpoint.get_write_buffer_size() == 30_000
        reactor.run_once(0)
        assert protocol.events == ["pause"]  # still choked: nothing moved
        sock.choked = False
        got: List[bytes] = []

        def drained() -> bool:
            try:
                while True:
                    got.append(sink.recv(2000))
            except BlockingIOError:
                pass
            return len(got) == 30
        run_until(reactor, drained)
    assert protocol.events == ["pause", "resume"] and endpoint.get_write_buffer_size() == 0
    assert [d[:4] for d in got] == [b"%04d" % i for i in range(30)]  # in order
    endpoint.close()
    run_until(reactor, lambda: protocol.lost)


def test_close_flushes_what_is_queued(reactor: Reactor) -> None:
    from reactor.udp import UDPTransport

    protocol = Recorder()
    sock = Choked(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    endpoint = UDPTransport(reactor, [sock], protocol)
    endpoint.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        endpoint.sendto(b"last words", sink.getsockname())
        endpoint.close()
        endpoint.sendto(b"ignored", sink.getsockname())
        reactor.run_once(0)
        assert protocol.lost == [] and endpoint.get_write_buffer_size() == 10
        sock.choked = False
        run_until(reactor, lambda: protocol.lost == [None])
        sink.settimeout(5)
        assert sink.recv(100) == b"last words"


def test_close_reaches_connection_lost_once_and_shutdown_closes(reactor: Reactor) -> None:
    first, second = Recorder(), Recorder()
    one = reactor.listen_udp(lambda: first, "127.0.0.1", 0)
    reactor.listen_udp(lambda: second, "127.0.0.1", 0)
    one.close()
    one.close()
    one.abort()
    assert one.is_closing() and one.get_extra_info("socket") is None
    reactor.call_soon(reactor.shutdown, 1.0)
    reactor.run()
    assert first.lost == [None] and second.lost == [None]
    assert reactor.registered_count() == 0


def test_sendto_needs_an_address_and_bytes(reactor: Reactor) -> None:
    protocol = Recorder()
    endpoint = reactor.listen_udp(lambda: protocol, "127.0.0.1", 0)
    with pytest.raises(ValueError, match="needs an address"):
        endpoint.sendto(b"x")
    with pytest.raises(TypeError):
        endpoint.sendto("text", ("127.0.0.1", 9))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no IPv6 socket"):
        endpoint.sendto(b"x", ("::1", 9))
    endpoint.abort()
    run_until(reactor, lambda: protocol.lost)


def test_multicast_membership(reactor: Reactor) -> None:
    protocol = Recorder()
    endpoint = reactor.listen_udp(lambda: protocol, "0.0.0.0", 0)
    port = endpoint.get_extra_info("sockname")[1]
    try:
        endpoint.join_multicast("239.255.10.10", "127.0.0.1")
    except OSError as exc:
        endpoint.abort()
        pytest.skip(f"this machine cannot join a multicast group on loopback: {exc}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                          socket.inet_aton("127.0.0.1"))
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        try:
            sender.sendto(b"to the group", ("239.255.10.10", port))
        except OSError as exc:
            endpoint.abort()
            pytest.skip(f"this machine cannot send multicast on loopback: {exc}")
        run_until(reactor, lambda: protocol.datagrams, timeout=5)
    assert protocol.datagrams[0][0] == b"to the group"
    endpoint.leave_multicast("239.255.10.10", "127.0.0.1")
    with pytest.raises(ValueError, match="no IPv6 socket"):
        endpoint.join_multicast("ff02::1")
    endpoint.abort()
    run_until(reactor, lambda: protocol.lost)


def test_abort_from_error_received_while_flushing(reactor: Reactor, errors: List[Any]) -> None:
    from reactor.udp import UDPTransport

    class Fails(Choked):
        def sendto(self, data: Any, addr: Any) -> int:  # type: ignore[override]
            if self.choked:
                raise BlockingIOError(11, "Resource temporarily unavailable")
            raise OSError(90, "Message too long")

    class Quitter(Recorder):
        def error_received(self, exc: Exception) -> None:
            super().error_received(exc)
            self.transport.abort()

    protocol = Quitter()
    sock = Fails(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    endpoint = UDPTransport(reactor, [sock], protocol)
    endpoint.start()
    endpoint.sendto(b"one", ("127.0.0.1", 9))
    endpoint.sendto(b"two", ("127.0.0.1", 9))
    sock.choked = False
    run_until(reactor, lambda: protocol.lost)
    assert len(protocol.errors) == 1 and errors == []  # no internal error


def test_a_memoryview_of_wide_items_counts_bytes(reactor: Reactor) -> None:
    import array

    from reactor.udp import UDPTransport

    protocol = Recorder()
    sock = Choked(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    endpoint = UDPTransport(reactor, [sock], protocol)
    endpoint.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        data = memoryview(array.array("i", range(100)))
        endpoint.sendto(data, sink.getsockname())
        assert endpoint.get_write_buffer_size() == 400
        sock.choked = False
        endpoint.close()
        run_until(reactor, lambda: protocol.lost == [None])
        sink.settimeout(5)
        assert sink.recv(1000) == data.tobytes()


def test_connected_ipv6_endpoint_takes_a_short_address(reactor: Reactor) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    server = reactor.listen_udp(Echo, "::1", 0)
    port = server.get_extra_info("sockname")[1]
    client = Recorder()
    transport = reactor.connect_udp(lambda: client, "::1", port)
    transport.sendto(b"v6", ("::1", port))
    run_until(reactor, lambda: client.datagrams)
    assert client.datagrams[0][0] == b"v6"
    with pytest.raises(ValueError, match="no IPv4 socket"):
        server.sendto(b"x", ("127.0.0.1", 9))  # a v6-only socket cannot reach IPv4
    transport.abort()
    server.abort()
    run_until(reactor, lambda: client.lost and server.get_protocol() is None)


def test_a_failing_connection_made_aborts_the_endpoint(reactor: Reactor,
                                                       errors: List[Any]) -> None:
    class Broken(Recorder):
        def connection_made(self, transport: Any) -> None:
            raise RuntimeError("cannot start")

    protocol = Broken()
    endpoint = reactor.listen_udp(lambda: protocol, "127.0.0.1", 0)
    run_until(reactor, lambda: protocol.lost)
    assert isinstance(protocol.lost[0], RuntimeError) and endpoint.is_closing()
    assert len(errors) == 1
    errors.clear()


def test_port_zero_on_two_addresses_retries_a_taken_port(
        reactor: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from reactor import udp

    real = udp._bind_all
    calls: List[int] = []

    def unlucky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the port picked on 127.0.0.1 is taken on ::1
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return real(*args)

    monkeypatch.setattr(udp, "_bind_all", unlucky)
    monkeypatch.setattr(udp, "listen_addresses", lambda reactor, host, port: [
        (socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET, ("127.0.0.2", port))])
    protocol = Recorder()
    endpoint = reactor.listen_udp(lambda: protocol, "localhost", 0)
    assert len(calls) == 2 and len(endpoint.get_extra_info("sockets")) == 2
    endpoint.abort()
    run_until(reactor, lambda: protocol.lost)
    calls.clear()
    with pytest.raises(OSError, match="in use"):
        reactor.listen_udp(Recorder, "localhost", 5555)  # a port asked for: no retry
    assert calls == [1]
