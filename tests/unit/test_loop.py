"""Tests for reactor.loop without network I/O: the ready queue, timers
through the loop, run / stop, error handling, and dispatch with a scripted
selector."""

from __future__ import annotations

import logging
import selectors
import signal
import time
from typing import Any, Dict, List, Tuple

import pytest

from reactor import InternalError, Reactor
from reactor.testing import FakeClock, ScriptedSelector, advance

pytestmark = pytest.mark.timeout(30)

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


# -- the ready queue -------------------------------------------------------------


def test_call_soon_runs_in_fifo_order(reactor: Reactor) -> None:
    out: List[int] = []
    for i in range(10):
        reactor.call_soon(out.append, i)
    reactor.run_once(0)
    assert out == list(range(10))


def test_call_soon_passes_args_and_returns_cancellable_handle(reactor: Reactor) -> None:
    out: List[Tuple[int, str]] = []
    reactor.call_soon(lambda a, b: out.append((a, b)), 1, "x")
    h = reactor.call_soon(out.append, "never")
    h.cancel()
    assert "cancelled" in repr(h)
    reactor.run_once(0)
    assert out == [(1, "x")]


def test_callbacks_scheduled_by_a_callback_run_in_the_next_step(reactor: Reactor) -> None:
    out: List[str] = []

    def first() -> None:
        out.append("first")
        reactor.call_soon(out.append, "child")

    reactor.call_soon(first)
    reactor.call_soon(out.append, "second")
    reactor.run_once(0)
    assert out == ["first", "second"]
    reactor.run_once(0)
    assert out == ["first", "second", "child"]


# -- timers through the loop ---------------------------------------------------------


def test_call_later_fires_at_its_deadline_via_advance(clock: FakeClock,
                                                      fake_reactor: Reactor) -> None:
    seen: List[Tuple[str, float]] = []
    start = clock.now()
    for name, delay in (("c", 4.0), ("a", 1.0), ("b1", 2.5), ("b2", 2.5)):
        fake_reactor.call_later(delay, lambda n=name: seen.append((n, fake_reactor.time())))
    advance(fake_reactor, 0.5)
    assert seen == []
    advance(fake_reactor, 4.5)
    assert seen == [("a", start + 1.0), ("b1", start + 2.5), ("b2", start + 2.5),
                    ("c", start + 4.0)]
    assert fake_reactor.time() == start + 5.0


def test_call_at_uses_absolute_deadline(clock: FakeClock, fake_reactor: Reactor) -> None:
    seen: List[float] = []
    fake_reactor.call_at(clock.now() + 3.0, lambda: seen.append(fake_reactor.time()))
    advance(fake_reactor, 2.0)
    assert seen == []
    advance(fake_reactor, 2.0)
    assert seen == [clock.now() - 1.0]


