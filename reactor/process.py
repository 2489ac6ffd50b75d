"""Child processes: ``spawn_process``, ``ProcessProtocol``, ``ProcessTransport``.

Theory of operation
-------------------
``spawn_process`` starts the child with ``subprocess.Popen`` and wraps each
of its pipes in a pipe transport (``reactor.pipes``) whose protocol
forwards to the ``ProcessProtocol``: ``pipe_data_received(fd, data)`` for
the child's stdout (1) and stderr (2), ``pipe_connection_lost(fd, exc)``
when a pipe closes, and ``pause_writing``/``resume_writing`` for its stdin
(0), whose transport is ``get_pipe_transport(0)``.

The child's exit is seen without polling and without a thread per child.
Where the kernel has ``pidfd_open`` (Linux 5.3), the process's descriptor is
watched like any other: it becomes readable when the child exits, which
works whatever thread the reactor runs on.  Elsewhere a ``SIGCHLD`` handler
(through the reactor's waker, so the main thread only) checks the reactor's
children.  Either way the child is reaped at once (``waitpid``): no
zombies.  ``process_exited(returncode)`` follows; ``connection_lost(None)``
comes once the child has exited *and* every pipe has closed, so no output
is lost to the order in which they happen.

``close()`` closes the pipes and kills a child still running; so does the
reactor's ``close()``, which then waits for it, as nothing would reap it
later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Set

from .loop import EVENT_READ
from .pipes import ReadPipeTransport, WritePipeTransport
from .protocols import Protocol
from .transports import BaseTransport

if TYPE_CHECKING:  # pragma: no cover
    from .loop import Reactor

__all__ = ["ProcessProtocol", "ProcessTransport", "spawn_process", "PIPE", "DEVNULL",
           "STDOUT"]

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT


class ProcessProtocol:
    """Base class for what a child process tells its owner.  Override what
    you need.  The call order: ``connection_made``; then
    ``pipe_data_received``, ``pipe_connection_lost``, ``pause_writing``,
    ``resume_writing`` and ``process_exited`` as they happen;
    ``connection_lost`` last, once."""

    __slots__ = ()

    def connection_made(self, transport: "ProcessTransport") -> None:
        """The child is running."""

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        """The child wrote ``data`` to its stdout (``fd`` 1) or stderr (2)."""

    def pipe_connection_lost(self, fd: int, exc: Optional[BaseException]) -> None:
        """Pipe ``fd`` closed (stdin: ``exc`` is ``BrokenPipeError`` if the
        child stopped reading before we finished writing)."""

    def pause_writing(self) -> None:
        """The child's stdin buffer passed its high-water mark."""

    def resume_writing(self) -> None:
        """The child's stdin buffer drained."""

    def process_exited(self, returncode: int) -> None:
        """The child exited: ``returncode``, negative for a signal."""

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        """The child has exited and all its pipes are closed."""


class _Pipe(Protocol):
    """Forwards one pipe's events to the process protocol."""

    def __init__(self, process: "ProcessTransport", fd: int) -> None:
        self.process = process
        self.fd = fd

    def data_received(self, data: bytes) -> None:
        self.process.call("pipe_data_received", self.fd, data)

    def pause_writing(self) -> None:
        self.process.call("pause_writing")

    def resume_writing(self) -> None:
        self.process.call("resume_writing")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.process.pipe_closed(self.fd, exc)


