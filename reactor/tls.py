"""TLS over any stream transport, sans-IO: ``ssl.SSLObject`` on memory BIOs.

Theory of operation
-------------------
``TLSLayer`` is the *protocol* of the underlying stream transport (TCP, a
Unix socket, an adopted socket) and offers a ``TLSTransport`` to the user's
protocol, as asyncio's ``sslproto`` and Twisted's ``TLSMemoryBIOProtocol``
do.  Bytes that arrive go into the ``SSLObject``'s incoming BIO; whatever it
produces (handshake records, encrypted application data, alerts) is taken
from its outgoing BIO and written to the transport below.  No socket is
touched here, so the layer works over any transport that keeps the
``Transport`` contract.

The user's protocol hears ``connection_made`` only once the handshake is
done; what it writes is encrypted at once, and flow control counts what
waits below.  The handshake has a deadline (``handshake_timeout``, 60 s by
default, as asyncio).  ``close()`` sends close_notify and waits for the
peer's, at most ``shutdown_timeout`` seconds, before closing below.  An EOF
that arrives without the peer's close_notify is a truncation:
``connection_lost`` receives an ``ssl.SSLEOFError``, not ``None``.  TLS has
no half-close, so ``write_eof()`` raises.

Use ``tls_factory`` to wrap a protocol factory for ``listen_tcp``,
``connect_tcp``, ``listen_unix`` or ``connect_unix``.
"""

from __future__ import annotations

import collections
import ssl
from typing import TYPE_CHECKING, Any, Callable, Deque, Optional, Tuple, Union

from .protocols import Protocol
from .transports import Buffer, Transport

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .timers import TimerHandle

__all__ = ["TLSLayer", "TLSTransport", "tls_factory", "client_tls_factory",
           "HANDSHAKE_TIMEOUT", "SHUTDOWN_TIMEOUT"]

#: Seconds a handshake may take (asyncio's default).
HANDSHAKE_TIMEOUT = 60.0
#: Seconds ``close()`` waits for the peer's close_notify.
SHUTDOWN_TIMEOUT = 30.0

_READ_SIZE = 65536


