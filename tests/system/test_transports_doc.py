"""docs/transports.rst stays true: every Python snippet in it runs as shown."""

from __future__ import annotations

import re
import shutil

import pytest

from ..procs import ROOT
from ..tlscerts import NO_OPENSSL

pytestmark = pytest.mark.timeout(60)

DOC = (ROOT / "docs" / "transports.rst").read_text()


def python_blocks() -> list:
    bodies = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", DOC)
    return ["\n".join(line[4:] for line in body.splitlines()) for body in bodies]


def test_the_page_shows_each_transport() -> None:
    text = "\n".join(python_blocks())
    assert len(python_blocks()) == 7
    for name in ("listen_unix", "connect_unix", "peercred", "connect_accepted_socket",
                 "listen_udp", "DatagramTruncated", "connect_read_pipe",
                 "connect_write_pipe", "spawn_process", "ssl=context", "start_tls"):
        assert name in text, name


@pytest.mark.parametrize("index", range(7))
def test_snippet_runs(index: int) -> None:
    if "self_signed_certificate" in python_blocks()[index] and shutil.which("openssl") is None:
        pytest.skip(NO_OPENSSL)
    exec(compile(python_blocks()[index], f"docs/transports.rst snippet {index}", "exec"), {})
