"""The pytest plugin (registered as ``reactor`` through the ``pytest11``
entry point): a ``leak_check`` fixture.

Ask for it and the test fails at teardown if it left a descriptor, a
transport or a reactor open::

    def test_my_server(leak_check):
        reactor = Reactor()
        ...
        reactor.close()
"""

from __future__ import annotations

from typing import Any, Generator, Iterator

import pytest

from .leaks import leak_check as _leak_check


class _TestFailed(Exception):
    """Thrown into the check: a failed test's leftovers are not news."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_call_failed] = report.failed


_call_failed = pytest.StashKey[bool]()


@pytest.fixture
def leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test (at teardown) if it leaked; see
    ``reactor.testing.leak_check``.  A test that failed is not checked:
    its own failure is the report."""
    check = _leak_check()
    check.__enter__()
    yield
    if request.node.stash.get(_call_failed, False):
        check.__exit__(_TestFailed, _TestFailed(), None)  # the block "raised": no check
    else:
        check.__exit__(None, None, None)
