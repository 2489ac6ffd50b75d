"""docs/toolkit.rst stays true: every Python snippet in it runs as shown.
A snippet that starts with ``# test_<name>.py`` is a pytest file: it is run
by pytest, with the installed plugin, and must pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..procs import ROOT

pytestmark = pytest.mark.timeout(60)

DOC = (ROOT / "docs" / "toolkit.rst").read_text()


def python_blocks() -> list:
    bodies = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", DOC)
    return ["\n".join(line[4:] for line in body.splitlines()) for body in bodies]


def test_the_page_has_a_snippet_for_each_piece() -> None:
    blocks = python_blocks()
    assert len(blocks) == 8
    text = "\n".join(blocks)
    for name in ("LineFramer", "LengthPrefixFramer", "NetstringFramer", "RecordFramer",
                 "LineProtocol", "LengthPrefixedProtocol", "call_every", ".reset(",
                 "ReconnectingClient", "peer_reading=False", "MemoryPair", "cut_after",
                 "leak_check"):
        assert name in text, name


@pytest.mark.parametrize("index", range(8))
def test_snippet_runs(index: int, tmp_path: Path) -> None:
    source = python_blocks()[index]
    first = source.splitlines()[0]
    if re.fullmatch(r"# test_\w+\.py", first):
        path = tmp_path / first[2:]
        path.write_text(source)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            cwd=tmp_path, capture_output=True, text=True, timeout=50)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout
    else:
        exec(compile(source, f"docs/toolkit.rst snippet {index}", "exec"), {})
