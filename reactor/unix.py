"""Unix domain sockets: ``listen_unix`` and ``connect_unix``.

Theory of operation
-------------------
A Unix stream socket is a stream socket like TCP's, so everything above the
socket is shared: the accepted and connected sockets become
``StreamTransport`` objects, accepted by a ``reactor.listeners.Listener``
and connected by the ``reactor.tcp.Connector`` (given the path as its one
address, it resolves nothing).  Half-close, flow control, the deadlines and
graceful shutdown are theirs.

What is particular to Unix sockets is the file.  ``bind`` creates it and
fails with ``EADDRINUSE`` if anything is there.  A server that died without
cleaning up leaves a *stale* socket file; a live server has a socket file
too.  ``listen_unix`` tells them apart by connecting to it: refused means
stale, and the file is replaced; accepted means a server is there, and
``listen_unix`` fails with "address in use" and leaves the file alone.  A
file that is not a socket is never removed.  The listener remembers which
file it made (device and inode) and removes it on close, unless another
server has replaced it meanwhile.  ``mode`` is applied between ``bind`` and
``listen``: nobody can connect before the permissions are right.

On Linux a path that begins with a NUL byte is an *abstract* name: no file
at all, gone when the socket closes.  It is shown as ``@name``.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl as ssl_module
import stat
import time
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

from .addresses import format_address
from .listeners import Listener, ProtocolFactory
from .streams import DEFAULT_MAX_WRITE_BUFFER, TransportGroup, transport_settings
from .tcp import DEFAULT_BACKLOG, Connector, adopt_listening
from .tls import HANDSHAKE_TIMEOUT, SHUTDOWN_TIMEOUT, client_tls_factory, tls_factory

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor

__all__ = ["listen_unix", "connect_unix", "UnixListener", "remove_if_ours"]

#: Seconds between the two connection attempts that find a socket file stale.
STALE_PROBE_GAP = 0.05

Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _is_abstract(path: Union[str, bytes]) -> bool:
    return path[:1] in ("\0", b"\0")


class UnixListener(Listener):
    """A ``Listener`` on a Unix socket: ``path`` is where it listens; on
    ``close()`` it removes the socket file it made (not one it adopted, and
    not one that another server has put there since)."""

    def __init__(self, reactor: "Reactor", protocol_factory: ProtocolFactory,
                 sock: socket.socket, *, made: Optional[Tuple[int, int]],
                 **options: Any) -> None:
        self.path: Union[str, bytes] = sock.getsockname()
        # Where to remove the file from, whatever the directory is by then.
        self._file = os.path.abspath(self.path) if made is not None else self.path
        self._made = made  # (st_dev, st_ino) of the file we bound, or None
        super().__init__(reactor, protocol_factory, [sock], **options)

    @property
    def port(self) -> int:
        raise AttributeError("a Unix socket listener has no port: see its path")

    def close(self) -> None:
        if self.is_closed():
            return
        super().close()
        if self._made is not None:
            made, self._made = self._made, None
            remove_if_ours(self._file, made)

    def __repr__(self) -> str:
        return (f"<UnixListener {format_address(self.path)}"
                f"{' closed' if self.is_closed() else ''}>")


def remove_if_ours(path: Union[str, bytes], made: Tuple[int, int]) -> None:
    """Remove the socket file at ``path`` if it is still the one whose
    ``(st_dev, st_ino)`` is ``made``."""
    try:
        info = os.stat(path)
    except OSError:
        return  # removed already
    if (info.st_dev, info.st_ino) == made:
        os.unlink(path)


def listen_unix(reactor: "Reactor", protocol_factory: ProtocolFactory,
                path: Optional[Path] = None, *, backlog: int = DEFAULT_BACKLOG,
                mode: Optional[int] = None, sock: Optional[socket.socket] = None,
                write_timeout: Optional[float] = None, idle_timeout: Optional[float] = None,
                max_lifetime: Optional[float] = None,
                max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER,
                max_connections: Optional[int] = None,
                ssl: Optional["ssl_module.SSLContext"] = None,
                ssl_handshake_timeout: float = HANDSHAKE_TIMEOUT,
                ssl_shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> UnixListener:
    """Listen on the Unix socket ``path`` and return the ``UnixListener``.

    A stale socket file (nobody accepts on it) is replaced; a live one
    fails with ``OSError(EADDRINUSE)`` and is left alone, as is a file that
    is not a socket.  ``mode`` (e.g. ``0o660``) sets the file's permissions
    before anyone can connect.  A path starting with NUL is a Linux abstract
    name.  ``sock`` adopts an already-bound Unix socket instead (its file is
    then not removed on close).  The deadline keywords,
    ``max_connections`` and the ``ssl`` ones are ``listen_tcp``'s.
    """
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    if ssl is not None:
        protocol_factory = tls_factory(protocol_factory, ssl, server_side=True,
                                       handshake_timeout=ssl_handshake_timeout,
                                       shutdown_timeout=ssl_shutdown_timeout)
    settings = transport_settings(write_timeout=write_timeout, idle_timeout=idle_timeout,
                                  max_lifetime=max_lifetime, max_write_buffer=max_write_buffer)
    made: Optional[Tuple[int, int]] = None
    if sock is not None:
        if path is not None or mode is not None:
            raise ValueError("listen_unix(sock=) takes no path or mode: the socket is bound")
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"listen_unix(sock=) needs a bound Unix stream socket, "
                             f"not {sock!r}")
        adopt_listening(sock, backlog)
    else:
        if path is None:
            raise TypeError("listen_unix() needs a path (or sock=)")
        sock, made = _bind(os.fspath(path), backlog, mode)
    try:
        return UnixListener(reactor, protocol_factory, sock, made=made, settings=settings,
                            max_connections=max_connections)
    except BaseException:
        if made is not None:
            remove_if_ours(os.path.abspath(sock.getsockname()), made)
        sock.close()
        raise


def _bind(path: Union[str, bytes], backlog: int,
          mode: Optional[int]) -> Tuple[socket.socket, Optional[Tuple[int, int]]]:
    abstract = _is_abstract(path)
    if abstract and mode is not None:
        raise ValueError("an abstract socket name has no file, so no mode")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(path)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or abstract:
                raise _cannot_listen(path, exc.errno, exc.strerror or str(exc)) from exc
            _remove_if_stale(path)
            sock.bind(path)
        made = None
        if not abstract:
            if mode is not None:
                os.chmod(path, mode)  # before listen(): nobody has connected yet
            info = os.stat(path)
            made = (info.st_dev, info.st_ino)
        sock.listen(backlog)
        sock.setblocking(False)
        return sock, made
    except BaseException:
        sock.close()
        raise


def _remove_if_stale(path: Union[str, bytes]) -> None:
    """Remove the socket file at ``path`` if no server listens on it;
    otherwise raise "address in use"."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return  # gone since bind() failed
    if not stat.S_ISSOCK(info.st_mode):
        raise _cannot_listen(path, errno.EADDRINUSE, "a file that is not a socket is there")
    # Refused twice, STALE_PROBE_GAP apart, by the same file: stale.  (A
    # server between its bind and its listen refuses too, but only for a
    # moment; the second look lets it finish.)
    for attempt in range(2):
        if attempt:
            time.sleep(STALE_PROBE_GAP)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                continue
            except FileNotFoundError:
                return
            except OSError:
                pass  # a full backlog, a timeout: somebody is there
        raise _cannot_listen(path, errno.EADDRINUSE,
                             "address in use: a server is listening there")
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return
    if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
        raise _cannot_listen(path, errno.EADDRINUSE, "address in use: another server took it")
    os.unlink(path)  # stale: its server is gone


