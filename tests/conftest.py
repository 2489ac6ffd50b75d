"""Fixtures shared by every test: a reactor that must end clean, a fake
clock, and a bounded way to run the loop until something happens."""

from __future__ import annotations

import gc
import os
import time
from typing import Any, Callable, Iterator, List

import pytest

from reactor import Reactor
from reactor.testing import FakeClock

from .tlscerts import Certs, make_certs, needs_openssl


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Errors(list):  # type: ignore[type-arg]
    """Contexts the reactor's exception handler received."""

    def messages(self) -> List[str]:
        return [c["message"] for c in self]


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def reactor(errors: Errors) -> Iterator[Reactor]:
    """A real reactor whose exception handler records into ``errors``.
    After the test: nothing may still be registered, and it is closed."""
    r = Reactor()
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    yield r
    for _ in range(3):  # let queued connection_lost calls run
        r.run_once(0)
    leftover = r.registered_count()
    r.close()
    assert leftover == 0, f"{leftover} descriptors still registered after the test"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def fake_reactor(clock: FakeClock, errors: Errors) -> Iterator[Reactor]:
    """A reactor on a FakeClock: timers only fire when the test moves time."""
    r = Reactor(clock=clock)
    r.set_exception_handler(lambda _r, ctx: errors.append(ctx))
    yield r
    r.close()


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    """Every test must close every descriptor it opened."""
    gc.collect()
    before = _open_fds()
    yield
    gc.collect()
    after = _open_fds()
    assert after <= before, f"test leaked {after - before} file descriptor(s)"


def run_until(reactor: Reactor, predicate: Callable[[], Any],
              timeout: float = 10.0, step: float = 0.05) -> None:
    """Run loop steps until ``predicate()`` is true; fail after ``timeout``
    real seconds.  Never sleeps beyond one select() step."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        reactor.run_once(step)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Test certificates (``tests/tlscerts.py``); skips without openssl."""
    if needs_openssl.args[0]:
        pytest.skip(needs_openssl.kwargs["reason"])
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def run() -> Callable[..., None]:
    return run_until

