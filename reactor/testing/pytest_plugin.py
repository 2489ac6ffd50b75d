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

from typing import Iterator

import pytest

from .leaks import leak_check as _leak_check


@pytest.fixture
def leak_check() -> Iterator[None]:
    """Fail the test (at teardown) if it leaked; see
    ``reactor.testing.leak_check``."""
    with _leak_check():
        yield
