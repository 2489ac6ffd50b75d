"""The benchmark suite (benchmarks/run.py) at tiny sizes, so that it cannot rot.

Quick mode: one round of half-second windows, only our server, asyncio and
the C floor, a few connections, 200 idle ones, 1,000 timers, and the TLS
rows (echo with 100 idle TLS connections, handshake churn) where the
openssl command and the OpenSSL headers are installed (.ci/run installs
both).  Outputs go to a temporary directory.  Skipped only when there is no
C compiler to build the load generator with.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import pytest

from reactor import Protocol, Reactor, Transport

from ..conftest import run_until

ROOT = Path(__file__).resolve().parents[2]


def _load_suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reactor_benchmarks_run",
                                                  ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load_suite()


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if bench.find_compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build the load generator with")
    return bench.build(tmp_path_factory.mktemp("bench-build"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_quick_suite_measures_every_server_and_writes_its_results(
        tools: Any, tmp_path: Path) -> None:
    out = tmp_path / "results"
    results = bench.run_suite(bench.QUICK, out, tmp_path / "build", progress=None)
    records: List[Dict[str, Any]] = results["records"]

    # Every run happened, and no server outlived its run.
    cfg = bench.QUICK
    no_tls = bench.tls_unavailable(tools)
    if no_tls is not None:
        cfg = dataclasses.replace(cfg, echo=tuple(wl for wl in cfg.echo if not wl.tls),
                                  tls_churn_conns=0)
    assert len(records) == sum(len(bench.servers_for(wl, cfg.echo_servers)) for wl in cfg.echo) \
        + len(cfg.churn_servers) + len(bench.tls_churn_servers(cfg, cfg.echo_servers)) \
        + len(cfg.timer_impls)
    failed = [(r["kind"], r.get("workload"), r.get("server"), r.get("error"))
              for r in records if not r["ok"]]
    assert not failed
    for r in records:
        if "server_pid" in r:
            assert not _alive(r["server_pid"]), f"server {r['server_pid']} still running"

    # Echo: requests were served, every byte came back right, CPU was measured.
    echo = [r for r in records if r["kind"] == "echo"]
    assert {r["server"] for r in echo} == {"reactor", "asyncio-protocol", "c-epoll"}
    for r in echo:
        lg = r["loadgen"]
        assert lg["requests"] > 0 and r["rps"] > 0
        assert lg["errors"] == lg["mismatches"] == lg["unexpected_bytes"] == 0
        assert lg["bytes_verified"] == lg["total_requests"] * r["size"] > 0
        assert r["cpu_us_per_request"] > 0
        assert lg["latency_us"]["p50"] <= lg["latency_us"]["p99"]
    assert all(r["loadgen"]["tls"] == r["workload"].startswith("tls-") for r in echo)
    idle = [r for r in echo if r["workload"] == "1k-idle"]
    assert idle and all(r["idle_accepted"] == r["idle_open"] == 200 for r in idle)
    assert all(r["loadgen"]["idle_closed_by_server"] == 0 for r in idle)
    assert all(isinstance(r.get("kib_per_idle_conn"), float) for r in idle)
    # The Unix-socket row: our server and asyncio's create_unix_server, no C floor.
    unix = {r["server"] for r in echo if r["workload"] == "1k-unix"}
    assert unix == {"reactor", "asyncio-protocol"}

    # Churn: every connection got the exact greeting.
    churn = [r for r in records if r["kind"] == "churn"]
    assert {r["server"] for r in churn} == {"reactor", "asyncio-protocol"}
    for r in churn:
        lg = r["loadgen"]
        assert lg["requests"] > 0 and lg["errors"] == 0
        assert lg["bytes_verified"] == lg["total_requests"] * len(bench.ACK)

    # TLS: where it can run, echo and churn against our server and asyncio's,
    # every handshake a full one, every byte checked; else a note says why not.
    tls_echo = [r for r in echo if r["workload"] == "tls-1k-idle"]
    tls_churn = [r for r in records if r["kind"] == "tls-churn"]
    if no_tls is None:
        assert {r["server"] for r in tls_echo} == {r["server"] for r in tls_churn} \
            == {"reactor", "asyncio-protocol"}
        for r in tls_echo + tls_churn:
            assert r["tls"].startswith("TLSv1."), r["tls"]
            assert r["loadgen"]["tls_resumed"] == r["loadgen"]["tls_failures"] == 0
        for r in tls_echo:
            assert r["idle_accepted"] == r["idle_open"] == 100
            assert r["loadgen"]["tls_handshakes"] == 100 + r["conns"]
            assert isinstance(r.get("kib_per_idle_conn"), float)
        for r in tls_churn:
            lg = r["loadgen"]
            assert lg["requests"] > 0 and lg["errors"] == 0
            assert lg["tls_handshakes"] >= lg["total_requests"]
            assert lg["bytes_verified"] == lg["total_requests"] * len(bench.ACK_MESSAGE)
        assert results["summary"]["tls_churn"]["reactor"]["cpu_ratio"] > 0
    else:
        assert not tls_echo and not tls_churn
        assert f"TLS rows skipped: {no_tls}" in results["notes"]

    # Timers: both loops, per-pair times.
    timers = {r["impl"]: r for r in records if r["kind"] == "timers"}
    assert set(timers) == {"reactor", "asyncio"}
    assert all(r["count"] == 1000 and r["us_per_pair"] > 0 for r in timers.values())

    # The summary: the baseline's ratio is 1 by definition, the others measured.
    rows = results["summary"]["echo"]["1k"]["servers"]
    assert rows["asyncio-protocol"]["ratio"] == pytest.approx(1.0)
    assert rows["reactor"]["ratio"] > 0 and rows["c-epoll"]["ratio"] > 0
    assert results["summary"]["churn"]["reactor"]["cps_ratio"] > 0
    results_by_target = {t["target"]: t["result"] for t in results["targets"]}
    assert set(results_by_target.values()) <= {"pass", "miss", "n/a"}
    assert any("uvloop" in name for name, result in results_by_target.items()
               if result == "n/a")  # uvloop does not run in quick mode

    # The JSON file holds the raw figures and the machine; the SVG is an image.
    saved = json.loads((out / "latest.json").read_text())
    assert {"machine", "config", "records", "summary", "targets", "table",
            "wall_seconds"} <= set(saved)
    assert {"cpu_model", "cores", "python"} <= set(saved["machine"])
    assert saved["records"] == json.loads(json.dumps(records))
    svg = ElementTree.parse(out / "latest.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(svg.findall("{http://www.w3.org/2000/svg}rect")) > 10

    # The table names the machine, every server and every target.
    table = results["table"]
    assert saved["machine"]["cpu_model"] in table
    for name in ("reactor", "asyncio-protocol", "c-epoll", "Targets", "KiB/conn"):
        assert name in table
    if no_tls is None:
        for name in ("TLS 4 x 1 KiB + 100 idle", "TLS handshake churn",
                     "Memory per idle TLS connection", "TLS: TLSv1.",
                     "CPU/request, reactor / asyncio-Protocol"):
            assert name in table
        assert results_by_target["echo TLS 4 x 1 KiB + 100 idle: CPU/request, "
                                 "reactor / asyncio-Protocol"] in {"pass", "miss"}


class Corrupt(Protocol):
    """Echoes with the first byte of every chunk flipped."""

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(bytes([data[0] ^ 0xFF]) + data[1:])


def _load_corrupt(reactor: Reactor, loadgen: List[str], **listen: Any) -> Dict[str, Any]:
    """Run ``loadgen`` (2 connections x 64 bytes, for 0.3 s) against a
    Corrupt server on ``reactor`` and return its report; the reactor runs
    while it waits, since the server is in this process."""
    listener = reactor.listen_tcp(Corrupt, "127.0.0.1", 0, **listen)
    proc = subprocess.Popen(
        [*loadgen, "--port", str(listener.port), "--conns", "2", "--size", "64",
         "--warmup", "0", "--duration", "0.3", "--timeout", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        run_until(reactor, lambda: proc.poll() is not None, timeout=15)
        stdout, stderr = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    listener.close()
    run_until(reactor, lambda: not listener.connections)
    assert proc.returncode == 0, stderr
    data: Dict[str, Any] = json.loads(stdout)
    return data


def test_load_generator_reports_bytes_that_do_not_come_back_right(
        tools: Any, reactor: Reactor) -> None:
    data = _load_corrupt(reactor, [tools.loadgen])
    assert data["requests"] > 0
    assert data["mismatches"] == data["total_requests"]
    assert data["errors"] >= data["mismatches"]
    assert data["bytes_verified"] < data["total_requests"] * 64


def test_tls_load_generator_checks_every_byte_too(tools: Any, reactor: Reactor,
                                                  tls_certs: Any) -> None:
    if tools.loadgen_tls is None:
        pytest.skip(tools.tls_problem)
    data = _load_corrupt(reactor, [tools.loadgen_tls, "--tls", "1"], ssl=tls_certs.server())
    assert data["tls"] is True and data["tls_handshakes"] == 2 and data["tls_resumed"] == 0
    assert data["requests"] > 0
    assert data["mismatches"] == data["total_requests"]
    assert data["bytes_verified"] < data["total_requests"] * 64


def test_tls_rows_say_what_they_need(tools: Any) -> None:
    """The plain load generator has no TLS mode and says how to get one; a
    missing header names the package."""
    result = subprocess.run([tools.loadgen, "--tls", "1", "--port", "9", "--duration", "0.1"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "libssl-dev" in result.stderr
    headless = bench.Tools(tools.loadgen, tools.epoll_echo, None, bench.NO_OPENSSL_HEADERS)
    reason = bench.tls_unavailable(headless)
    assert reason is not None and ("libssl-dev" in reason or "openssl" in reason)


def test_load_generator_stays_on_loopback(tools: Any) -> None:
    result = subprocess.run([tools.loadgen, "--host", "192.0.2.1", "--port", "9",
                             "--duration", "0.1"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert result.stdout == ""


def test_table_and_chart_show_what_was_not_measured() -> None:
    """Rendering copes with servers that did not run or failed."""
    cfg = bench.QUICK
    records = [
        {"kind": "echo", "workload": "1k", "server": "reactor", "round": 1, "ok": False,
         "error": "server exited with status 1"},
        {"kind": "timers", "impl": "reactor", "round": 1, "ok": True, "us_per_pair": 0.5},
        {"kind": "timers", "impl": "asyncio", "round": 1, "ok": True, "us_per_pair": 1.0},
    ]
    summary = bench.summarize(cfg, records, ["reactor"], [])
    targets = bench.evaluate_targets(cfg, records, summary)
    results = {"mode": "quick", "config": {"rounds": 1, "duration": 0.5, "warmup": 0.1,
                                           "churn_conns": 4, "timers": 1000},
               "machine": {"cpu_model": "CPU", "cores": 2, "python": "CPython 3",
                           "system": "Linux", "server_cpu": 0, "client_cpu": 1},
               "date": "today", "summary": summary, "targets": targets, "notes": []}
    table = bench.format_table(results)
    assert "1/1 failed: server exited with status 1" in table
    assert "timers: call_later+cancel time, asyncio / reactor" in table
    assert {t["result"] for t in targets} == {"n/a", "miss"}
    svg = ElementTree.fromstring(bench.render_svg(results))
    assert "not measured" in ElementTree.tostring(svg, encoding="unicode")


def test_idle_connections_are_capped_by_what_the_machine_allows() -> None:
    assert bench.feasible_idle(10, 5) == 10
    assert 0 <= bench.feasible_idle(10**9, 50) < 10**9
    assert os.cpu_count()


def test_instruction_count_script_runs_and_reports_a_plausible_figure(tmp_path: Path) -> None:
    """benchmarks/instructions.py at tiny loads: it builds, runs the server
    under callgrind twice and prints instructions per request."""
    import shutil
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (.ci/run installs it)")
    if bench.find_compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build the load generator with")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "instructions.py"), "--short", "0.5",
         "--long", "1.5", "--repeat", "1", "--build-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("median: ") and "instructions per echo request" in last, last
    figure = int(last.split()[1].replace(",", ""))
    assert 2_000 < figure < 200_000, last  # a Python echo request, not noise
