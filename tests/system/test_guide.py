"""docs/guide.rst stays real: every console command in it runs, and every
output line it shows appears in a real run (numbers such as ports, times
and descriptors may differ)."""

from __future__ import annotations

import re
import shlex
import sys

from ..procs import ROOT, run

GUIDE = (ROOT / "docs" / "guide.rst").read_text()


def normalise(line: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", " ".join(line.split()))


def console_blocks() -> list:
    blocks = []
    for body in re.findall(r"\.\. code-block:: console\n\n((?:    .*\n|\n)+)", GUIDE):
        lines = [line[4:] for line in body.rstrip().splitlines()]
        command, expected = lines[0], [line for line in lines[1:] if line.strip()]
        assert command.startswith("$ "), command
        blocks.append((command[2:], expected))
    return blocks


def test_the_guide_has_commands_to_run() -> None:
    assert len(console_blocks()) >= 2


def test_every_console_command_and_its_output_is_real() -> None:
    for command, expected in console_blocks():
        argv = shlex.split(command)
        assert argv[0] == "python"
        result = run([sys.executable, *argv[1:]], timeout=60)
        assert result.returncode == 0, (command, result.stderr)
        actual = {normalise(line) for line in result.stdout.splitlines()}
        missing = [line for line in expected if normalise(line) not in actual]
        assert not missing, f"{command}: not in a real run: {missing}"