def test_timer_scheduled_by_a_timer_fires_at_its_own_deadline(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    seen: List[float] = []
    start = clock.now()

    def first() -> None:
        seen.append(fake_reactor.time())
        fake_reactor.call_later(0.25, lambda: seen.append(fake_reactor.time()))

    fake_reactor.call_later(1.0, first)
    advance(fake_reactor, 10)
    assert seen == [start + 1.0, start + 1.25]


def test_due_timers_and_ready_callbacks_share_a_step(clock: FakeClock,
                                                     fake_reactor: Reactor) -> None:
    out: List[str] = []
    fake_reactor.call_later(1, out.append, "timer")
    fake_reactor.call_soon(out.append, "soon")
    clock.advance(1)
    fake_reactor.run_once(0)
    assert out == ["soon", "timer"]


def test_select_timeout_waits_for_nearest_timer(reactor: Reactor) -> None:
    fired: List[float] = []
    start = reactor.time()
    reactor.call_later(0.05, lambda: fired.append(reactor.time()))
    reactor.run_once(None)  # must not block forever: the timer bounds select
    if not fired:  # select may wake a hair early on coarse clocks; never fire early
        reactor.run_once(None)
    assert fired and fired[0] >= start + 0.05


# -- run / stop -----------------------------------------------------------------------


def test_run_until_stop(reactor: Reactor) -> None:
    out: List[int] = []

    def tick(n: int) -> None:
        out.append(n)
        if n == 3:
            reactor.stop()
        else:
            reactor.call_soon(tick, n + 1)

    reactor.call_soon(tick, 0)
    reactor.run()
    assert out == [0, 1, 2, 3]
    assert not reactor.is_running()
    # A stopped reactor can run again.
    reactor.call_soon(reactor.stop)
    reactor.run()
    assert not reactor.is_running()


def test_is_running_inside_run(reactor: Reactor) -> None:
    seen: List[bool] = []
    reactor.call_soon(lambda: seen.append(reactor.is_running()))
    reactor.call_soon(reactor.stop)
    reactor.run()
    assert seen == [True]


def test_run_while_running_raises(reactor: Reactor) -> None:
    caught: List[BaseException] = []

    def nested() -> None:
        try:
            reactor.run()
        except RuntimeError as exc:
            caught.append(exc)
        reactor.stop()

    reactor.call_soon(nested)
    reactor.run()
    assert len(caught) == 1


def test_stop_before_run_does_exactly_one_step(reactor: Reactor) -> None:
    out: List[str] = []

    def first() -> None:
        out.append("first")
        reactor.call_soon(out.append, "next step")

    reactor.call_soon(first)
    reactor.stop()
    reactor.run()
    assert out == ["first"]
    # The stop request was consumed: a later run() needs its own stop.
    reactor.call_soon(reactor.stop)
    reactor.run()
    assert out == ["first", "next step"]


def test_run_once_with_timeout_returns_when_idle(reactor: Reactor) -> None:
    started = time.monotonic()
    reactor.run_once(0.1)
    elapsed = time.monotonic() - started
    assert 0.05 <= elapsed < 5


def test_run_once_zero_does_not_block(reactor: Reactor) -> None:
    started = time.monotonic()
    reactor.run_once(0)
    assert time.monotonic() - started < 1


# -- errors ---------------------------------------------------------------------------


def test_exception_in_callback_reaches_handler_and_loop_goes_on(
        reactor: Reactor, errors: List[Dict[str, Any]]) -> None:
    out: List[str] = []
    boom = ValueError("boom")

    def bad() -> None:
        raise boom

    reactor.call_soon(bad)
    reactor.call_soon(out.append, "after")
    reactor.run_once(0)
    assert out == ["after"]
    assert len(errors) == 1
    ctx = errors[0]
    assert ctx["exception"] is boom
    assert ctx["callback"] is bad
    assert "bad" in ctx["message"]
    reactor.call_soon(out.append, "next step")
    reactor.run_once(0)
    assert out == ["after", "next step"]


def test_exception_in_timer_reaches_handler(clock: FakeClock, fake_reactor: Reactor,
                                            errors: List[Dict[str, Any]]) -> None:
    out: List[str] = []

    def bad() -> None:
        raise KeyError("t")

    fake_reactor.call_later(1, bad)
    fake_reactor.call_later(1, out.append, "same deadline")
    fake_reactor.call_later(2, out.append, "later")
    advance(fake_reactor, 3)
    assert out == ["same deadline", "later"]
    assert len(errors) == 1
    assert isinstance(errors[0]["exception"], KeyError)
    assert errors[0]["callback"] is bad
    assert errors[0]["message"]


def test_keyboard_interrupt_is_not_caught(reactor: Reactor) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    reactor.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        reactor.run()
    assert not reactor.is_running()


def test_raising_exception_handler_is_logged_and_loop_goes_on(
        reactor: Reactor, caplog: pytest.LogCaptureFixture) -> None:
    handler_error = RuntimeError("handler broke")

    def handler(_r: Reactor, _ctx: Dict[str, Any]) -> None:
        raise handler_error

    reactor.set_exception_handler(handler)
    assert reactor.get_exception_handler() is handler
    out: List[str] = []
    original = ValueError("original")

    def bad() -> None:
        raise original

    reactor.call_soon(bad)
    reactor.call_soon(out.append, "still running")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.run_once(0)
    assert out == ["still running"]
    records = [r for r in caplog.records if r.name == "reactor"]
    assert len(records) == 2  # both errors, each with its own traceback
    first, second = records
    assert first.exc_info is not None and first.exc_info[1] is original
    assert second.levelno == logging.ERROR
    assert second.exc_info is not None and second.exc_info[1] is handler_error
    assert "exception handler raised" in second.getMessage()
    assert "original" in second.getMessage()  # the original context is shown


def test_default_handler_logs_with_traceback(reactor: Reactor,
                                             caplog: pytest.LogCaptureFixture) -> None:
    reactor.set_exception_handler(None)
    assert reactor.get_exception_handler() is None

    def failing_callback() -> None:
        raise ZeroDivisionError("nope")

    reactor.call_soon(failing_callback)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.run_once(0)
    records = [r for r in caplog.records if r.name == "reactor"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], ZeroDivisionError)
    assert "failing_callback" in records[0].getMessage()
    assert "Traceback" in caplog.text
    assert "ZeroDivisionError: nope" in caplog.text


