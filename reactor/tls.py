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
done; what it writes is encrypted at once, so flow control counts what
waits below (and what was written before the handshake ended, when
``start_tls`` upgrades a live connection).  The handshake has a deadline
(``handshake_timeout``, 60 s by default, as asyncio).  ``close()`` sends
close_notify and waits for the peer's, at most ``shutdown_timeout``
seconds, before closing below; it reads on meanwhile, and drops what
comes, as nothing is delivered after ``close()`` or ``abort()``.  An EOF
that arrives without the peer's close_notify, before we sent ours, is a
truncation: ``connection_lost`` receives an ``ssl.SSLEOFError``, not
``None`` (after ours, a peer may just close: that is a clean end).  TLS
has no half-close, so ``write_eof()`` raises.  Renegotiation is the
context's to allow; OpenSSL 3 refuses a client's by default, and that
connection ends.

A server's failed handshake (plain text at the port, a client that gives
up or resets, a bad certificate, the deadline) is routine: one line on the
``reactor.tls`` logger, at WARNING, with no traceback; the user's protocol
never existed for it.  A client's goes to whoever waits for the handshake:
``connect_tcp``'s done callbacks receive it as the ``ConnectError``'s
reason.  An exception in the user's protocol is reported with that
protocol and its ``TLSTransport`` as the context, and aborts the
connection, as on a plain transport.

Use ``tls_factory`` to wrap a protocol factory for ``listen_tcp``,
``connect_tcp``, ``listen_unix`` or ``connect_unix`` (their ``ssl=``
keyword does it for you), and ``start_tls`` for STARTTLS.
"""

from __future__ import annotations

import collections
import logging
import re
import ssl
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Optional, Tuple, Union, cast

from .addresses import format_address
from .protocols import Protocol
from .transports import Buffer, DeadlineExceeded, Transport, WriteBufferFull

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor
    from .timers import TimerHandle

__all__ = ["TLSLayer", "TLSTransport", "tls_factory", "client_tls_factory", "start_tls",
           "describe_tls_error", "HANDSHAKE_TIMEOUT", "SHUTDOWN_TIMEOUT"]

logger = logging.getLogger("reactor.tls")

#: Seconds a handshake may take (asyncio's default).
HANDSHAKE_TIMEOUT = 60.0
#: Seconds ``close()`` waits for the peer's close_notify.
SHUTDOWN_TIMEOUT = 30.0

_READ_SIZE = 65536
#: The longest TLS record's payload (2**14 bytes and what encryption adds).
_MAX_RECORD = 16384 + 2048

#: OpenSSL's reasons when what came was not TLS at all.
_NOT_TLS = {"HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "WRONG_VERSION_NUMBER",
            "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}

HandshakeCallback = Callable[[Optional[BaseException]], Any]


def describe_tls_error(exc: BaseException) -> str:
    """One line for a failed TLS connection, for a log: OpenSSL's reason
    without the C source location, and a hint when the peer spoke plain
    text."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        text = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc.args[1] if len(exc.args) > 1
                                                      else exc))
        if exc.reason in _NOT_TLS:
            text += " (the peer does not speak TLS: plain text at a TLS port?)"
        return text
    if isinstance(exc, ConnectionResetError) and exc.errno is not None:
        return "connection reset by the peer"
    return str(exc) or type(exc).__name__


class TLSTransport(Transport):
    """What the user's protocol sees: plaintext, the ``Transport``
    contract, and the TLS facts in ``get_extra_info``.  Settings that
    belong to the connection (deadlines, buffer limits) are the stream
    transport's below."""

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
        """Plaintext waiting for the handshake, plus the records waiting
        below."""
        return self._layer.buffered()

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
        self._below("set_idle_timeout", seconds)

    def get_idle_timeout(self) -> Optional[float]:
        return cast(Optional[float], self._below("get_idle_timeout"))

    def set_max_lifetime(self, seconds: Optional[float]) -> None:
        self._below("set_max_lifetime", seconds)

    def get_max_lifetime(self) -> Optional[float]:
        return cast(Optional[float], self._below("get_max_lifetime"))

    def set_write_timeout(self, seconds: Optional[float]) -> None:
        self._below("set_write_timeout", seconds)

    def get_write_timeout(self) -> Optional[float]:
        return cast(Optional[float], self._below("get_write_timeout"))

    def set_max_write_buffer(self, size: Optional[int]) -> None:
        self._below("set_max_write_buffer", size)

    def get_max_write_buffer(self) -> Optional[int]:
        return cast(Optional[int], self._below("get_max_write_buffer"))

    def _below(self, name: str, *args: Any) -> Any:
        raw = self._layer.raw
        method = getattr(raw, name, None)
        return method(*args) if method is not None else None

    def __repr__(self) -> str:
        return f"<TLSTransport over {self._layer.raw!r}>"


