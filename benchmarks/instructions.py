#!/usr/bin/env python3
"""Instructions per echo request, counted by callgrind: a figure that does
not move with the machine's load.

    python benchmarks/instructions.py                  # this tree
    python benchmarks/instructions.py --tree OTHER     # another checkout

CPU time on a shared virtual machine moves by a tenth or more between runs,
which hides changes of a few per cent.  Callgrind counts the instructions a
process executes (user space only), and the count is the same whatever else
the machine is doing.  So this runs ``reactor serve echo`` under
``valgrind --tool=callgrind``, drives it with the same C load generator as
``run.py`` (50 connections, one 1 KiB message each in flight), and counts.

Start-up, imports, accepting the connections and shutting down cost the same
whatever the load, so each measurement is two runs of the server, one with
a short load and one with a long one: the difference in instructions divided
by the difference in requests is the cost of one request, and nothing else.
The server is pinned to one CPU and the load generator to the other.  Under
callgrind the server runs some fifty times slower, so it is saturated and
handles many connections per ``select()``, as in ``run.py``'s echo rows.

Needs Linux, valgrind and a C compiler; prints one line per measurement and
the median.  Takes about two minutes with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import DEFAULT_BUILD, HOST, BenchError, build, pick_cpus, pinned  # noqa: E402


def server_command(out_file: Path) -> List[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
            sys.executable, "-m", "reactor", "serve", "echo", "--host", HOST,
            "--port", "0", "--timeout", "30"]


def wait_for_port(proc: "subprocess.Popen[bytes]", out_path: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out_path.read_text(errors="replace")
        match = re.match(r"Socket port (\d+)\n", text)
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode}")
        time.sleep(0.05)
    raise BenchError(f"no 'Socket port N' line within {timeout:g}s")


def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise BenchError(f"no instruction total in {out_file}")


def one_run(tree: Path, loadgen: str, duration: float, work: Path,
            cpus: Tuple[Optional[int], Optional[int]]) -> Tuple[int, int]:
    """Run the server under callgrind with ``duration`` seconds of load;
    return (instructions, requests served)."""
    out_file = work / f"callgrind.{duration:g}.{time.monotonic_ns()}"
    out_path = work / "server.out"
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONUNBUFFERED="1")
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(pinned(server_command(out_file), cpus[0]), stdout=out,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                cwd=tree, env=env)
    try:
        port = wait_for_port(proc, out_path, 120)
        cmd = [loadgen, "--host", HOST, "--port", str(port), "--conns", "50",
               "--size", "1024", "--warmup", "0", "--duration", str(duration),
               "--timeout", "60", "--settle", "0.5"]
        if cpus[1] is not None:
            cmd += ["--cpu", str(cpus[1])]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 180)
        if result.returncode != 0:
            raise BenchError(f"load generator failed: {result.stderr.strip()}")
        data = json.loads(result.stdout)
        if data.get("errors") or data.get("mismatches") or data.get("fatal"):
            raise BenchError(f"load generator saw errors: {result.stdout.strip()}")
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return total_instructions(out_file), int(data["total_requests"])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent,
                        help="the source tree whose reactor package is measured "
                             "(default: this one)")
    parser.add_argument("--short", type=float, default=3.0,
                        help="seconds of load in the short run (default 3)")
    parser.add_argument("--long", type=float, default=12.0,
                        help="seconds of load in the long run (default 12)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements (pairs of runs) to take the median of")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD)
    args = parser.parse_args(argv)
    if not shutil.which("valgrind"):
        print("instructions: needs valgrind (e.g. apt-get install valgrind)", file=sys.stderr)
        return 2
    if not args.long > args.short > 0 or args.repeat < 1:
        parser.error("need --long > --short > 0 and --repeat >= 1")
    try:
        tools = build(args.build_dir)
        cpus = pick_cpus()
        per_request = []
        with tempfile.TemporaryDirectory(prefix="reactor-instructions-") as tmp:
            for n in range(args.repeat):
                short = one_run(args.tree, tools.loadgen, args.short, Path(tmp), cpus)
                long = one_run(args.tree, tools.loadgen, args.long, Path(tmp), cpus)
                requests = long[1] - short[1]
                if requests <= 0:
                    raise BenchError("the long run served no more requests than the short one")
                per_request.append((long[0] - short[0]) / requests)
                print(f"measurement {n + 1}: {per_request[-1]:,.0f} instructions per request "
                      f"({short[1]:,} and {long[1]:,} requests)", flush=True)
    except BenchError as exc:
        print(f"instructions: {exc}", file=sys.stderr)
        return 2
    print(f"median: {statistics.median(per_request):,.0f} instructions per echo request "
          f"({args.tree.resolve()}, Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