class ProcessTransport(BaseTransport):
    """A running child; made by ``spawn_process``."""

    def __init__(self, reactor: "Reactor", popen: "subprocess.Popen[bytes]",
                 protocol: ProcessProtocol) -> None:
        self._reactor = reactor
        self._popen = popen
        self._protocol: Optional[ProcessProtocol] = protocol
        self._pipes: Dict[int, Any] = {}
        self._open_pipes: Set[int] = set()
        self._returncode: Optional[int] = None
        self._pidfd: Optional[int] = None
        self._closing = False
        self._finished = False

    def start(self) -> None:
        popen = self._popen
        reactor = self._reactor
        for fd, pipe, kind in ((0, popen.stdin, WritePipeTransport),
                               (1, popen.stdout, ReadPipeTransport),
                               (2, popen.stderr, ReadPipeTransport)):
            if pipe is not None:
                self._pipes[fd] = kind(reactor, pipe, _Pipe(self, fd))
                self._open_pipes.add(fd)
        for transport in self._pipes.values():
            transport.start()
        self._watch_exit()
        reactor.add_close_hook(self._reactor_closing)
        self.call("connection_made", self)

    # -- what users see ---------------------------------------------------------

    def get_pid(self) -> int:
        return self._popen.pid

    def get_returncode(self) -> Optional[int]:
        """``None`` while the child runs."""
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Optional[Any]:
        """The transport of the child's stdin (0), stdout (1) or stderr
        (2), or ``None`` if that one is not a pipe or has closed."""
        return self._pipes.get(fd) if fd in self._open_pipes else None

    def send_signal(self, sig: int) -> None:
        """Signal the child; does nothing once it has exited and been
        reaped (its pid may belong to another process by then)."""
        if self._returncode is None:
            self._popen.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self, reason: Optional[BaseException] = None) -> None:
        """Close the pipes and kill the child if it still runs."""
        if self._closing:
            return
        self._closing = True
        for fd in list(self._open_pipes):
            self._pipes[fd].close()
        self.kill()

    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self) -> Optional[ProcessProtocol]:  # type: ignore[override]
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"subprocess"`` (the ``Popen``) or ``"reactor"``."""
        if name == "subprocess":
            return self._popen
        return self._reactor if name == "reactor" else default

    def __repr__(self) -> str:
        state = "running" if self._returncode is None else f"returncode={self._returncode}"
        return f"<ProcessTransport pid={self._popen.pid} {state}>"

    # -- for the pipes --------------------------------------------------------------

    def call(self, name: str, *args: Any) -> None:
        protocol = self._protocol
        if protocol is not None:
            self._reactor.call_user(getattr(protocol, name), *args, protocol=protocol,
                                    transport=self)

    def pipe_closed(self, fd: int, exc: Optional[BaseException]) -> None:
        self._open_pipes.discard(fd)
        self.call("pipe_connection_lost", fd, exc)
        self._maybe_finished()

    # -- the child's exit ---------------------------------------------------------------

    def discard(self) -> None:
        """``start()`` failed: unregister what it registered, kill and reap
        the child, close its pipes."""
        for transport in self._pipes.values():
            transport.abort()
        if self._pidfd is not None:
            self._reactor.remove_handler(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._reactor.remove_close_hook(self._reactor_closing)
        _discard(self._popen)
        self._protocol = None

    def _watch_exit(self) -> None:
        try:
            self._pidfd = os.pidfd_open(self._popen.pid)
        except (AttributeError, OSError):  # pragma: no cover  (Linux before 5.3)
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("this system has no pidfd_open, and SIGCHLD can be "
                                   "handled on the main thread only: run child processes "
                                   "from a reactor on the main thread") from None
            _ChildWatcher.of(self._reactor).add(self)
            return
        self._reactor.add_handler(self._pidfd, EVENT_READ, self)

    def handle_io(self, mask: int) -> None:
        """The pidfd is readable: the child has exited."""
        self.check_exit()

    def check_exit(self) -> None:
        """Reap the child if it has exited (``waitpid`` without blocking)."""
        if self._returncode is not None or self._popen.poll() is None:
            return
        self._exited(self._popen.returncode)

    def _exited(self, returncode: int) -> None:
        self._returncode = returncode
        if self._pidfd is not None:
            self._reactor.remove_handler(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        else:  # pragma: no cover  (the SIGCHLD path)
            _ChildWatcher.of(self._reactor).discard(self)
        self.call("process_exited", returncode)
        self._maybe_finished()

    def _maybe_finished(self) -> None:
        if self._finished or self._returncode is None or self._open_pipes:
            return
        self._finished = True
        self._reactor.remove_close_hook(self._reactor_closing)
        self._reactor.call_soon(self._lost)

    def _lost(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            self._reactor.call_user(protocol.connection_lost, None, protocol=protocol,
                                    transport=self)

    def _reactor_closing(self) -> None:
        """The reactor is closing: nothing will reap the child later, so
        kill it and wait for it now."""
        self.close()
        if self._returncode is None:
            self._popen.wait()
            self._exited(self._popen.returncode)


class _ChildWatcher:  # pragma: no cover  (used only where pidfd_open is missing)
    """One ``SIGCHLD`` handler per reactor, checking its children."""

    def __init__(self, reactor: "Reactor") -> None:
        self.children: List[ProcessTransport] = []
        reactor.add_signal_handler(signal.SIGCHLD, self._check)

    @staticmethod
    def of(reactor: "Reactor") -> "_ChildWatcher":
        return reactor.shared(_ChildWatcher, lambda: _ChildWatcher(reactor))

    def add(self, child: ProcessTransport) -> None:
        self.children.append(child)
        child.check_exit()  # it may have exited before the handler was there

    def discard(self, child: ProcessTransport) -> None:
        if child in self.children:
            self.children.remove(child)

    def _check(self) -> None:
        for child in list(self.children):
            child.check_exit()


ProcessFactory = Callable[[], ProcessProtocol]


def spawn_process(reactor: "Reactor", protocol_factory: ProcessFactory, args: Sequence[str], *,
                  stdin: Any = PIPE, stdout: Any = PIPE, stderr: Any = PIPE,
                  env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                  **popen_options: Any) -> ProcessTransport:
    """Start ``args`` as a child process and return its started transport
    (asyncio's ``subprocess_exec``).  ``stdin``, ``stdout`` and ``stderr``
    are ``PIPE`` (the default: through the transport), ``DEVNULL``, a file
    or descriptor, or for stderr ``STDOUT``.  Other keywords go to
    ``subprocess.Popen``."""
    if reactor.is_closed():
        raise RuntimeError("this reactor is closed")
    popen = subprocess.Popen(list(args), stdin=stdin, stdout=stdout, stderr=stderr,
                             env=env, cwd=cwd, bufsize=0, **popen_options)
    try:
        transport = ProcessTransport(reactor, popen, protocol_factory())
    except BaseException:
        _discard(popen)
        raise
    try:
        transport.start()
    except BaseException:
        transport.discard()
        raise
    return transport


def _discard(popen: "subprocess.Popen[bytes]") -> None:
    """Kill and reap a child we cannot watch, closing its pipes."""
    popen.kill()
    popen.wait()
    for pipe in (popen.stdin, popen.stdout, popen.stderr):
        if pipe is not None:
            pipe.close()