class TLSLayer(Protocol):
    """The stream transport's protocol, running TLS for ``app``; see the
    module docstring.  ``upgrade`` is for ``start_tls``: ``app`` already
    has a connection, so a failed handshake reaches its
    ``connection_lost``."""

    def __init__(self, app: Protocol, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: Optional[str] = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 shutdown_timeout: float = SHUTDOWN_TIMEOUT,
                 upgrade: bool = False) -> None:
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
        #: The exception a callback of the user's protocol raised, if one did.
        self.app_error: Optional[Exception] = None
        self._reactor: Optional[Reactor] = None
        self._peer = "?"
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing,
                                        server_side=server_side,
                                        server_hostname=server_hostname)
        self._handshaken = False
        self._app_started = upgrade  # whether the app has a connection to lose
        self._upgrade = upgrade
        self._waiters: List[HandshakeCallback] = []
        self._settled = False  # the handshake succeeded or failed, and waiters heard
        self._pending: Deque[bytes] = collections.deque()  # written before the handshake
        self._pending_size = 0
        self._app_paused = False
        self._held: Deque[bytes] = collections.deque()  # decrypted while reading paused
        # The record framing, followed so as to decrypt only whole records:
        self._record_left = 0  # bytes still to come of the current record (-1: not TLS)
        self._record_head = bytearray()  # a header received in part
        self._peer_closed = False  # their close_notify came
        # Their close_notify came with data the application, having paused
        # reading, has yet to read: acted on after it.
        self._close_notify_waiting = False
        self._delivering = False  # set_reading() is handing held data over
        self._raw_paused = False  # the transport below asked us to stop writing
        self._reason: Optional[BaseException] = None
        self._timer: Optional[TimerHandle] = None

    def add_handshake_callback(self, fn: HandshakeCallback) -> None:
        """Call ``fn(None)`` once the handshake is done (after the user's
        ``connection_made``), or ``fn(exc)`` if it fails.  While anyone
        waits, a failure is theirs to report, not the log's."""
        self._waiters.append(fn)

    # -- the transport below --------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.raw = transport
        self._reactor = transport.get_extra_info("reactor")
        peer = transport.get_extra_info("peername")
        self._peer = format_address(peer) if peer is not None else "?"
        assert self._reactor is not None
        self._timer = self._reactor.call_later(self.handshake_timeout,
                                               self._handshake_timed_out)
        self._handshake()

    def data_received(self, data: bytes) -> None:
        # Once per chunk received: the SSLObject is asked to decrypt only
        # when a whole record is in, so a peer that trickles its bytes
        # costs a few operations per byte here, not a failed read() each
        # (tests/reliability/test_tls_bad_input.py, 1-byte segments; the
        # TLS echo rows of benchmarks/run.py).
        self._incoming.write(data)
        left = self._record_left
        size = len(data)
        if left > size:
            self._record_left = left - size
            whole = False
        elif not left and size > 5 and (data[3] << 8 | data[4]) + 5 == size \
                and 20 <= data[0] <= 24 and not self._record_head:
            whole = True  # exactly one whole record: the common case
        else:
            whole = left < 0 or self._records_complete(data, left)
        if self._handshaken:
            if whole:
                self._decrypt()
        else:
            self._handshake()

    def _records_complete(self, data: bytes, pos: int) -> bool:
        """Follow the record framing (a 5-byte header: type, version,
        length) through ``data``, whose first ``pos`` bytes end the record
        in progress.  True if a record was completed, or if what came is
        not TLS framing at all (OpenSSL is then left to say so)."""
        complete = pos > 0
        head = self._record_head
        size = len(data)
        while True:
            chunk = data[pos:pos + 5 - len(head)]
            head += chunk
            pos += len(chunk)
            if len(head) < 5:
                self._record_left = 0
                return complete
            length = (head[3] << 8) | head[4]
            if not 20 <= head[0] <= 24 or length > _MAX_RECORD:
                self._record_left = -1  # not TLS: decrypt every time from now on
                return True
            head.clear()
            pos += length
            if pos > size:
                self._record_left = pos - size
                return complete
            complete = True

    def eof_received(self) -> Optional[bool]:
        if not self._handshaken:
            self._fail(ConnectionResetError(
                "the peer closed the connection during the TLS handshake"))
            return False
        if not self._peer_closed and not self.closing and self._reason is None:
            # No close_notify first, nor ours before it: someone cut the
            # connection.  (After ours, a peer may simply close: many do.)
            self._reason = ssl.SSLEOFError(
                ssl.SSL_ERROR_EOF, "the peer closed the connection without TLS close_notify "
                                   "(truncated)")
        return False  # (while the application's reading is paused, so is ours: no EOF)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._cancel_timer()
        if not self._handshaken:
            reason = self._reason or exc
            self._handshake_over(reason or ConnectionAbortedError(
                "the connection was closed during the TLS handshake"), quiet=reason is None)
        app, self.app = self.app, None
        if app is not None and self._app_started:
            assert self._reactor is not None
            self._reactor.call_user(app.connection_lost,
                                    self._reason if self._reason is not None else exc,
                                    protocol=app, transport=self.transport)

    def pause_writing(self) -> None:
        self._raw_paused = True
        self._tell_app_paused(True)

    def resume_writing(self) -> None:
        self._raw_paused = False
        if not self._pending_size:
            self._tell_app_paused(False)

    def _tell_app_paused(self, paused: bool) -> None:
        """``pause_writing`` / ``resume_writing`` to the application,
        each only after the other."""
        if paused != self._app_paused and self._app_started:
            self._app_paused = paused
            self._call_app("pause_writing" if paused else "resume_writing")

    def deadline_exceeded(self, exc: DeadlineExceeded) -> Optional[bool]:
        """The connection's deadline is the application's to judge; the
        handshake's own is separate.  Closing for one sends close_notify
        without waiting for the peer's."""
        if not self._handshaken:
            return False
        keep = bool(self._call_app("deadline_exceeded", exc))
        if keep or self.closing:
            return keep
        if exc.kind != "write":  # a stalled peer could not take close_notify
            self._close_now(exc)
        return False

    def shutdown_requested(self) -> Optional[bool]:
        """A graceful shutdown: the application may finish first; if not,
        close with close_notify."""
        if self._handshaken and self._call_app("shutdown_requested"):
            return True
        self.close()
        return True

    # -- calling the user's protocol ---------------------------------------------------

    def _call_app(self, name: str, *args: Any) -> Any:
        """Call the application's callback ``name``: an exception is
        reported with the application's protocol and transport as the
        context and aborts the connection."""
        app = self.app
        if app is None:
            return None
        try:
            return getattr(app, name)(*args)
        except Exception as exc:
            assert self._reactor is not None
            self._reactor.report_error(exc, getattr(app, name, type(app)), protocol=app,
                                       transport=self.transport)
            self.app_error = exc
            if self._reason is None:
                self._reason = exc
            self.abort()
            return None

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
        # What start_tls's caller wrote meanwhile goes first, in order.
        pending, self._pending = self._pending, collections.deque()
        self._pending_size = 0
        for chunk in pending:
            self._encrypt(chunk)
        self._app_started = True
        self._call_app("connection_made", self.transport)
        if self.closing and self.app_error is not None:
            self._handshake_over(self.app_error)
            return
        self._handshake_over(None)
        if not self._raw_paused:
            self._tell_app_paused(False)
        self._decrypt()  # application data that came with the last handshake bytes

    def _handshake_over(self, exc: Optional[BaseException], quiet: bool = False) -> None:
        if self._settled:
            return
        self._settled = True
        waiters, self._waiters = self._waiters, []
        if exc is not None and not waiters and not quiet and not self._upgrade \
                and exc is not self.app_error:
            logger.warning("TLS handshake with %s failed: %s", self._peer,
                           describe_tls_error(exc))
        for fn in waiters:
            assert self._reactor is not None
            self._reactor.call_user(fn, exc, protocol=self)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if not self._handshaken:
            self._fail(TimeoutError(f"TLS handshake not done within "
                                    f"{self.handshake_timeout:g}s"))

    def _fail(self, exc: BaseException) -> None:
        if self._reason is None:
            self._reason = exc
        self.closing = True
        if not self._handshaken:
            self._cancel_timer()
            self._handshake_over(exc)
        elif self.app is not None:
            logger.warning("TLS connection with %s failed: %s", self._peer,
                           describe_tls_error(exc))
        if self.raw is not None:
            self.raw.close(exc)

    # -- reading ---------------------------------------------------------------------

    def _decrypt(self) -> None:
        # Once per record received (the TLS echo rows of benchmarks/run.py):
        # it stops when nothing is left to read rather than on the failed
        # read() after the last record (an exception made and caught per
        # request), and flushes only when OpenSSL has something to send.
        incoming, sslobj = self._incoming, self._sslobj
        while True:
            try:
                chunk = sslobj.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:
                self._flush()
                self._fail(exc)
                return
            if not chunk:  # the peer's close_notify (read() returns b"" for it)
                if not self._peer_closed:
                    self._peer_closed = True
                    if self._held:  # after what the application has yet to read
                        self._close_notify_waiting = True
                    else:
                        self._peer_close_notify()
                break
            self._deliver(chunk)
            if not incoming.pending and not sslobj.pending():
                break
        if self._outgoing.pending:
            self._flush()

    def _deliver(self, chunk: bytes) -> None:
        if self.app is None or self.closing:
            return  # after close() or abort(), nothing more is delivered
        if not self.reading or self._held or self._delivering:
            self._held.append(chunk)
        else:
            self._call_app("data_received", chunk)

    def _peer_close_notify(self) -> None:
        if self.closing:  # we had sent ours: the shutdown is complete
            self._finish_shutdown()
            return
        self._call_app("eof_received")  # told; TLS has no half-open state to keep
        self.close()

    def set_reading(self, on: bool) -> None:
        self.reading = on
        if self.raw is None or self.closing:
            return
        if on:
            if self._delivering:
                return  # resumed inside data_received: the loop below goes on
            self._delivering = True
            try:
                while self._held and self.reading and not self.closing:
                    self._call_app("data_received", self._held.popleft())
            finally:
                self._delivering = False
            if self._held or not self.reading or self.closing:
                return
            if self._close_notify_waiting:
                self._close_notify_waiting = False
                self._peer_close_notify()
            if not self.raw.is_closing():
                self.raw.resume_reading()
        else:
            self.raw.pause_reading()

    # -- writing ---------------------------------------------------------------------

    def write(self, data: Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self.closing or not data:
            return
        if self._handshaken:
            self._encrypt(data)
            return
        chunk = bytes(data)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        raw = self.raw
        if raw is None:
            return
        cap = getattr(raw, "get_max_write_buffer", lambda: None)()
        if cap is not None and self.buffered() > cap:
            self._reason = WriteBufferFull.past(self.buffered(), cap)
            self.abort()
        elif self.buffered() > raw.get_write_buffer_limits()[1]:  # (low, high)
            self._tell_app_paused(True)

    def buffered(self) -> int:
        """Bytes written and not yet sent: plaintext waiting for the
        handshake, and records waiting in the transport below."""
        raw = self.raw
        return self._pending_size + (raw.get_write_buffer_size() if raw is not None else 0)

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
        if self._send_close_notify():
            # Theirs has not come yet: read on (and drop what comes) until
            # it does, or until the shutdown timeout.
            assert self._reactor is not None and self.raw is not None
            self._timer = self._reactor.call_later(self.shutdown_timeout,
                                                   self._finish_shutdown)
            self.raw.resume_reading()
            return
        self._finish_shutdown()

    def _send_close_notify(self) -> bool:
        """Send our close_notify; true if the peer's has yet to come."""
        self.closing = True
        self._held.clear()
        self._discard_readable()
        try:
            self._sslobj.unwrap()
        except ssl.SSLError as exc:
            self._flush()  # ours is sent
            return not self._peer_closed and (
                isinstance(exc, ssl.SSLWantReadError)
                # records after which theirs may still come:
                or exc.reason == "APPLICATION_DATA_AFTER_CLOSE_NOTIFY")
        self._flush()
        return False

    def _discard_readable(self) -> None:
        """Read and drop the records already in: OpenSSL's shutdown fails
        on application data it finds unread (a pipelined request after
        the one that made us close, say), while a read after our
        close_notify is fine."""
        while True:
            try:
                chunk = self._sslobj.read(_READ_SIZE)
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError:
                return  # nothing more now (or broken: unwrap() will say)
            if not chunk:
                self._peer_closed = True
                return

    def _close_now(self, reason: BaseException) -> None:
        """Send close_notify and close below without waiting for the
        peer's (a deadline passed: the peer is not to be waited for)."""
        self._reason = self._reason or reason
        self._send_close_notify()
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

    def __repr__(self) -> str:
        state = ("closing" if self.closing else "open" if self._handshaken
                 else "handshaking")
        return f"<TLSLayer {self._peer} {state} for {type(self.app).__name__}>"


def tls_factory(protocol_factory: Callable[[], Protocol], context: ssl.SSLContext, *,
                server_side: bool, server_hostname: Optional[str] = None,
                handshake_timeout: float = HANDSHAKE_TIMEOUT,
                shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> Callable[[], TLSLayer]:
    """A protocol factory for ``listen_tcp`` / ``connect_tcp`` (or their Unix
    twins) that runs TLS between the connection and ``protocol_factory``'s
    protocols.  A context made for the other side is refused here, not at
    each connection."""
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext, not {type(context).__name__}")
    wrong = ssl.PROTOCOL_TLS_CLIENT if server_side else ssl.PROTOCOL_TLS_SERVER
    if context.protocol == wrong:
        raise ValueError("a server needs a server context (ssl.PROTOCOL_TLS_SERVER)"
                         if server_side else
                         "a client needs a client context (ssl.create_default_context() "
                         "or ssl.PROTOCOL_TLS_CLIENT)")
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
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"ssl must be True or an ssl.SSLContext, not {type(ssl_).__name__}")
    if context.check_hostname and not server_hostname:
        raise ValueError("this TLS context checks the host name: give server_hostname")
    return tls_factory(protocol_factory, context, server_side=False,
                       server_hostname=server_hostname or None,
                       handshake_timeout=handshake_timeout, shutdown_timeout=shutdown_timeout)


def start_tls(transport: Transport, context: ssl.SSLContext, *, server_side: bool = False,
              server_hostname: Optional[str] = None, protocol: Optional[Protocol] = None,
              buffered: Buffer = b"",
              ssl_handshake_timeout: float = HANDSHAKE_TIMEOUT,
              ssl_shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> TLSLayer:
    """Upgrade a live stream connection to TLS (STARTTLS).

    From this call on, what arrives on ``transport`` is TLS.  ``protocol``
    (by default the transport's own) gets ``connection_made`` again, with
    a ``TLSTransport``, once the handshake is done; if it fails,
    ``connection_lost`` receives the error.  What was written on
    ``transport`` before the call is sent in plaintext first; what is
    written on the returned layer's ``transport`` meanwhile waits for the
    handshake.  ``buffered`` is what the protocol had already received
    past the STARTTLS command (the start of the peer's handshake): it is
    fed to TLS first.  ``ssl_handshake_timeout`` and ``ssl_shutdown_timeout``
    are the connection keywords'.  ``transport`` needs ``set_protocol``
    (every stream transport here has it).  Returns the ``TLSLayer``, whose
    ``transport`` may be written to at once.
    """
    app = protocol if protocol is not None else transport.get_protocol()
    if app is None or transport.is_closing():
        raise RuntimeError("start_tls() needs an open connection")
    if isinstance(transport.get_protocol(), TLSLayer) or isinstance(transport, TLSTransport):
        raise RuntimeError("start_tls(): this connection runs TLS already")
    if not isinstance(app, Protocol):
        raise TypeError(f"start_tls() needs a stream Protocol, not {app!r}")
    layer = TLSLayer(app, context, server_side=server_side, server_hostname=server_hostname,
                     handshake_timeout=ssl_handshake_timeout,
                     shutdown_timeout=ssl_shutdown_timeout, upgrade=True)
    set_protocol = getattr(transport, "set_protocol", None)
    if set_protocol is None:
        raise TypeError(f"start_tls() cannot upgrade {transport!r}: it has no set_protocol()")
    set_protocol(layer)
    transport.resume_reading()  # the handshake needs the peer's bytes, paused or not
    layer.connection_made(transport)
    if buffered:
        layer.data_received(bytes(buffered))
    return layer