def test_default_handler_without_exception(reactor: Reactor,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.default_exception_handler({"message": "just a note", "extra": 42})
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is None
    assert "just a note" in caplog.text and "extra: 42" in caplog.text


# -- dispatch with a scripted selector ---------------------------------------------------


def test_dispatch_calls_handle_io_with_the_mask_and_reports_internal_errors(
        errors: List[Any]) -> None:
    selector = ScriptedSelector()
    r = Reactor(selector=selector)
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    seen: List[int] = []

    class Handler:
        def handle_io(self, mask: int) -> None:
            seen.append(mask)

    class Broken:
        def handle_io(self, mask: int) -> None:
            raise AssertionError("library bug")

    broken = Broken()
    key1 = selectors.SelectorKey(100, 100, EVENT_READ, broken)
    key2 = selectors.SelectorKey(101, 101, EVENT_WRITE, Handler())
    try:
        selector.script.append([(key1, EVENT_READ), (key2, EVENT_WRITE)])
        r.run_once(0)
        assert seen == [EVENT_WRITE]
        assert len(errors) == 1
        assert errors[0]["handler"] is broken
        assert isinstance(errors[0]["exception"], InternalError)  # a bug, not a user error
        assert isinstance(errors[0]["exception"].__cause__, AssertionError)
        assert "not in user code" in errors[0]["message"]
    finally:
        r.close()


def test_select_timeout_phase(errors: List[Any]) -> None:
    selector = ScriptedSelector()
    clock = FakeClock(50.0)
    r = Reactor(selector=selector, clock=clock)
    try:
        r.run_once(None)
        r.run_once(2.0)
        r.call_later(5, lambda: None)
        r.run_once(None)
        r.run_once(1.0)
        r.call_soon(lambda: None)
        r.run_once(None)
        clock.advance(10)
        r.run_once(None)  # overdue timer: do not block
        assert selector.timeouts == [None, 2.0, 5.0, 1.0, 0, 0.0]
    finally:
        r.close()


# -- lifetime -----------------------------------------------------------------------------


def test_close_is_idempotent_and_releases_descriptors() -> None:
    r = Reactor()
    r.close()
    r.close()
    assert r.is_closed()
    with pytest.raises(RuntimeError):
        r.run()


def test_close_while_running_raises(reactor: Reactor) -> None:
    caught: List[BaseException] = []

    def try_close() -> None:
        try:
            reactor.close()
        except RuntimeError as exc:
            caught.append(exc)
        reactor.stop()

    reactor.call_soon(try_close)
    reactor.run()
    assert len(caught) == 1
    assert not reactor.is_closed()


def test_context_manager_closes() -> None:
    with Reactor() as r:
        assert not r.is_closed()
    assert r.is_closed()


def test_many_reactors_coexist() -> None:
    reactors = [Reactor() for _ in range(20)]
    try:
        out: List[int] = []
        for i, r in enumerate(reactors):
            r.call_soon(out.append, i)
        reactors[7].run_once(0)
        assert out == [7]
        for r in reactors:
            r.run_once(0)
        assert sorted(out) == list(range(20)) and out.count(7) == 1
    finally:
        for r in reactors:
            r.close()


def test_registered_count_excludes_the_waker(reactor: Reactor) -> None:
    assert reactor.registered_count() == 0 and reactor.registered() == {}


def test_registered_names_each_descriptor_and_its_owner() -> None:
    import socket

    reactor = Reactor()

    class Handler:
        def handle_io(self, mask: int) -> None:  # pragma: no cover  (never ready)
            pass

    a, b = socket.socketpair()
    handler = Handler()
    try:
        reactor.add_handler(a, 0, handler)  # held, not watched
        reactor.add_reader(b, lambda: None)
        owners = reactor.registered()
        assert set(owners) == {a.fileno(), b.fileno()} and owners[a.fileno()] is handler
        assert reactor.registered_count() == 2
        reactor.remove_handler(a)
        reactor.remove_reader(b)
        assert reactor.registered() == {}
    finally:
        a.close()
        b.close()
    reactor.close()
    assert reactor.registered() == {}


# -- signals --------------------------------------------------------------------------------


def test_remove_signal_handler_restores_previous() -> None:
    before = signal.getsignal(signal.SIGUSR2)
    r = Reactor()
    try:
        assert r.remove_signal_handler(signal.SIGUSR2) is False
        r.add_signal_handler(signal.SIGUSR2, lambda: None)
        r.add_signal_handler(signal.SIGUSR2, lambda: None)  # twice: still restores the first
        assert signal.getsignal(signal.SIGUSR2) is not before
        assert r.remove_signal_handler(signal.SIGUSR2) is True
        assert signal.getsignal(signal.SIGUSR2) == before
        assert r.remove_signal_handler(signal.SIGUSR2) is False
    finally:
        r.close()


def test_close_restores_signal_handlers() -> None:
    before = signal.getsignal(signal.SIGUSR2)
    r = Reactor()
    r.add_signal_handler(signal.SIGUSR2, lambda: None)
    r.close()
    assert signal.getsignal(signal.SIGUSR2) == before


def test_run_once_inside_a_callback_is_refused_and_reported(reactor: Reactor,
                                                             errors: List[Any]) -> None:
    ran: List[str] = []
    reactor.call_soon(lambda: reactor.run_once(0))
    reactor.call_soon(ran.append, "next")
    reactor.run_once(0)  # must not raise out of the loop
    assert ran == ["next"]
    assert isinstance(errors[0]["exception"], RuntimeError)
    assert "inside a callback" in str(errors[0]["exception"])


def test_run_points_signal_wakeups_at_the_waker_and_restores(reactor: Reactor) -> None:
    # A signal landing just before select() starts to wait must still wake
    # it (else Ctrl-C can hang a loop with no timers): while run() runs, the
    # interpreter's wakeup fd is the reactor's waker.
    import signal as signal_module
    seen: List[int] = []

    def peek() -> None:
        fd = signal_module.set_wakeup_fd(-1)
        signal_module.set_wakeup_fd(fd)
        seen.append(fd)
        reactor.stop()

    before = signal_module.set_wakeup_fd(-1)
    signal_module.set_wakeup_fd(before)
    reactor.call_soon(peek)
    reactor.run()
    assert seen == [reactor._waker.writer.fileno()]
    after = signal_module.set_wakeup_fd(-1)
    signal_module.set_wakeup_fd(after)
    assert after == before  # restored


# -- the lean epoll selector ------------------------------------------------------


needs_epoll = pytest.mark.skipif(not hasattr(selectors, "EpollSelector"),
                                 reason="epoll is Linux-only")


def test_selectors_mask_translates_epoll_bits() -> None:
    import select as select_module

    from reactor.selector import epoll_mask

    if not hasattr(select_module, "EPOLLIN"):
        pytest.skip("epoll constants are Linux-only")
    assert epoll_mask(select_module.EPOLLIN) == EVENT_READ
    assert epoll_mask(select_module.EPOLLOUT) == EVENT_WRITE
    both = select_module.EPOLLIN | select_module.EPOLLOUT
    assert epoll_mask(both) == EVENT_READ | EVENT_WRITE
    for trouble in (select_module.EPOLLERR, select_module.EPOLLHUP):
        assert epoll_mask(trouble) == EVENT_READ | EVENT_WRITE


# -- the boundary: hooks, counters, calling user code ---------------------------------


def test_shutdown_calls_every_hook_and_stops_once_all_are_done(reactor: Reactor) -> None:
    calls: List[Any] = []
    dones: List[Any] = []

    def hook(grace: float, done: Any) -> None:
        calls.append(grace)
        dones.append(done)

    other = lambda grace, done: dones.append(done)  # noqa: E731
    reactor.add_shutdown_hook(hook)
    reactor.add_shutdown_hook(other)
    reactor.add_shutdown_hook(hook)  # once only
    reactor.shutdown(2.5)
    assert calls == [2.5] and len(dones) == 2
    dones[0]()
    dones[0]()  # a second call of the same done() does not count twice
    reactor.run_once(0)
    assert not reactor._stopping
    dones[1]()
    assert reactor._stopping  # stop() was called: the next run() does one step
    reactor.run()


def test_a_raising_shutdown_hook_is_reported_and_counts_as_done(reactor: Reactor,
                                                                errors: List[Any]) -> None:
    def broken(grace: float, done: Any) -> None:
        raise ValueError("cannot shut down")

    reactor.add_shutdown_hook(broken)
    reactor.shutdown(1)
    assert [e["callback"] for e in errors] == [broken]
    assert reactor._stopping


def test_removed_hooks_are_not_called() -> None:
    called: List[str] = []
    r = Reactor()
    shut = lambda grace, done: called.append("shutdown")  # noqa: E731
    closing = lambda: called.append("close")  # noqa: E731
    r.add_shutdown_hook(shut)
    r.add_close_hook(closing)
    assert r.remove_shutdown_hook(shut) and not r.remove_shutdown_hook(shut)
    assert r.remove_close_hook(closing) and not r.remove_close_hook(closing)
    r.shutdown(1)
    r.close()
    assert called == []


def test_close_calls_the_close_hooks_first(errors: List[Any]) -> None:
    r = Reactor()
    seen: List[bool] = []
    r.add_close_hook(lambda: seen.append(r.is_closed()))
    r.add_close_hook(lambda: 1 / 0)  # reported; the rest of close() still happens
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    r.close()
    assert seen == [False] and r.is_closed()
    assert isinstance(errors[0]["exception"], ZeroDivisionError)


def test_counters_are_public_and_reported_by_stats(reactor: Reactor) -> None:
    counters = reactor.counters
    counters.bytes_in += 10
    counters.bytes_out += 7
    counters.connections_opened += 3
    counters.connections_closed += 1
    counters.accept_errors += 2
    stats = reactor.stats()
    assert (stats["bytes_in"], stats["bytes_out"], stats["open_connections"],
            stats["accept_errors"]) == (10, 7, 2, 2)


def test_call_user_returns_the_result_or_reports_with_context(reactor: Reactor,
                                                              errors: List[Any]) -> None:
    assert reactor.call_user(divmod, 7, 2) == (3, 1)
    assert errors == []
    failures: List[BaseException] = []

    class Proto:
        def data_received(self, data: bytes) -> None:
            raise KeyError(data)

    proto = Proto()
    result = reactor.call_user(proto.data_received, b"x", on_error=failures.append,
                               protocol=proto, transport="T")
    assert result is None and len(failures) == 1 and isinstance(failures[0], KeyError)
    assert errors == [{"message": "exception in Proto.data_received()",
                       "exception": failures[0], "callback": proto.data_received,
                       "protocol": proto, "transport": "T"}]


def test_handler_registration_errors_are_clear(reactor: Reactor) -> None:
    class Handler:
        def handle_io(self, mask: int) -> None:
            pass

    selector = ScriptedSelector()
    r = Reactor(selector=selector)
    try:
        first, second = Handler(), Handler()
        r.add_handler(100, EVENT_READ, first)
        with pytest.raises(RuntimeError, match="descriptor 100 is already watched by"):
            r.add_handler(100, EVENT_READ, second)
        r.update_handler(100, EVENT_READ | EVENT_WRITE, first)
        assert selector.keys[100].events == EVENT_READ | EVENT_WRITE
        assert r.remove_handler(100) and not r.remove_handler(100)
        with pytest.raises(RuntimeError, match="is watched by"):
            r.add_handler(101, EVENT_READ, first)
            r.add_reader(101, print)
    finally:
        r.close()
    with pytest.raises(RuntimeError, match="closed"):
        r.add_handler(102, EVENT_READ, Handler())
    with pytest.raises(RuntimeError, match="closed"):
        r.add_reader(102, print)
    assert r.remove_reader(102) is False


def test_shutdown_stops_at_the_grace_deadline_even_if_a_hook_never_finishes(
        clock: FakeClock, fake_reactor: Reactor) -> None:
    finished_at_deadline: List[float] = []
    fake_reactor.add_shutdown_hook(lambda grace, done: fake_reactor.call_later(
        grace, finished_at_deadline.append, clock.now()))  # never calls done()
    start = clock.now()
    fake_reactor.shutdown(3)
    advance(fake_reactor, 2.999)
    assert not fake_reactor._stopping
    advance(fake_reactor, 0.001)
    # What the hook did at the deadline ran first; stop() comes one step later.
    assert finished_at_deadline == [start] and fake_reactor._stopping
    assert clock.now() == start + 3


def test_a_finished_shutdown_leaves_no_timer_behind(fake_reactor: Reactor) -> None:
    fake_reactor.add_shutdown_hook(lambda grace, done: done())
    fake_reactor.shutdown(3)
    assert fake_reactor._stopping and fake_reactor.next_deadline() is None


# -- a closed reactor refuses new work ------------------------------------------------


def test_a_closed_reactor_refuses_new_work() -> None:
    r = Reactor()
    r.close()
    for schedule in (lambda: r.call_soon(print), lambda: r.call_soon_threadsafe(print),
                     lambda: r.call_later(1, print), lambda: r.call_at(1, print),
                     lambda: r.run_once(0), r.run, lambda: r.run_in_thread(print),
                     lambda: r.add_reader(0, print)):
        with pytest.raises(RuntimeError, match="closed"):
            schedule()


def test_cleanup_queued_during_close_still_runs(errors: List[Any]) -> None:
    r = Reactor()
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    ran: List[str] = []
    r.call_soon(ran.append, "queued before close")
    r.add_close_hook(lambda: r.call_soon(lambda: r.call_soon(ran.append, "two rounds later")))
    forever = [0]

    def again() -> None:  # bounded: dropped after close_drain_rounds rounds
        forever[0] += 1
        r.call_soon(again)

    r.call_soon(again)
    r.close()
    assert ran == ["queued before close", "two rounds later"]
    assert forever[0] == Reactor.close_drain_rounds and errors == []


def test_step_time_is_the_clock_when_select_returned(clock: FakeClock,
                                                      fake_reactor: Reactor) -> None:
    seen: List[float] = []
    fake_reactor.call_soon(lambda: seen.append(fake_reactor.step_time))
    clock.advance(5)
    fake_reactor.run_once(0)
    clock.advance(1)  # the step is over: step_time does not move by itself
    assert seen == [clock.now() - 1] and fake_reactor.step_time == clock.now() - 1


def test_shared_makes_one_object_per_key_and_reactor() -> None:
    made: List[int] = []

    def factory() -> List[int]:
        made.append(1)
        return []

    a, b = Reactor(), Reactor()
    try:
        assert a.shared("k", factory) is a.shared("k", factory)
        assert a.shared("k", factory) is not b.shared("k", factory)
        assert len(made) == 2
    finally:
        a.close()
        b.close()
