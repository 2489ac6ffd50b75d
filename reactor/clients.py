"""Client sides of the seed conversations, as protocols.

Each client reports through ``log`` and records its outcome: ``ok`` is
``None`` while it runs, then ``True`` or ``False`` with ``problem`` saying
what went wrong.  ``on_done(client)`` is called once, from
``connection_lost`` (or from ``fail()`` when the connection never came up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional

from .addresses import format_address
from .machines import ACK, readable
from .protocols import DatagramProtocol, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from .timers import TimerHandle
    from .transports import DatagramTransport, Transport

__all__ = ["Client", "SendClient", "AckClient", "EchoClient", "echo_pattern",
           "DatagramEchoClient"]

Log = Callable[[str], None]


class Client(Protocol):
    """Shared bookkeeping: outcome, done callback, logging."""

    def __init__(self, log: Optional[Log] = None,
                 on_done: Optional[Callable[["Client"], None]] = None) -> None:
        self.log: Log = log or (lambda line: None)
        self.on_done = on_done
        self.transport: Optional[Transport] = None
        self.ok: Optional[bool] = None
        self.problem: Optional[str] = None

    def connection_made(self, transport: "Transport") -> None:
        self.transport = transport

    def succeed(self) -> None:
        if self.ok is None:
            self.ok = True

    def fail(self, problem: str) -> None:
        """Record a failure (the first one wins) and close the connection."""
        if self.ok is None:
            self.ok, self.problem = False, problem
        if self.transport is not None:
            self.transport.abort()
        else:
            self._done()

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if exc is not None and self.ok is None:
            self.ok, self.problem = False, f"connection lost: {exc}"
        self.finished()
        self._done()

    def finished(self) -> None:
        """Called from ``connection_lost`` before the outcome is final."""

    def _done(self) -> None:
        callback, self.on_done = self.on_done, None
        if callback is not None:
            callback(self)


class SendClient(Client):
    """``reactor send``: write each message (plus a NUL if ``nul``), then
    close.  Seed 1's client (``hello there``) and seed 4's ``streamwrite``
    (with its trailing NUL)."""

    def __init__(self, messages: List[bytes], nul: bool = False, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.messages = messages
        self.nul = nul

    def connection_made(self, transport: "Transport") -> None:
        super().connection_made(transport)
        self.log(f"Client connected to: {_peer(transport)}")
        for message in self.messages:
            self.log(f"Client sends: {readable(message)}")
            transport.write(message + b"\0" if self.nul else message)
        transport.close()
        self.succeed()


class AckClient(Client):
    """``reactor ack-client``: read the 18-byte acknowledgement, then ask
    ``get_message(callback)`` for a line and send it without its newline.

    ``get_message`` may answer at once or later (e.g. after reading standard
    input in a thread); it calls ``callback(text_or_None)``.
    """

    def __init__(self, get_message: Callable[[Callable[[Optional[str]], None]], None],
                 **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.get_message = get_message
        self.received = bytearray()
        self.sent: Optional[bytes] = None

    def data_received(self, data: bytes) -> None:
        if len(self.received) >= len(ACK):
            self.fail(f"unexpected bytes after the acknowledgement: {readable(data)!r}")
            return
        self.received += data
        if len(self.received) < len(ACK):
            if not ACK.startswith(bytes(self.received)):
                self.fail(f"not an acknowledgement: {readable(bytes(self.received))!r}")
            return
        if bytes(self.received) != ACK:
            self.fail(f"not an acknowledgement: {readable(bytes(self.received))!r}")
            return
        self.log(ACK.decode())
        self.get_message(self._send)

    def _send(self, line: Optional[str]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if line is None:
            self.fail("no message to send (end of input)")
            return
        self.sent = line.rstrip("\r\n").encode()
        self.log(f"Client sends: {readable(self.sent)}")
        transport.write(self.sent)
        transport.close()
        self.succeed()

    def finished(self) -> None:
        if self.ok is None:
            self.ok, self.problem = False, "server closed before the exchange finished"


def echo_pattern(size: int, index: int) -> bytes:
    """Record ``index`` of ``size`` bytes: distinct per record, so a byte
    out of place is noticed."""
    seed = bytes((index * 7 + i) % 251 for i in range(251))
    return (seed * (size // 251 + 1))[:size]


class EchoClient(Client):
    """``reactor echo-client``: send ``count`` records of ``size`` bytes,
    one at a time, check every byte that comes back, then close."""

    def __init__(self, size: int = 250, count: int = 1, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        if size < 1 or count < 1:
            raise ValueError("size and count must be at least 1")
        self.size = size
        self.count = count
        self.index = 0
        self.expected = b""
        self.received = bytearray()

    def connection_made(self, transport: "Transport") -> None:
        super().connection_made(transport)
        self.log(f"Client connected to: {_peer(transport)}")
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        self.expected = echo_pattern(self.size, self.index)
        self.received.clear()
        self.transport.write(self.expected)

    def data_received(self, data: bytes) -> None:
        start = len(self.received)
        self.received += data
        if len(self.received) > self.size or \
                self.received != self.expected[:len(self.received)]:
            bad = next((start + i for i, b in enumerate(data)
                        if start + i >= self.size or self.expected[start + i] != b),
                       start)
            self.fail(f"record {self.index + 1}: echoed byte {bad} differs")
            return
        if len(self.received) < self.size:
            return
        self.index += 1
        self.log(f"Client received {self.size} bytes back ({self.index}/{self.count})")
        if self.index < self.count:
            self._send_next()
        else:
            assert self.transport is not None
            self.transport.close()
            self.succeed()

    def eof_received(self) -> Optional[bool]:
        if self.ok is None:
            self.fail(f"server closed after {self.index} of {self.count} records "
                      f"and {len(self.received)} bytes of the next")
        return None


def _peer(transport: "Transport") -> str:
    return format_address(transport.get_extra_info("peername"))


class DatagramEchoClient(DatagramProtocol):
    """``reactor echo-client --udp``: send ``count`` datagrams of ``size``
    bytes, one at a time, each checked when it comes back.  UDP may lose
    one: a datagram not answered within ``retry`` seconds is sent again,
    up to ``attempts`` times.  ``ok`` and ``problem`` as for ``Client``;
    ``on_done(client)`` when finished either way."""

    def __init__(self, size: int = 250, count: int = 1, retry: float = 1.0,
                 attempts: int = 5, log: Optional[Log] = None) -> None:
        if size < 1 or count < 1:
            raise ValueError("size and count must be at least 1")
        self.size, self.count, self.retry, self.attempts = size, count, retry, attempts
        self.log = log or (lambda line: None)
        self.index = 0
        self.tries = 0
        self.ok: Optional[bool] = None
        self.problem: Optional[str] = None
        self.on_done: Callable[["DatagramEchoClient"], None] = lambda client: None
        self.transport: Optional[DatagramTransport] = None
        self._timer: Optional[TimerHandle] = None

    def connection_made(self, transport: "DatagramTransport") -> None:
        self.transport = transport
        peer = format_address(transport.get_extra_info("peername"))
        self.log(f"Client sends datagrams to: {peer}")
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.tries += 1
        if self.tries > self.attempts:
            self.finish(f"no answer to datagram {self.index + 1} after {self.attempts} tries")
            return
        self.transport.sendto(echo_pattern(self.size, self.index))
        reactor = self.transport.get_extra_info("reactor")
        self._timer = reactor.call_later(self.retry, self._send)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.ok is not None:
            return
        expected = echo_pattern(self.size, self.index)
        if data != expected:
            if any(data == echo_pattern(self.size, i) for i in range(self.index)):
                return  # the answer to a retry of one already checked
            self.finish(f"datagram {self.index + 1} came back different")
            return
        if self._timer is not None:
            self._timer.cancel()
        self.index += 1
        self.tries = 0
        self.log(f"Client received {len(data)} bytes back ({self.index}/{self.count})")
        if self.index == self.count:
            self.finish(None)
        else:
            self._send()

    def error_received(self, exc: Exception) -> None:
        self.finish(f"the server is not there: {exc}")

    def finish(self, problem: Optional[str]) -> None:
        """End with ``problem`` (``None``: success), once."""
        if self.ok is not None:
            return
        self.ok, self.problem = problem is None, problem
        if self._timer is not None:
            self._timer.cancel()
        self.on_done(self)
