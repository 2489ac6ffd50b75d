"""Running our servers and clients as real processes, with bounded waits.

``Server`` starts a command that prints ``Socket port <n>`` first, reads its
output without blocking, waits for lines with a deadline, and stops it with
a signal.  Every process and pipe is cleaned up even when a test fails.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict:
    """Run the source tree's package, whatever is installed."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["PYTHONUNBUFFERED"] = "1"
    # A server that does not exit when told is sent SIGABRT: with this it
    # prints every thread's Python stack first, and the test shows it.
    e["PYTHONFAULTHANDLER"] = "1"
    return e


def python(*args: str) -> List[str]:
    return [sys.executable, *args]


def run(cmd: Sequence[str], input: Optional[str] = None, timeout: float = 20.0,
        stdin: Optional[IO[Any]] = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` to the end; standard input is ``input`` (through a pipe)
    or the file ``stdin``."""
    return subprocess.run(list(cmd), input=input, stdin=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env())


def _default_sigint() -> None:
    """In the child, before exec: take Ctrl-C's default back.  A shell
    without job control starts background commands with SIGINT ignored, and
    an ignored signal stays ignored across exec, so without this the tests
    that stop a server with SIGINT would hang when the suite itself was
    started in the background."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Server:
    def __init__(self, cmd: Sequence[str], timeout: float = 10.0,
                 ready: str = r"^Socket port (\d+)$") -> None:
        """Start ``cmd`` and wait for its first line matching ``ready``;
        ``port`` is that line's number (``None`` for a ``ready`` without
        a group, as for a client)."""
        self.proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, cwd=ROOT, env=env(),
                                     preexec_fn=_default_sigint)
        self.lines: List[str] = []
        self._partial = b""
        self._err = b""  # read as it comes too: a full stderr pipe would block the server
        self._selector = selectors.DefaultSelector()
        for pipe in (self.proc.stdout, self.proc.stderr):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self._selector.register(pipe, selectors.EVENT_READ)
        try:
            first = self.wait_for(ready, timeout)
        except BaseException:
            self.kill()
            raise
        match = re.search(ready, first)
        self.port = int(match.group(1)) if match and match.groups() else None  # type: ignore

    def _read(self, timeout: float) -> bool:
        """Read what either pipe has; True if stdout or stderr gave bytes."""
        got = False
        for key, _ in self._selector.select(timeout):
            chunk = key.fileobj.read()  # type: ignore[union-attr]
            if not chunk:
                continue
            got = True
            if key.fileobj is self.proc.stderr:
                self._err += chunk
                continue
            data = self._partial + chunk
            *complete, self._partial = data.split(b"\n")
            self.lines.extend(line.decode("utf-8", "replace") for line in complete)
        return got

    def wait_for(self, pattern: str, timeout: float = 10.0, count: int = 1) -> str:
        """Wait until ``count`` output lines match ``pattern``; return the last."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = [line for line in self.lines if regex.search(line)]
            if len(matches) >= count:
                return matches[count - 1]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self._read(min(remaining, 0.2))
                                  and self.proc.poll() is not None):
                raise AssertionError(f"no {count} line(s) matching {pattern!r}; got "
                                     f"{self.lines!r}; stderr so far: {self._stderr_now()}")

    def _stderr_now(self) -> str:
        return self._err.decode("utf-8", "replace") or "(nothing)"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the server, collect the rest of its output, return its
        exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for an exit already under way (no signal sent), reading the
        output meanwhile (a full pipe would block the server), and return
        the exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self._abort_with_stacks()
                raise AssertionError(f"{self.proc.args!r} did not exit within {timeout}s; "
                                     f"stdout: {self.lines[-20:]!r}; stderr (with the "
                                     f"stacks SIGABRT dumped): {self._stderr_now()[-6000:]}")
            self._read(0.05)
        while self._read(0.5):
            pass
        return self.proc.returncode

    def _abort_with_stacks(self) -> None:
        """SIGABRT, so faulthandler prints where the server is stuck; collect
        that, then make sure it is gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)
            end = time.monotonic() + 3
            while self.proc.poll() is None and time.monotonic() < end:
                self._read(0.1)
            while self._read(0.2):
                pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        self._selector.close()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    """A loopback port free just now, for a program that cannot be told
    port 0 (socat, haproxy)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait until ``proc`` accepts connections on ``port`` (one probe
    connection, closed at once); fail if it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except ConnectionRefusedError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{proc.args[0]} did not start listening"
            time.sleep(0.05)