def _cannot_listen(path: Union[str, bytes], code: Optional[int], why: Optional[str]) -> OSError:
    return OSError(code, f"cannot listen on {format_address(path)}: {why}")


def connect_unix(reactor: "Reactor", protocol_factory: ProtocolFactory, path: Path, *,
                 timeout: Optional[float] = 30.0, write_timeout: Optional[float] = None,
                 idle_timeout: Optional[float] = None, max_lifetime: Optional[float] = None,
                 max_write_buffer: Optional[int] = DEFAULT_MAX_WRITE_BUFFER,
                 group: Optional[TransportGroup] = None,
                 ssl: Union[None, bool, "ssl_module.SSLContext"] = None,
                 server_hostname: Optional[str] = None,
                 ssl_handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 ssl_shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> Connector:
    """Connect to the Unix socket ``path`` without blocking and return the
    ``Connector`` (as ``connect_tcp``'s: done callbacks, ``transport``,
    ``error``; a full backlog is retried until ``timeout``).  The deadline
    keywords are ``listen_tcp``'s; the ``ssl`` ones ``connect_tcp``'s (a
    context that checks host names needs ``server_hostname``)."""
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    if ssl:
        protocol_factory = client_tls_factory(protocol_factory, ssl, server_hostname or "",
                                      ssl_handshake_timeout, ssl_shutdown_timeout)
    address = os.fspath(path)
    settings = transport_settings(write_timeout=write_timeout, idle_timeout=idle_timeout,
                                  max_lifetime=max_lifetime, max_write_buffer=max_write_buffer)
    return Connector(reactor, protocol_factory, format_address(address), None, timeout=timeout,
                     settings=settings, group=group, addresses=[(socket.AF_UNIX, address)])