class TLSTransport(Transport):
    """What the user's protocol sees: plaintext, the ``Transport``
    contract, and the TLS facts in ``get_extra_info``."""

    def __init__(self, layer: "TLSLayer") -> None:
        self._layer = layer

    def write(self, data: Buffer) -> None:
        self._layer.write(data)

    def write_eof(self) -> None:
        raise RuntimeError("TLS has no half-close: write_eof() is not possible over TLS "
                           "(close() ends the connection with close_notify)")

    def can_write_eof(self) -> bool:
        return False

    def close(self, reason: Optional[BaseException] = None) -> None:
        self._layer.close(reason)

    def abort(self) -> None:
        self._layer.abort()

    def is_closing(self) -> bool:
        return self._layer.closing

    def pause_reading(self) -> None:
        self._layer.set_reading(False)

    def resume_reading(self) -> None:
        self._layer.set_reading(True)

    def is_reading(self) -> bool:
        return self._layer.reading and not self._layer.closing

    def get_write_buffer_size(self) -> int:
        raw = self._layer.raw
        return raw.get_write_buffer_size() if raw is not None else 0

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        raw = self._layer.raw
        return raw.get_write_buffer_limits() if raw is not None else (0, 0)

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        if self._layer.raw is not None:
            self._layer.raw.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Besides the transport's own (``peername``, ``socket``...):
        ``ssl_object``, ``peercert``, ``cipher``, ``compression``,
        ``server_hostname`` and ``alpn_protocol``."""
        return self._layer.extra_info(name, default)

    def get_protocol(self) -> Optional[Protocol]:
        return self._layer.app

    def set_idle_timeout(self, seconds: Optional[float]) -> None:
        if self._layer.raw is not None:
            self._layer.raw.set_idle_timeout(seconds)

    def get_idle_timeout(self) -> Optional[float]:
        return self._layer.raw.get_idle_timeout() if self._layer.raw is not None else None

    def set_max_lifetime(self, seconds: Optional[float]) -> None:
        if self._layer.raw is not None:
            self._layer.raw.set_max_lifetime(seconds)

    def get_max_lifetime(self) -> Optional[float]:
        return self._layer.raw.get_max_lifetime() if self._layer.raw is not None else None

    def __repr__(self) -> str:
        return f"<TLSTransport over {self._layer.raw!r}>"


class TLSLayer(Protocol):
    """The stream transport's protocol, running TLS for ``app``; see the
    module docstring."""

    def __init__(self, app: Protocol, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: Optional[str] = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> None:
        if not server_side and context.check_hostname and not server_hostname:
            raise ValueError("a TLS client checks the host name: give server_hostname "
                             "(or a context with check_hostname off)")
        self.app: Optional[Protocol] = app
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.handshake_timeout = handshake_timeout
        self.shutdown_timeout = shutdown_timeout
        self.raw: Optional[Transport] = None
        self.transport = TLSTransport(self)
        self.closing = False
        self.reading = True
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing,
                                        server_side=server_side,
                                        server_hostname=server_hostname)
        self._handshaken = False
        self._app_started = False
        self._pending: Deque[bytes] = collections.deque()  # written before the handshake
        self._held: Deque[bytes] = collections.deque()  # decrypted while reading paused
        self._peer_closed = False  # their close_notify came
        self._reason: Optional[BaseException] = None
        self._timer: Optional[TimerHandle] = None

    # -- the transport below --------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.raw = transport
        reactor: Reactor = transport.get_extra_info("reactor")
        self._timer = reactor.call_later(self.handshake_timeout, self._handshake_timed_out)
        self._handshake()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if not self._handshaken:
            self._handshake()
        else:
            self._decrypt()

    def eof_received(self) -> Optional[bool]:
        if not self._peer_closed and self._reason is None:
            # No close_notify first: someone cut the connection.
            self._reason = ssl.SSLEOFError(
                ssl.SSL_ERROR_EOF, "the peer closed the connection without TLS close_notify "
                                   "(truncated)")
        return False

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._cancel_timer()
        app, self.app = self.app, None
        if app is not None and self._app_started:
            app.connection_lost(self._reason if self._reason is not None else exc)

    def pause_writing(self) -> None:
        if self.app is not None and self._app_started:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.app is not None and self._app_started:
            self.app.resume_writing()

    # -- the handshake ------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._flush()  # the alert, if any
            self._fail(exc)
            return
        self._handshaken = True
        self._cancel_timer()
        self._flush()
        self._app_started = True
        assert self.app is not None
        self.app.connection_made(self.transport)
        while self._pending and not self.closing:
            self._encrypt(self._pending.popleft())
        self._decrypt()  # application data that came with the last handshake bytes

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if not self._handshaken:
            self._fail(TimeoutError(f"TLS handshake not done within "
                                    f"{self.handshake_timeout:g}s"))

    def _fail(self, exc: BaseException) -> None:
        self._reason = exc
        self.closing = True
        if self.raw is not None:
            self.raw.close(exc)

    # -- reading ---------------------------------------------------------------------

    def _decrypt(self) -> None:
        while True:
            try:
                chunk = self._sslobj.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:
                self._flush()
                self._fail(exc)
                break
            if not chunk:  # the peer's close_notify (read() returns b"" for it)
                if not self._peer_closed:
                    self._peer_closed = True
                    self._peer_close_notify()
                break
            self._deliver(chunk)
        self._flush()

    def _deliver(self, chunk: bytes) -> None:
        if self.app is None or self.closing and self._reason is not None:
            return
        if not self.reading or self._held:
            self._held.append(chunk)
        else:
            self.app.data_received(chunk)

    def _peer_close_notify(self) -> None:
        if self.closing:  # we had sent ours: the shutdown is complete
            self._finish_shutdown()
            return
        if self.app is not None:
            self.app.eof_received()  # told; TLS has no half-open state to keep
        self.close()

    def set_reading(self, on: bool) -> None:
        self.reading = on
        if self.raw is None:
            return
        if on:
            while self._held and self.reading and self.app is not None:
                self.app.data_received(self._held.popleft())
            if self.reading:
                self.raw.resume_reading()
        else:
            self.raw.pause_reading()

    # -- writing ---------------------------------------------------------------------

    def write(self, data: Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self.closing or not data:
            return
        if not self._handshaken:
            self._pending.append(bytes(data))
            return
        self._encrypt(data)

    def _encrypt(self, data: Buffer) -> None:
        try:
            self._sslobj.write(data)
        except ssl.SSLError as exc:
            self._fail(exc)
            return
        self._flush()

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self.raw is not None:
            self.raw.write(data)

    # -- closing ---------------------------------------------------------------------

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Send close_notify, wait for the peer's (at most
        ``shutdown_timeout``), then close below."""
        if self.raw is None:
            return
        if self._reason is None:
            self._reason = reason
        if not self._handshaken:
            self.closing = True
            self.raw.close(reason)
            return
        if self.closing and not self._peer_closed:
            return
        self.closing = True
        try:
            self._sslobj.unwrap()
        except ssl.SSLWantReadError:  # ours is sent; theirs has not come yet
            self._flush()
            if self._peer_closed:
                self._finish_shutdown()
                return
            reactor: Reactor = self.raw.get_extra_info("reactor")
            self._timer = reactor.call_later(self.shutdown_timeout, self._finish_shutdown)
            return
        except ssl.SSLError:
            pass
        self._flush()
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        self._cancel_timer()
        if self.raw is not None:
            self.raw.close(self._reason)

    def abort(self) -> None:
        self.closing = True
        if self.raw is not None:
            self.raw.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- facts ---------------------------------------------------------------------------

    def extra_info(self, name: str, default: Any = None) -> Any:
        sslobj = self._sslobj
        if name == "ssl_object":
            return sslobj
        if name == "server_hostname":
            return self.server_hostname
        if self._handshaken:
            if name == "peercert":
                return sslobj.getpeercert()
            if name == "cipher":
                return sslobj.cipher()
            if name == "compression":
                return sslobj.compression()
            if name == "alpn_protocol":
                return sslobj.selected_alpn_protocol()
        if name in ("peercert", "cipher", "compression", "alpn_protocol"):
            return default
        return self.raw.get_extra_info(name, default) if self.raw is not None else default


