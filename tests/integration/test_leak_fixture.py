"""The leak_check pytest fixture, reached through the pytest11 entry point
that installing reactor registers: a leaking test fails at teardown, a
clean one passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

TESTS = '''
import socket

from reactor import Reactor

kept = []


def test_clean(leak_check):
    reactor = Reactor()
    reactor.close()


def test_leaky(leak_check):
    kept.append(socket.socket())


def test_failing_and_leaky(leak_check):
    kept.append(socket.socket())
    assert False, "its own failure"
'''


def test_the_fixture_fails_a_leaking_test_only(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(tmp_path / "test_sample.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=50)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # test_leaky's call passed and its teardown failed; a test that failed
    # on its own is reported for that only.
    assert "1 failed, 2 passed, 1 error" in out, out
    assert "ERROR at teardown of test_leaky" in out and "LeakError" in out, out
    assert "teardown of test_failing_and_leaky" not in out, out
    assert "(socket:[" in out, out
