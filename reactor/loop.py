"""The Reactor: one thread, one selector, timers and a queue of callbacks.

Theory of operation
-------------------
``run_once`` is one step of the loop, in five named phases:

1. work out how long ``select()`` may block: zero if callbacks are ready,
   else until the nearest timer, capped by the caller's ``timeout``;
2. ``select()``: the only call in the library that blocks;
3. dispatch each ready descriptor to the ``IOHandler`` registered for it;
4. move due timers onto the ready queue, earliest first;
5. run the callbacks that are ready *now*; anything they schedule waits for
   the next step, so a callback that reschedules itself cannot starve I/O.

Phases 3 and 5 are the only places user code runs.  Code the library does
not own is called through ``call_user`` (or, on the two hottest paths, a
``try`` that hands the exception to ``report_error``), so an exception
reaches the exception handler with a context dict and the loop carries on.

Waiting is separate from deciding: ``_dispatch`` takes the list that
``select()`` returned, so tests can feed it scripted events
(``reactor.testing.ScriptedSelector``).  The key's data, not the descriptor
number, routes each event, so a descriptor closed and reused within one step
cannot receive the events of its previous owner.

The boundary
------------
The loop knows nothing of sockets' kinds, transports or protocols.  Whatever
owns a descriptor (a transport, a listener, a user's pipe) uses only these
public methods:

- ``add_handler`` / ``update_handler`` / ``remove_handler``: watch a
  descriptor for an ``IOHandler``, an object with ``handle_io(mask)``;
- ``add_reader`` / ``add_writer`` / ``remove_reader`` / ``remove_writer``:
  asyncio's callback style, built on the above, for users' own descriptors;
- ``counters``: the counts transports keep up to date for ``stats()``;
- ``add_shutdown_hook`` / ``add_close_hook``: how owners of connections take
  part in ``shutdown(grace)`` and ``close()``;
- ``call_user`` / ``report_error``: how they call code they do not own.

Statistics are always on and cost a few clock reads per step.  Tracing
(``trace=``) is off by default; see ``reactor.trace``.
``KeyboardInterrupt`` and ``SystemExit`` are not caught; they end ``run()``
as they would any program.  There is no global reactor: create as many as
you like and pass them around.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import selectors
import signal
import socket
import threading
import typing
from time import perf_counter
from typing import Any, Callable, Deque, Dict, List, NoReturn, Optional, Tuple, TypeVar, Union

from .selector import default_selector
from .timers import Clock, MonotonicClock, TimerHandle, TimerQueue
from .trace import Tracer

__all__ = ["Reactor", "Handle", "PeriodicCall", "ThreadCall", "IOHandler", "Counters",
           "InternalError", "EVENT_READ", "EVENT_WRITE"]

logger = logging.getLogger("reactor")

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

ExceptionHandler = Callable[["Reactor", Dict[str, Any]], None]
#: A descriptor number or any object with ``fileno()``.
FileObj = Any
ShutdownHook = Callable[[float, Callable[[], None]], None]
T = TypeVar("T")


def describe(obj: Any) -> str:
    """A short readable name for a callback or handler, for logs and traces:
    ``Class.method`` for a bound method, the qualified name otherwise."""
    target = getattr(obj, "__self__", None)
    name = getattr(obj, "__qualname__", None) or type(obj).__name__
    if target is not None and not isinstance(target, type):
        return f"{type(target).__name__}.{getattr(obj, '__name__', name)}"
    return name


class InternalError(RuntimeError):
    """A bug in reactor, or in a transport or handler built on its descriptor
    API: not in your protocol or callbacks.  The exception that was raised is
    the ``__cause__``."""


class IOHandler(typing.Protocol):
    """What ``Reactor.add_handler`` watches a descriptor for: transports,
    listeners and connectors are such objects.

    ``handle_io(mask)`` is called in the I/O phase of a step when the
    descriptor is ready, with ``EVENT_READ`` and/or ``EVENT_WRITE`` set in
    ``mask``.

    The one rule: **check your own interest before acting on a bit.**  The
    mask is not narrowed to the events you registered for: the lean epoll
    selector reports an error or hang-up as both readable and writable, and
    within one step the event list can still hold readiness you stopped
    wanting earlier in that same step (a callback paused reading, say, or
    the buffer drained).  Keep your current interest where ``handle_io`` can
    test it cheaply, and ignore the bits you do not want now.

    An exception escaping ``handle_io`` is reported as an ``InternalError``
    (a bug in the handler, since user code it calls goes through
    ``Reactor.call_user``), and the loop carries on.
    """

    def handle_io(self, mask: int) -> None: ...


class Counters:
    """Counts that transports and listeners keep up to date
    (``reactor.counters``); ``Reactor.stats()`` reports them.  Plain
    attributes: add to them directly."""

    __slots__ = ("bytes_in", "bytes_out", "connections_opened", "connections_closed",
                 "accept_errors", "accept_pauses", "refused_per_host", "refused_by_factory")

    def __init__(self) -> None:
        #: Bytes received and sent by every transport of the reactor.
        self.bytes_in = 0
        self.bytes_out = 0
        #: Connections (transports) opened and closed.
        self.connections_opened = 0
        self.connections_closed = 0
        #: Failed ``accept()`` calls that paused a listener.
        self.accept_errors = 0
        #: Times a listener stopped accepting at its ``max_connections``.
        self.accept_pauses = 0
        #: Connections closed at once: their host had its
        #: ``max_connections_per_host`` already, or the factory returned None.
        self.refused_per_host = 0
        self.refused_by_factory = 0


class _LoopStats:
    """What the loop itself measures as it runs."""

    __slots__ = ("iterations", "select_time", "callback_time", "slowest_callback",
                 "slowest_callback_name", "slow_callbacks")

    def __init__(self) -> None:
        self.iterations = 0
        self.select_time = 0.0
        self.callback_time = 0.0
        self.slowest_callback = 0.0
        self.slowest_callback_name = ""
        self.slow_callbacks = 0


class ThreadCall:
    """The result of ``Reactor.run_in_thread``: done callbacks run on the
    reactor thread, each as its own callback (so one that raises is reported
    and does not stop the others)."""

    __slots__ = ("_reactor", "_done", "_result", "_exception", "_callbacks", "_cancelled")

    def __init__(self, reactor: "Reactor") -> None:
        self._reactor = reactor
        self._done = False
        self._cancelled = False
        self._result: Any = None
        self._exception: Optional[BaseException] = None
        self._callbacks: List[Callable[["ThreadCall"], None]] = []

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled

    def result(self) -> Any:
        """The function's return value; raises its exception instead if it
        raised, ``RuntimeError`` if not finished."""
        if not self._done:
            raise RuntimeError("the call has not finished")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> Optional[BaseException]:
        if not self._done:
            raise RuntimeError("the call has not finished")
        return self._exception

    def add_done_callback(self, fn: Callable[["ThreadCall"], None]) -> None:
        """Call ``fn(call)`` on the reactor thread once finished."""
        if self._done:
            self._reactor.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def cancel(self) -> bool:
        """Forget the call: its callbacks will not run (the thread cannot be
        interrupted, its result is dropped).  False if already finished."""
        if self._done:
            return False
        self._done = self._cancelled = True
        self._callbacks = []
        return True

    def _finish(self, result: Any, exception: Optional[BaseException]) -> None:
        if self._done:
            return
        self._done = True
        self._result, self._exception = result, exception
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            self._reactor.call_soon(fn, self)


class PeriodicCall:
    """What ``Reactor.call_every`` returns: ``cancel()`` stops the calls.

    The calls keep to a fixed rate: the n-th is due at ``start + n *
    interval``, worked out from ``n`` (not by adding intervals up), so
    nothing drifts however many there are.  A call the loop could not make
    in time is not made twice: when one comes late by whole intervals, those
    ticks are skipped and counted in ``skipped`` (Twisted's
    ``LoopingCall.withCount`` passes the same count), and the next stays on
    the grid.  ``calls`` counts the calls made.  An exception from the
    function is reported and the calls go on.
    """

    __slots__ = ("_reactor", "_fn", "_args", "interval", "_start", "_ticks", "_timer",
                 "calls", "skipped", "cancelled")

    def __init__(self, reactor: "Reactor", interval: float, fn: Callable[..., Any],
                 args: Tuple[Any, ...]) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self._reactor = reactor
        self._fn = fn
        self._args = args
        self.interval = interval
        self._start = reactor.time()
        self._ticks = 1  # the tick now scheduled
        self.calls = 0
        self.skipped = 0
        self.cancelled = False
        self._timer = reactor.call_at(self._start + interval, self._tick)

    def cancel(self) -> None:
        """No more calls.  Harmless if called again."""
        self.cancelled = True
        self._timer.cancel()

    def _tick(self) -> None:
        now = self._reactor.time()
        due = self._start + self._ticks * self.interval
        late = int((now - due) // self.interval)  # whole intervals missed
        if late > 0:
            self.skipped += late
        self._ticks += max(late, 0) + 1
        # Scheduled before the call, so that the function may cancel it.
        self._timer = self._reactor.call_at(self._start + self._ticks * self.interval,
                                            self._tick)
        self.calls += 1
        self._reactor.call_user(self._fn, *self._args, periodic=self)

    def __repr__(self) -> str:
        name = getattr(self._fn, "__qualname__", repr(self._fn))
        state = " cancelled" if self.cancelled else ""
        return f"<PeriodicCall every {self.interval:g}s {name}{state}>"


class Handle:
    """A callback waiting in the ready queue.  ``cancel()`` stops it."""

    __slots__ = ("fn", "args", "cancelled")

    def __init__(self, fn: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"<Handle {name}{' cancelled' if self.cancelled else ''}>"


class _Waker:
    """The reading end of the self-pipe: lets other threads (and signal
    handlers) interrupt a blocking ``select()``."""

    __slots__ = ("reader", "writer")

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def wake(self) -> None:
        try:
            self.writer.send(b"\0")
        except OSError:
            # Full (a wake-up is already pending) or closed during close():
            # either way the loop needs no second nudge.
            pass

    def handle_io(self, mask: int) -> None:
        try:
            while self.reader.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class _Callbacks:
    """The handler behind ``add_reader``/``add_writer`` for one descriptor:
    at most one reader and one writer callback."""

    __slots__ = ("reactor", "fd", "reader", "writer")

    def __init__(self, reactor: "Reactor", fd: int) -> None:
        self.reactor = reactor
        self.fd = fd
        self.reader: Optional[Handle] = None
        self.writer: Optional[Handle] = None

    @property
    def events(self) -> int:
        return ((EVENT_READ if self.reader is not None else 0)
                | (EVENT_WRITE if self.writer is not None else 0))

    def handle_io(self, mask: int) -> None:
        # The writer is looked up after the reader ran: it may have removed it.
        if mask & EVENT_READ and self.reader is not None:
            self.reactor.call_user(self.reader.fn, *self.reader.args, fd=self.fd)
        if mask & EVENT_WRITE and self.writer is not None:
            self.reactor.call_user(self.writer.fn, *self.writer.args, fd=self.fd)

    def __repr__(self) -> str:
        return f"<add_reader/add_writer callbacks for fd {self.fd}>"


class Reactor:
    """A single-threaded event loop over ``selectors``.

    ``selector`` defaults to ``reactor.selector.default_selector()``;
    ``clock`` to the monotonic clock (pass ``reactor.testing.FakeClock()``
    in tests).
    """

    #: A callback running longer than this many seconds is logged as
    #: blocking the loop (and counted in ``stats()["slow_callbacks"]``).
    slow_callback_duration = 0.1

    def __init__(self, selector: Optional[selectors.BaseSelector] = None,
                 clock: Optional[Clock] = None,
                 trace: Union[None, bool, Tracer] = None) -> None:
        self._selector = selector if selector is not None else default_selector()
        self._clock = clock if clock is not None else MonotonicClock()
        # Bound once: read per timer and per step (benchmarks/timers.py).
        self._now = self._clock.now
        self._timers = TimerQueue(self._now)
        self._ready: Deque[Handle] = collections.deque()
        self._running = False
        self._stopping = False
        self._closed = False
        self._thread_id: Optional[int] = None
        self._exception_handler: Optional[ExceptionHandler] = None
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._signals: Dict[int, Any] = {}
        self._stats = _LoopStats()
        #: Counts that transports keep up to date (see ``Counters``).
        self.counters = Counters()
        #: The ``Tracer`` recording events, or ``None`` (the default).
        self.tracer: Optional[Tracer] = Tracer() if trace is True else (trace or None)
        self._old_wakeup_fd = -1
        # Insertion-ordered sets of hooks (dicts, for removal in O(1)).
        self._shutdown_hooks: Dict[ShutdownHook, None] = {}
        self._close_hooks: Dict[Callable[[], None], None] = {}
        # Descriptors a handler holds while watching nothing (update_handler
        # with events 0): not in the selector, still not anyone else's.
        self._parked: Dict[int, IOHandler] = {}
        self._shutting_down = False
        self._in_step = False
        self._waker = _Waker()
        self._selector.register(self._waker.reader, EVENT_READ, self._waker)
        #: The host-name resolver used by ``listen_tcp`` and ``connect_tcp``;
        #: same signature as ``socket.getaddrinfo``.  Tests replace it so that
        #: no name lookup ever leaves the machine.
        self.getaddrinfo = socket.getaddrinfo
        #: The clock as read when this step's ``select()`` returned: "now"
        #: for every event dispatched in the step, and no later than any of
        #: them.  A per-event path can stamp activity with it at the cost of
        #: an attribute read (transports do, per chunk) instead of a clock
        #: read.  Between steps, the time the last one began.
        self.step_time = self._now()
        self._shared: Dict[Any, Any] = {}

    # -- time and scheduling ------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock this reactor reads: ``time()`` is ``clock.now()``.  A
        hot path may keep ``clock.now`` (for the default clock, the C
        function ``time.monotonic`` itself)."""
        return self._clock

    def time(self) -> float:
        """Now, in seconds, on this reactor's (monotonic) clock."""
        return self._now()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` in the next callback phase, in FIFO order.
        ``RuntimeError`` once the reactor is closed (as for every way of
        scheduling work): nothing would ever run it."""
        if self._closed:
            raise RuntimeError("this reactor is closed")
        handle = Handle(fn, args)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Like ``call_soon``, callable from any thread or signal handler;
        wakes the loop if it is blocked in ``select()``."""
        if self._closed:
            raise RuntimeError("this reactor is closed")
        handle = Handle(fn, args)
        self._ready.append(handle)  # deque.append is atomic
        self._waker.wake()
        return handle

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``fn(*args)`` once ``time() >= when``; never earlier.  Timers
        with equal deadlines run in the order they were scheduled."""
        if self._closed:
            raise RuntimeError("this reactor is closed")
        return self._timers.push(when, fn, args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """``call_at(time() + delay, fn, *args)``."""
        if self._closed:
            raise RuntimeError("this reactor is closed")
        return self._timers.push(self._now() + delay, fn, args)

    def call_every(self, interval: float, fn: Callable[..., Any], *args: Any) -> PeriodicCall:
        """Call ``fn(*args)`` every ``interval`` seconds, the first time one
        interval from now, at a fixed rate with no drift; calls the loop
        could not make in time are skipped and counted, never made twice
        (see ``PeriodicCall``)."""
        self._check_open()
        return PeriodicCall(self, interval, fn, args)

    def next_deadline(self) -> Optional[float]:
        """The deadline of the nearest pending timer, or ``None``."""
        return self._timers.next_deadline()

    def next_timeout(self) -> Optional[float]:
        """How long a host program may wait before the next ``run_once``:
        0 when callbacks are ready, the time to the nearest timer, or
        ``None`` when only I/O can wake the reactor."""
        if self._ready:
            return 0.0
        deadline = self._timers.next_deadline()
        return None if deadline is None else max(0.0, deadline - self._now())

    def fileno(self) -> Optional[int]:
        """The selector's own descriptor (epoll, kqueue, /dev/poll): readable
        whenever a socket the reactor watches is ready, so a host loop can
        watch it and call ``run_once(0)``.  ``None`` for ``select`` and
        ``poll``, which have no descriptor: then call ``run_once(0)`` at
        least every ``next_timeout()`` seconds (e.g. once a frame).  Either
        way also honour ``next_timeout()``: timers and ``call_soon``
        callbacks do not make the descriptor readable."""
        fileno = getattr(self._selector, "fileno", None)
        return None if fileno is None else int(fileno())

    # -- watching descriptors: the boundary transports are built on ----------

    def add_handler(self, fileobj: FileObj, events: int, handler: IOHandler) -> None:
        """Watch ``fileobj`` (a descriptor, or an object with ``fileno()``)
        for ``events`` (``EVENT_READ | EVENT_WRITE``): ``handler.handle_io``
        is called when it is ready (see ``IOHandler`` for the one rule).
        From now until ``remove_handler`` the descriptor is the handler's:
        ``RuntimeError`` if another handler or ``add_reader`` has it."""
        self._check_open()
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd in self._parked or (not events and self._owner_of(fd) is not None):
            self._refuse(fd)
        if not events:
            self._parked[fd] = handler
            return
        try:
            self._selector.register(fileobj, events, handler)
        except KeyError:
            self._refuse(fd)

    def update_handler(self, fileobj: FileObj, events: int, handler: IOHandler) -> None:
        """Change what ``fileobj`` is watched for, or which handler it
        reports to.  With ``events`` 0 nothing is watched, but the
        descriptor stays the handler's (a transport paused or half-closed
        keeps its socket) until ``remove_handler``."""
        # The selector is given the number, not the object: its KeyError
        # formats repr(fileobj), and a socket's repr makes two system calls.
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        parked = self._parked
        if not events:
            if fd not in parked:
                self._selector.unregister(fd)
                parked[fd] = handler
        elif fd in parked:
            del parked[fd]
            self._selector.register(fileobj, events, handler)
        else:
            self._selector.modify(fd, events, handler)

    def remove_handler(self, fileobj: FileObj) -> bool:
        """Stop watching ``fileobj`` and give it up.  False if it was not
        watched; tolerates an object already closed."""
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if self._parked.pop(fd, None) is not None:
            return True
        try:  # a closed socket (fileno() -1) is found by identity
            self._selector.unregister(fileobj if fd < 0 else fd)
        except (KeyError, ValueError):
            return False
        return True

    def shared(self, key: Any, factory: Callable[[], T]) -> T:
        """The object kept under ``key`` for this reactor, made by
        ``factory()`` the first time it is asked for: how a layer above
        the loop keeps one thing per reactor (the stream transports'
        deadline queues, say) without a global.  Use a key you own, such as
        a class of your module."""
        try:
            return self._shared[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._shared[key] = factory()
            return value

    def registered_count(self) -> int:
        """How many descriptors the reactor watches or holds for a handler,
        the waker excluded."""
        return len(self._selector.get_map()) - 1 + len(self._parked)

    def registered(self) -> Dict[int, Any]:
        """What ``registered_count`` counts: descriptor number to its handler
        (or the ``add_reader``/``add_writer`` callbacks), the waker
        excluded.  Empty once closed.  For leak checks and debugging."""
        if self._closed:
            return {}
        owners = {key.fd: key.data for key in self._selector.get_map().values()
                  if key.data is not self._waker}
        owners.update(self._parked)
        return owners

    def _owner_of(self, fd: int) -> Any:
        """The handler (or add_reader callbacks) that has ``fd``, or None."""
        key = self._selector.get_map().get(fd)
        return key.data if key is not None else self._parked.get(fd)

    def _refuse(self, fd: int) -> NoReturn:
        raise RuntimeError(f"descriptor {fd} is already watched by {self._owner_of(fd)!r}")

    def add_reader(self, fd: FileObj, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` whenever ``fd`` is readable, until
        ``remove_reader(fd)``; replaces an earlier reader of ``fd``.  For
        your own descriptors (a pipe, a terminal, another library's socket);
        ``RuntimeError`` for one a transport or listener owns.  Remove it
        before closing the descriptor."""
        self._set_callback(fd, EVENT_READ, Handle(fn, args))

    def add_writer(self, fd: FileObj, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` whenever ``fd`` is writable; see ``add_reader``."""
        self._set_callback(fd, EVENT_WRITE, Handle(fn, args))

    def remove_reader(self, fd: FileObj) -> bool:
        """Stop watching ``fd`` for reading.  False if it had no reader."""
        return self._set_callback(fd, EVENT_READ, None)

    def remove_writer(self, fd: FileObj) -> bool:
        """Stop watching ``fd`` for writing.  False if it had no writer."""
        return self._set_callback(fd, EVENT_WRITE, None)

    def _set_callback(self, fileobj: FileObj, event: int, handle: Optional[Handle]) -> bool:
        """Set (or with ``None`` clear) the reader or writer of a descriptor;
        True if there was one before."""
        if handle is not None:
            self._check_open()
        elif self._closed:
            return False
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        owner = self._owner_of(fd)
        callbacks = owner if owner is not None else _Callbacks(self, fd)
        if not isinstance(callbacks, _Callbacks):
            raise RuntimeError(f"descriptor {fd} is watched by {callbacks!r}; add_reader and "
                               f"add_writer cannot share it")
        if event == EVENT_READ:
            previous, callbacks.reader = callbacks.reader, handle
        else:
            previous, callbacks.writer = callbacks.writer, handle
        if previous is not None:
            previous.cancel()
        # Watched afresh each time (two system calls; this is no hot path):
        # if the descriptor was closed while watched and its number reused,
        # epoll has forgotten it, and only a new registration reaches the
        # descriptor now behind that number.
        if owner is not None:
            self._selector.unregister(fd)  # tolerates a descriptor closed meanwhile
        if callbacks.events:
            try:
                self._selector.register(fd, callbacks.events, callbacks)
            except OSError:
                if handle is not None:
                    raise  # adding to a bad descriptor
                # Removing one of two callbacks of a descriptor closed
                # meanwhile: the other can never fire, so nothing is left.
        return previous is not None

    # -- running ------------------------------------------------------------

    def run(self) -> None:
        """Run steps until ``stop()`` is called."""
        if self._running:
            raise RuntimeError("this reactor is already running")
        self._check_open()
        self._running = True
        self._thread_id = threading.get_ident()
        previous_wakeup = self._claim_wakeup_fd()
        try:
            # Test after the step, not before: a stop() that came before
            # run() still gets its one step.
            while True:
                self.run_once()
                if self._stopping:
                    break
        finally:
            if previous_wakeup is not None:
                signal.set_wakeup_fd(previous_wakeup)
            self._stopping = False
            self._running = False
            self._thread_id = None

    def _claim_wakeup_fd(self) -> Optional[int]:
        """While ``run()`` runs on the main thread, every signal also writes a
        byte to the waker.  Without it, a signal that lands just before
        ``select()`` starts to wait (after Python last looked for pending
        signals) leaves a loop with nothing else to do asleep forever, and
        Ctrl-C's KeyboardInterrupt never comes.  Returns the descriptor to
        restore, or ``None`` if nothing was changed."""
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return signal.set_wakeup_fd(self._waker.writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # pragma: no cover  (e.g. an interpreter without signals)
            return None

    def stop(self) -> None:
        """Make ``run()`` return after the current step.  Callable from any
        thread.  Called before ``run()``, it makes the next ``run()`` do one
        step and return."""
        self._stopping = True
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            self._waker.wake()

    def run_once(self, timeout: Optional[float] = None) -> None:
        """One step of the loop.  Blocks at most ``timeout`` seconds (``None``:
        until something happens).  This is the only place user code is
        called from."""
        if self._in_step:
            raise RuntimeError("run_once() called from inside a callback of the same reactor")
        self._check_open()
        self._in_step = True
        try:
            self._step(timeout)
        finally:
            self._in_step = False

    def _step(self, timeout: Optional[float]) -> None:
        timeout = self._select_timeout(timeout)
        started = perf_counter()
        events = self._selector.select(timeout)
        selected = perf_counter()
        self.step_time = self._now()
        if self.tracer is not None:
            self._trace_select(timeout, events)
        self._dispatch(events, selected)
        self._enqueue_due_timers(self._now())
        if self._ready:
            self._run_ready()
        stats = self._stats
        stats.iterations += 1
        stats.select_time += selected - started
        stats.callback_time += perf_counter() - selected

    def _select_timeout(self, limit: Optional[float]) -> Optional[float]:
        if self._stopping:
            return 0
        delay = self.next_timeout()
        if delay is None:
            return limit
        return delay if limit is None else min(delay, limit)

    def _dispatch(self, events: List[Tuple[selectors.SelectorKey, int]],
                  last: Optional[float] = None) -> None:
        """Hand each ready key to its handler.  Takes the event list, not the
        selector, so tests can script it."""
        # One clock read per event times each handler: the gap since the last.
        if last is None:
            last = perf_counter()
        bar = min(self._stats.slowest_callback, self.slow_callback_duration)
        for key, mask in events:
            try:
                key.data.handle_io(mask)
            except Exception as exc:  # user code is caught further in
                self._report_bug(exc, key.data)
            now = perf_counter()
            if now - last > bar:
                self._note_slow(now - last, key.data)
                bar = min(self._stats.slowest_callback, self.slow_callback_duration)
            last = now

    def _enqueue_due_timers(self, now: float) -> None:
        tracer = self.tracer
        for timer in self._timers.pop_due(now):
            if tracer is not None:
                tracer.record("timer", None, f"fired {describe(timer.fn)}")
            self._ready.append(timer)  # type: ignore[arg-type]  # same shape

    def _run_ready(self) -> None:
        ready = self._ready
        bar = min(self._stats.slowest_callback, self.slow_callback_duration)
        last = perf_counter()
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle.cancelled:
                continue
            # call_user() written out: this runs for every callback and timer
            # (benchmarks/timers.py).
            try:
                handle.fn(*handle.args)
            except Exception as exc:
                self.report_error(exc, handle.fn)
            now = perf_counter()
            if now - last > bar:
                self._note_slow(now - last, handle.fn)
                bar = min(self._stats.slowest_callback, self.slow_callback_duration)
            last = now

    def _note_slow(self, duration: float, what: Any) -> None:
        stats = self._stats
        if duration > stats.slowest_callback:
            stats.slowest_callback = duration
            stats.slowest_callback_name = describe(what)
        if duration > self.slow_callback_duration:
            stats.slow_callbacks += 1
            logger.warning("%s blocked the loop for %.3fs (slow_callback_duration is %gs)",
                           describe(what), duration, self.slow_callback_duration)

    def _trace_select(self, timeout: Optional[float],
                      events: List[Tuple[selectors.SelectorKey, int]]) -> None:
        assert self.tracer is not None
        ready = ", ".join(f"fd {key.fd}{'r' if mask & EVENT_READ else ''}"
                          f"{'w' if mask & EVENT_WRITE else ''}" for key, mask in events)
        wait = "forever" if timeout is None else f"{timeout:.3f}s"
        self.tracer.record("select", None, f"wait {wait} -> {ready or 'nothing ready'}")

    # -- statistics ---------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """A snapshot of the loop's counters: ``iterations``, seconds spent in
        ``select_time`` and ``callback_time``, ``slowest_callback`` (seconds)
        and its name, ``slow_callbacks`` (over ``slow_callback_duration``),
        ``registered`` descriptors, ``pending_timers``, ``ready_callbacks``,
        and from ``counters``: ``open_connections``, ``bytes_in``/``bytes_out``,
        ``accept_errors``, ``accept_pauses``, ``refused_per_host`` and
        ``refused_by_factory``."""
        s, c = self._stats, self.counters
        return {
            "iterations": s.iterations,
            "select_time": s.select_time,
            "callback_time": s.callback_time,
            "slowest_callback": s.slowest_callback,
            "slowest_callback_name": s.slowest_callback_name,
            "slow_callbacks": s.slow_callbacks,
            "registered": self.registered_count() if not self._closed else 0,
            "open_connections": c.connections_opened - c.connections_closed,
            "pending_timers": len(self._timers),
            "ready_callbacks": len(self._ready),
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "accept_errors": c.accept_errors,
            "accept_pauses": c.accept_pauses,
            "refused_per_host": c.refused_per_host,
            "refused_by_factory": c.refused_by_factory,
        }

    # -- errors -------------------------------------------------------------

    def set_exception_handler(self, handler: Optional[ExceptionHandler]) -> None:
        """Route errors to ``handler(reactor, context)``; ``None`` restores
        the default, which logs them with traceback to the ``reactor``
        logger.  ``context`` has ``message`` and usually ``exception``; for
        an error in user code also ``callback`` (the callable that raised)
        and, as they apply, ``protocol``, ``transport``, ``listener``,
        ``connector``.  A bug in the library comes as an ``InternalError``
        with ``handler``."""
        self._exception_handler = handler

    def get_exception_handler(self) -> Optional[ExceptionHandler]:
        return self._exception_handler

    def default_exception_handler(self, context: Dict[str, Any]) -> None:
        """Log ``context`` at ERROR level with the exception's traceback."""
        exc = context.get("exception")
        lines = [str(context.get("message", "unhandled error"))]
        for key in sorted(context):
            if key not in ("message", "exception"):
                lines.append(f"{key}: {context[key]!r}")
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: Dict[str, Any]) -> None:
        """Pass ``context`` to the exception handler.  If the handler itself
        raises, both errors are logged by the default handler; nothing
        propagates into the loop."""
        if self.tracer is not None:
            transport = context.get("transport")
            self.tracer.record("error", self.tracer.id_of(transport),
                               f"{context.get('message')}: {context.get('exception')!r}")
        handler = self._exception_handler
        if handler is None:
            self.default_exception_handler(context)
            return
        try:
            handler(self, context)
        except Exception as exc:
            self.default_exception_handler(context)
            self.default_exception_handler({
                "message": "the exception handler raised",
                "exception": exc,
                "original_context": context,
            })

    def call_user(self, fn: Callable[..., T], *args: Any,
                  on_error: Optional[Callable[[Exception], Any]] = None,
                  **context: Any) -> Optional[T]:
        """Call ``fn(*args)``, code the caller does not own, and return what
        it returns.  If it raises, the exception goes to ``report_error``
        with ``context`` (``protocol=``, ``transport=``...), then to
        ``on_error(exc)`` if given (a transport aborts its connection
        there), and ``None`` is returned.  Never raises ``Exception``."""
        try:
            return fn(*args)
        except Exception as exc:
            self.report_error(exc, fn, **context)
            if on_error is not None:
                on_error(exc)
            return None

    def report_error(self, exc: BaseException, callback: Callable[..., Any],
                     **context: Any) -> None:
        """Report that user code ``callback`` raised ``exc``.  The one place
        the context of such an error is made: ``message`` ("exception in
        Class.method()"), ``exception``, ``callback`` and the given keys."""
        context = {"message": f"exception in {describe(callback)}()", "exception": exc,
                   "callback": callback, **context}
        self.call_exception_handler(context)

    def _report_bug(self, exc: Exception, handler: Any) -> None:
        bug = InternalError(f"{type(handler).__name__}.handle_io raised {exc!r}")
        bug.__cause__ = exc
        self.call_exception_handler({
            "message": "internal error while handling I/O (a bug in the library or in "
                       "this handler, not in user code)",
            "exception": bug,
            "handler": handler,
        })

    # -- threads and signals ------------------------------------------------

    #: Worker threads for ``run_in_thread`` (and host-name lookups).
    worker_threads = 4

    def run_in_thread(self, fn: Callable[..., Any], *args: Any) -> ThreadCall:
        """Run blocking ``fn(*args)`` in a small pool of worker threads and
        return a ``ThreadCall``; its done callbacks run on the reactor
        thread with the result or exception.  Used for host-name lookups."""
        self._check_open()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.worker_threads, thread_name_prefix="reactor-worker")
        call = ThreadCall(self)

        def finished(future: "concurrent.futures.Future[Any]") -> None:  # worker thread
            exc = future.exception()
            result = None if exc is not None else future.result()
            try:
                self.call_soon_threadsafe(call._finish, result, exc)
            except RuntimeError:
                pass  # the reactor closed meanwhile: nobody is waiting any more

        self._executor.submit(fn, *args).add_done_callback(finished)
        return call

    def add_signal_handler(self, sig: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the reactor thread when signal ``sig``
        arrives; wakes a blocked ``select()``.  Main thread only."""
        def on_signal(signum: int, frame: Any) -> None:
            try:
                self.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass  # closed between the signal and this call: nobody to tell

        previous = signal.signal(sig, on_signal)
        if not self._signals:
            # The C-level handler writes to the waker too, so a signal that
            # lands on another thread still wakes a select() on this one.
            self._old_wakeup_fd = signal.set_wakeup_fd(self._waker.writer.fileno(),
                                                       warn_on_full_buffer=False)
        self._signals.setdefault(sig, previous)

    def remove_signal_handler(self, sig: int) -> bool:
        """Restore the handler ``sig`` had before ``add_signal_handler``."""
        if sig not in self._signals:
            return False
        signal.signal(sig, self._signals.pop(sig))
        if not self._signals:
            signal.set_wakeup_fd(self._old_wakeup_fd)
        return True

    # -- shutting down ------------------------------------------------------

    def add_shutdown_hook(self, hook: ShutdownHook) -> None:
        """Take part in ``shutdown(grace)``: it calls ``hook(grace, done)``,
        and the hook calls ``done()`` once it has finished (at the latest
        ``grace`` seconds later).  Listeners add their ``shutdown`` here."""
        self._shutdown_hooks[hook] = None

    def remove_shutdown_hook(self, hook: ShutdownHook) -> bool:
        return self._shutdown_hooks.pop(hook, False) is None

    def add_close_hook(self, hook: Callable[[], None]) -> None:
        """Have ``close()`` call ``hook()`` before it releases the selector:
        for owners of descriptors to release theirs (listeners do)."""
        self._close_hooks[hook] = None

    def remove_close_hook(self, hook: Callable[[], None]) -> bool:
        return self._close_hooks.pop(hook, False) is None

    def shutdown(self, grace: float = 5.0) -> None:
        """Graceful stop: call every shutdown hook (each listener stops
        accepting and asks its connections to finish; see
        ``Listener.shutdown``), and ``stop()`` once all of them are done, at
        most ``grace`` seconds from now."""
        if self._shutting_down:
            return  # the first call's deadline stands
        self._shutting_down = True
        hooks = list(self._shutdown_hooks)
        remaining = [len(hooks)]
        if not hooks:
            self.call_soon(self.stop)
            return
        # A hook that never calls done() must not keep the loop running: stop
        # at the deadline anyway, one step later, so that what the hooks did
        # at the deadline (listeners abort their connections) is finished.
        backstop = self.call_later(grace, self.call_soon, self.stop)

        def done_once() -> Callable[..., None]:
            called = [False]

            def done(*_ignored: Any) -> None:
                if not called[0]:
                    called[0] = True
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        backstop.cancel()
                        self.stop()
            return done

        for hook in hooks:
            done = done_once()
            # A hook that raises is reported and counts as done: it must not
            # keep the loop from stopping.
            self.call_user(hook, grace, done, on_error=done)

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this reactor is closed")

    #: How many rounds of ready callbacks ``close()`` runs after its hooks.
    close_drain_rounds = 10

    def close(self) -> None:
        """Call the close hooks (listeners close, transports still open are
        aborted), run the callbacks that are ready (so their
        ``connection_lost`` calls happen), then release the worker threads,
        signal handlers, the selector and the self-pipe.  After that, every
        way of scheduling work raises ``RuntimeError``.  A worker thread
        blocked in ``run_in_thread`` work still delays the interpreter's
        exit until that work returns."""
        if self._running or self._in_step:
            raise RuntimeError("cannot close a running reactor")
        if self._closed:
            return
        for sig in list(self._signals):  # before anything can refuse a signal's call
            self.remove_signal_handler(sig)
        for hook in list(self._close_hooks):
            self.call_user(hook)
        # Cleanup queued until now (by the hooks, say) still runs; bounded,
        # so that a callback that keeps rescheduling itself cannot hang us.
        for _ in range(self.close_drain_rounds):
            if not self._ready:
                break
            self._run_ready()
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self._ready.clear()
        self._selector.close()
        self._waker.close()

    def __enter__(self) -> "Reactor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- conveniences (implemented in reactor.tcp, .unix, .udp and .streams) --

    def listen_tcp(self, protocol_factory: Callable[[], Any], host: Any = "localhost",
                   port: int = 0, **options: Any) -> Any:
        """``reactor.tcp.listen_tcp(self, ...)``: listen for TCP connections
        and return a ``Listener``."""
        from .tcp import listen_tcp  # the loop sits below TCP: import on use
        return listen_tcp(self, protocol_factory, host, port, **options)

    def connect_tcp(self, protocol_factory: Callable[[], Any], host: str, port: int,
                    **options: Any) -> Any:
        """``reactor.tcp.connect_tcp(self, ...)``: open a TCP connection
        without blocking and return its ``Connector``."""
        from .tcp import connect_tcp
        return connect_tcp(self, protocol_factory, host, port, **options)

    def listen_unix(self, protocol_factory: Callable[[], Any], path: Any = None,
                    **options: Any) -> Any:
        """``reactor.unix.listen_unix(self, ...)``: listen on a Unix socket
        and return its ``UnixListener``."""
        from .unix import listen_unix
        return listen_unix(self, protocol_factory, path, **options)

    def connect_unix(self, protocol_factory: Callable[[], Any], path: Any,
                     **options: Any) -> Any:
        """``reactor.unix.connect_unix(self, ...)``: connect to a Unix socket
        without blocking and return its ``Connector``."""
        from .unix import connect_unix
        return connect_unix(self, protocol_factory, path, **options)

    def listen_udp(self, protocol_factory: Callable[[], Any], host: Any = "localhost",
                   port: int = 0, **options: Any) -> Any:
        """``reactor.udp.listen_udp(self, ...)``: a datagram endpoint bound
        to ``host``:``port``, started."""
        from .udp import listen_udp
        return listen_udp(self, protocol_factory, host, port, **options)

    def connect_udp(self, protocol_factory: Callable[[], Any], host: str, port: int,
                    **options: Any) -> Any:
        """``reactor.udp.connect_udp(self, ...)``: a datagram endpoint
        connected to ``host``:``port``, started."""
        from .udp import connect_udp
        return connect_udp(self, protocol_factory, host, port, **options)

    def connect_read_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> Any:
        """``reactor.pipes.connect_read_pipe(self, ...)``: read a pipe
        through a transport."""
        from .pipes import connect_read_pipe
        return connect_read_pipe(self, protocol_factory, pipe)

    def connect_write_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> Any:
        """``reactor.pipes.connect_write_pipe(self, ...)``: write to a pipe
        through a transport."""
        from .pipes import connect_write_pipe
        return connect_write_pipe(self, protocol_factory, pipe)

    def spawn_process(self, protocol_factory: Callable[[], Any], args: Any,
                      **options: Any) -> Any:
        """``reactor.process.spawn_process(self, ...)``: start a child
        process and return its ``ProcessTransport``."""
        from .process import spawn_process
        return spawn_process(self, protocol_factory, args, **options)

    def connect_accepted_socket(self, protocol_factory: Callable[[], Any], sock: Any,
                                **options: Any) -> Any:
        """``reactor.streams.connect_accepted_socket(self, ...)``: wrap an
        already-connected stream socket in a started transport."""
        from .streams import connect_accepted_socket
        return connect_accepted_socket(self, protocol_factory, sock, **options)