def tls_factory(protocol_factory: Callable[[], Protocol], context: ssl.SSLContext, *,
                server_side: bool, server_hostname: Optional[str] = None,
                handshake_timeout: float = HANDSHAKE_TIMEOUT,
                shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> Callable[[], TLSLayer]:
    """A protocol factory for ``listen_tcp`` / ``connect_tcp`` (or their Unix
    twins) that runs TLS between the connection and ``protocol_factory``'s
    protocols."""
    def make() -> TLSLayer:
        return TLSLayer(protocol_factory(), context, server_side=server_side,
                        server_hostname=server_hostname,
                        handshake_timeout=handshake_timeout,
                        shutdown_timeout=shutdown_timeout)
    return make


def client_tls_factory(protocol_factory: Callable[[], Protocol],
                       ssl_: Union[bool, ssl.SSLContext], server_hostname: str,
                       handshake_timeout: float = HANDSHAKE_TIMEOUT,
                       shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> Callable[[], TLSLayer]:
    """``tls_factory`` for a client, as the ``ssl=`` keyword of
    ``connect_tcp`` and ``connect_unix`` takes it: ``True`` is the default
    context, which checks the certificate and ``server_hostname``."""
    context = ssl.create_default_context() if ssl_ is True else ssl_
    assert isinstance(context, ssl.SSLContext)
    if context.check_hostname and not server_hostname:
        raise ValueError("this TLS context checks the host name: give server_hostname")
    return tls_factory(protocol_factory, context, server_side=False,
                       server_hostname=server_hostname if context.check_hostname else None,
                       handshake_timeout=handshake_timeout, shutdown_timeout=shutdown_timeout)
