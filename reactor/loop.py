"""The Reactor: one thread, one selector, timers and a queue of callbacks.

Theory of operation
-------------------
``run_once`` is one step of the loop, in five named phases:

1. work out how long ``select()`` may block: zero if callbacks are ready,
   else until the nearest timer, capped by the caller's ``timeout``;
2. ``select()``: the only call in the library that blocks;
3. dispatch each ready descriptor to the object registered for it;
4. move due timers onto the ready queue, earliest first;
5. run the callbacks that are ready *now*; anything they schedule waits for
   the next step, so a callback that reschedules itself cannot starve I/O.

Phases 3 and 5 are the only places user code runs, and both go through
``_report`` when it raises: the exception reaches the exception handler with
a context dict and the loop carries on.

Statistics are always on and cost a few clock reads per step: the time spent
in ``select()`` and in callbacks, and the slowest single callback (with a
warning when one blocks the loop longer than ``slow_callback_duration``).
Tracing (``trace=``) is off by default; see ``reactor.trace``.  ``KeyboardInterrupt`` and
``SystemExit`` are not caught; they end ``run()`` as they would any program.

Waiting is separate from deciding: ``_dispatch`` takes the list that
``select()`` returned, so tests can feed it scripted events.  Each registered
object is called as ``obj._handle_io(mask)``; the key's data, not the
descriptor number, routes the event, so a descriptor closed and reused within
one step cannot receive the events of its previous owner.

There is no global reactor: create as many as you like and pass them around.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import select
import selectors
import signal
import socket
import threading
from time import perf_counter
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple, Union

from .idle import IdleQueue
from .servers import DEFAULT_BACKLOG, Connector, Hosts, Listener
from .timers import Clock, MonotonicClock, TimerHandle, TimerQueue
from .trace import Tracer

__all__ = ["Reactor", "Handle", "ThreadCall", "LoopStats"]

logger = logging.getLogger("reactor")

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

ExceptionHandler = Callable[["Reactor", Dict[str, Any]], None]


def _name(obj: Any) -> str:
    """A short readable name for a callback or handler, for logs and traces."""
    target = getattr(obj, "__self__", None)
    name = getattr(obj, "__qualname__", None) or type(obj).__name__
    if target is not None and not isinstance(target, type):
        return f"{type(target).__name__}.{getattr(obj, '__name__', name)}"
    return name


class LoopStats:
    """Counters the loop keeps as it runs; ``Reactor.stats()`` reports them."""

    __slots__ = ("iterations", "select_time", "callback_time", "slowest_callback",
                 "slowest_callback_name", "slow_callbacks", "bytes_in", "bytes_out",
                 "accept_errors", "connections_opened", "connections_closed")

    def __init__(self) -> None:
        self.iterations = 0
        self.select_time = 0.0
        self.callback_time = 0.0
        self.slowest_callback = 0.0
        self.slowest_callback_name = ""
        self.slow_callbacks = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.accept_errors = 0
        self.connections_opened = 0
        self.connections_closed = 0


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

    def _handle_io(self, mask: int) -> None:
        try:
            while self.reader.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def _selectors_mask(epoll_events: int) -> int:
    """What ``selectors`` reports for an epoll event word: an error or hang-up
    counts as both readable and writable, so whoever is waiting finds out."""
    mask = 0
    if epoll_events & ~select.EPOLLIN:
        mask |= EVENT_WRITE
    if epoll_events & ~select.EPOLLOUT:
        mask |= EVENT_READ
    return mask


if hasattr(selectors, "EpollSelector"):
    class LeanEpollSelector(selectors.EpollSelector):
        """``selectors.EpollSelector`` with a ``select()`` that does less per
        event: one list comprehension instead of a loop with a method call,
        a tuple and two branches per ready descriptor.  Registration, keys
        and every other method are the standard library's.

        It returns exactly what the parent returns except that the mask is
        not narrowed to ``key.events``: the reactor's handlers check their
        own interest anyway.  The events epoll can report for what we
        register (IN, OUT, ERR, HUP) all fit in five bits, so a 32-entry
        table translates them.  ``Reactor()`` uses it whenever
        ``DefaultSelector`` would be plain epoll.
        """

        _MASKS = tuple(_selectors_mask(events) for events in range(32))

        # The parent's own attributes (typeshed leaves them out): the epoll
        # object and the descriptor-to-key dict that register() maintains.
        _selector: "select.epoll"
        _fd_to_key: Dict[int, selectors.SelectorKey]

        def select(self, timeout: Optional[float] = None
                   ) -> List[Tuple[selectors.SelectorKey, int]]:
            if timeout is None:
                timeout = -1
            elif timeout <= 0:
                timeout = 0
            else:
                # Round up to whole milliseconds, as the parent does: epoll
                # would otherwise round down and wake before the deadline.
                timeout = math.ceil(timeout * 1e3) * 1e-3
            key_of = self._fd_to_key.get
            masks = self._MASKS
            try:
                ready = self._selector.poll(timeout, max(len(self._fd_to_key), 1))
            except InterruptedError:
                return []
            return [(key, masks[events & 31]) for fd, events in ready
                    if (key := key_of(fd)) is not None]


def default_selector() -> selectors.BaseSelector:
    """``selectors.DefaultSelector()``, or its lean variant when that is epoll."""
    selector = selectors.DefaultSelector()
    if type(selector) is getattr(selectors, "EpollSelector", None):
        selector.close()
        return LeanEpollSelector()
    return selector


class Reactor:
    """A single-threaded event loop over ``selectors``.

    ``selector`` defaults to ``selectors.DefaultSelector()`` (see
    ``LeanEpollSelector``); ``clock`` to the
    monotonic clock (pass ``reactor.testing.FakeClock()`` in tests).
    """

    #: A callback running longer than this many seconds is logged as
    #: blocking the loop (and counted in ``stats()["slow_callbacks"]``).
    slow_callback_duration = 0.1

    def __init__(self, selector: Optional[selectors.BaseSelector] = None,
                 clock: Optional[Clock] = None,
                 trace: Union[None, bool, Tracer] = None) -> None:
        self._selector = selector if selector is not None else default_selector()
        self._clock = clock if clock is not None else MonotonicClock()
        self._now = self._clock.now  # bound once: read per timer and per step
        self._timers = TimerQueue()
        self._ready: Deque[Handle] = collections.deque()
        self._running = False
        self._stopping = False
        self._closed = False
        self._thread_id: Optional[int] = None
        self._exception_handler: Optional[ExceptionHandler] = None
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._signals: Dict[int, Any] = {}
        self._stats = LoopStats()
        #: The ``Tracer`` recording events, or ``None`` (the default).
        self.tracer: Optional[Tracer] = Tracer() if trace is True else (trace or None)
        self._old_wakeup_fd = -1
        self._listeners: Set[Listener] = set()  # open ones, for shutdown()
        self._shutting_down = False
        self._in_step = False
        #: Idle queues shared by conversation protocols made without serve(),
        #: one per timeout (see reactor.conversations).
        self._idle_queues: Dict[float, IdleQueue] = {}
        self._waker = _Waker()
        self._selector.register(self._waker.reader, EVENT_READ, self._waker)
        #: The host-name resolver used by ``listen_tcp`` and ``connect_tcp``;
        #: same signature as ``socket.getaddrinfo``.  Tests replace it so that
        #: no name lookup ever leaves the machine.
        self.getaddrinfo = socket.getaddrinfo

    # -- time and scheduling ------------------------------------------------

    def time(self) -> float:
        """Now, in seconds, on this reactor's (monotonic) clock."""
        return self._now()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` in the next callback phase, in FIFO order."""
        handle = Handle(fn, args)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Like ``call_soon``, callable from any thread or signal handler;
        wakes the loop if it is blocked in ``select()``."""
        handle = Handle(fn, args)
        self._ready.append(handle)  # deque.append is atomic
        self._waker.wake()
        return handle

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``fn(*args)`` once ``time() >= when``; never earlier.  Timers
        with equal deadlines run in the order they were scheduled."""
        return self._timers.push(when, fn, args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """``call_at(time() + delay, fn, *args)``."""
        return self._timers.push(self._now() + delay, fn, args)

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
                key.data._handle_io(mask)
            except Exception as exc:  # a bug in the library, not user code
                self._report(exc, "internal error while handling I/O",
                             handler=key.data)
            now = perf_counter()
            if now - last > bar:
                self._note_slow(now - last, key.data)
                bar = min(self._stats.slowest_callback, self.slow_callback_duration)
            last = now

    def _enqueue_due_timers(self, now: float) -> None:
        tracer = self.tracer
        for timer in self._timers.pop_due(now):
            if tracer is not None:
                tracer.record("timer", None, f"fired {_name(timer.fn)}")
            self._ready.append(timer)  # type: ignore[arg-type]  # same shape

    def _run_ready(self) -> None:
        ready = self._ready
        bar = min(self._stats.slowest_callback, self.slow_callback_duration)
        last = perf_counter()
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle.cancelled:
                continue
            try:
                handle.fn(*handle.args)
            except Exception as exc:
                self._report(exc, f"exception in callback {handle.fn!r}",
                             callback=handle.fn)
            now = perf_counter()
            if now - last > bar:
                self._note_slow(now - last, handle.fn)
                bar = min(self._stats.slowest_callback, self.slow_callback_duration)
            last = now

    def _note_slow(self, duration: float, what: Any) -> None:
        stats = self._stats
        if duration > stats.slowest_callback:
            stats.slowest_callback = duration
            stats.slowest_callback_name = _name(what)
        if duration > self.slow_callback_duration:
            stats.slow_callbacks += 1
            logger.warning("%s blocked the loop for %.3fs (slow_callback_duration is %gs)",
                           _name(what), duration, self.slow_callback_duration)

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
        ``registered`` descriptors, ``open_connections``, ``pending_timers``,
        ``bytes_in``/``bytes_out`` and ``accept_errors``."""
        s = self._stats
        return {
            "iterations": s.iterations,
            "select_time": s.select_time,
            "callback_time": s.callback_time,
            "slowest_callback": s.slowest_callback,
            "slowest_callback_name": s.slowest_callback_name,
            "slow_callbacks": s.slow_callbacks,
            "registered": self.registered_count() if not self._closed else 0,
            "open_connections": s.connections_opened - s.connections_closed,
            "pending_timers": len(self._timers),
            "ready_callbacks": len(self._ready),
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "accept_errors": s.accept_errors,
        }

    # -- errors -------------------------------------------------------------

    def set_exception_handler(self, handler: Optional[ExceptionHandler]) -> None:
        """Route errors from user code to ``handler(reactor, context)``;
        ``None`` restores the default, which logs them with traceback to the
        ``reactor`` logger.  ``context`` has ``message`` and usually
        ``exception``, plus ``callback``, ``transport`` or ``protocol``."""
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

    def _report(self, exc: BaseException, message: str, **context: Any) -> None:
        context["message"] = message
        context["exception"] = exc
        self.call_exception_handler(context)

    # -- I/O registration (used by transports and listeners) ------------------

    def _register(self, fileobj: Any, mask: int, handler: Any) -> None:
        self._selector.register(fileobj, mask, handler)

    def _modify(self, fileobj: Any, mask: int, handler: Any) -> None:
        self._selector.modify(fileobj, mask, handler)

    def _unregister(self, fileobj: Any) -> None:
        """Stop watching ``fileobj``; tolerates an object already closed or
        never registered."""
        try:
            self._selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass

    def registered_count(self) -> int:
        """How many descriptors the selector watches, the waker excluded."""
        return len(self._selector.get_map()) - 1

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
            if not self._closed:
                self.call_soon_threadsafe(call._finish, result, exc)

        self._executor.submit(fn, *args).add_done_callback(finished)
        return call

    def add_signal_handler(self, sig: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the reactor thread when signal ``sig``
        arrives; wakes a blocked ``select()``.  Main thread only."""
        def on_signal(signum: int, frame: Any) -> None:
            self.call_soon_threadsafe(fn, *args)

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

    def shutdown(self, grace: float = 5.0) -> None:
        """Graceful stop of every listener this reactor has open: see
        ``Listener.shutdown``.  Once all their connections are gone (at most
        ``grace`` seconds from now), ``stop()`` is called."""
        if self._shutting_down:
            return  # the first call's deadline stands
        self._shutting_down = True
        listeners = list(self._listeners)
        remaining = [len(listeners)]

        def one_done() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self.stop()

        if not listeners:
            self.call_soon(self.stop)
        for listener in listeners:
            listener.shutdown(grace, one_done)

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this reactor is closed")

    def close(self) -> None:
        """Release the selector, the self-pipe, open listeners, the worker
        threads and any signal handlers.  Transports still open are not
        closed for you.  A worker thread blocked in ``run_in_thread`` work
        still delays the interpreter's exit until that work returns."""
        if self._running:
            raise RuntimeError("cannot close a running reactor")
        if self._closed:
            return
        self._closed = True
        for sig in list(self._signals):
            self.remove_signal_handler(sig)
        for listener in list(self._listeners):
            listener.close()
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

    # -- networking (implemented in servers.py) -------------------------------

    def listen_tcp(self, protocol_factory: Callable[[], Any], host: Hosts = "localhost",
                   port: int = 0, *, backlog: int = DEFAULT_BACKLOG, **options: Any) -> "Listener":
        """Listen for TCP connections; see ``reactor.servers.Listener``."""
        self._check_open()
        return Listener(self, protocol_factory, host, port, backlog=backlog, **options)

    def connect_tcp(self, protocol_factory: Callable[[], Any], host: str, port: int, *,
                    timeout: Optional[float] = 30.0, **options: Any) -> "Connector":
        """Open a TCP connection without blocking; see
        ``reactor.servers.Connector``."""
        self._check_open()
        return Connector(self, protocol_factory, host, port, timeout=timeout, **options)

