#!/usr/bin/env python3
"""The reactor benchmark suite: one command runs all of it.

    python benchmarks/run.py            # the full suite (under ten minutes)
    python benchmarks/run.py --quick    # tiny sizes, one round, seconds

It builds the C load generator and the C echo server with the system
compiler (into benchmarks/build/, which git ignores), then runs, in
interleaved rounds, every server against the same client, the server pinned
to one core and the client to another:

* echo: N connections, each with one M-byte message in flight, for three
  sizes, and once more with 10,000 idle connections held open;
* connection churn with the ``ack`` conversation;
* timers: schedule and cancel 1,000,000 in-process;
* memory per idle connection (from the idle echo run);
* TLS: echo 50 x 1 KiB over TLS, the same with 1,000 idle TLS connections
  (memory per idle TLS connection), and TLS handshake churn (full
  handshakes per second), for reactor, asyncio-Protocol and uvloop; with a
  certificate made by the ``openssl`` command and a load generator built
  against OpenSSL (skipped, with a note, where either is missing).

The headline figure is the server's CPU time per request (utime+stime from
/proc/PID/stat over the measured window, divided by the requests served in
it) as a ratio to asyncio-Protocol's in the same round.  It prints a table,
and writes the raw figures (results/latest.json) and a chart of the ratios
(results/latest.svg).  See benchmarks/README.rst.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVERS = HERE / "servers"
DEFAULT_BUILD = HERE / "build"
DEFAULT_RESULTS = HERE / "results"
HOST = "127.0.0.1"
BASELINE = "asyncio-protocol"
ACK = "You are connected!"
ACK_MESSAGE = "benchmark message\n"
#: Churn spreads its connections over this many loopback source addresses
#: (127.0.0.1 ..): with one, the client spends its time searching for a
#: local port among the TIME_WAIT entries it left behind, not connecting.
CHURN_SOURCES = 8

# -- configuration -------------------------------------------------------------


@dataclass(frozen=True)
class EchoWorkload:
    key: str
    conns: int
    size: int
    idle: int = 0
    unix: bool = False                # over a Unix socket instead of TCP
    tls: bool = False                 # TLS over every connection (idle ones too)

    @property
    def label(self) -> str:
        text = f"{self.conns} x {format_size(self.size)}"
        if self.unix:
            text += ", Unix socket"
        text += f" + {self.idle:,} idle" if self.idle else ""
        return "TLS " + text if self.tls else text


@dataclass(frozen=True)
class Config:
    name: str
    rounds: int
    warmup: float                     # seconds before each measured window
    duration: float                   # seconds in each measured window
    echo: Tuple[EchoWorkload, ...]
    echo_servers: Tuple[str, ...]
    churn_conns: int                  # connections in flight at once
    churn_servers: Tuple[str, ...]
    timers: int                       # call_later + cancel pairs
    timer_impls: Tuple[str, ...] = ("reactor", "asyncio")
    tls_churn_conns: int = 0          # TLS handshake churn: connections in flight (0: none)
    settle: float = 0.3               # seconds after the idle connections are accepted
    timeout: float = 5.0              # per request / connection; also the drain bound


ALL_ECHO_SERVERS = ("reactor", "asyncio-protocol", "asyncio-streams", "uvloop", "twisted",
                    "c-epoll")
ALL_CHURN_SERVERS = ("reactor", "asyncio-protocol", "uvloop")

FULL = Config(
    name="full", rounds=3, warmup=0.5, duration=3.0,
    echo=(EchoWorkload("1k", 50, 1024), EchoWorkload("16k", 10, 16384),
          EchoWorkload("64b", 500, 64), EchoWorkload("1k-idle", 50, 1024, idle=10_000),
          EchoWorkload("1k-unix", 50, 1024, unix=True),
          EchoWorkload("tls-1k", 50, 1024, tls=True),
          EchoWorkload("tls-1k-idle", 50, 1024, idle=1_000, tls=True)),
    echo_servers=ALL_ECHO_SERVERS,
    churn_conns=50, churn_servers=ALL_CHURN_SERVERS, timers=1_000_000, tls_churn_conns=50)

QUICK = Config(
    name="quick", rounds=1, warmup=0.1, duration=0.5,
    echo=(EchoWorkload("1k", 4, 1024), EchoWorkload("16k", 2, 16384),
          EchoWorkload("64b", 8, 64), EchoWorkload("1k-idle", 4, 1024, idle=200),
          EchoWorkload("1k-unix", 4, 1024, unix=True),
          # One TLS echo run (its active connections stand for "tls-1k") and
          # TLS churn: the TLS rows add about four seconds.
          EchoWorkload("tls-1k-idle", 4, 1024, idle=100, tls=True)),
    echo_servers=("reactor", "asyncio-protocol", "c-epoll"),
    churn_conns=4, churn_servers=("reactor", "asyncio-protocol"), timers=1_000,
    settle=0.1, tls_churn_conns=4)

#: The echo workloads the targets speak of ("each of the three").
PLAIN_ECHO = ("1k", "16k", "64b")

#: The servers that can serve a Unix socket (asyncio's create_unix_server is
#: the peer; uvloop implements it too).
UNIX_ECHO_SERVERS = ("reactor", "asyncio-protocol", "uvloop")

#: The servers that run the TLS rows (echo and handshake churn), each with
#: its ``ssl=`` server context.
TLS_SERVERS = ("reactor", "asyncio-protocol", "uvloop")

#: What the TLS rows need, said in the note when they are skipped.
NO_OPENSSL_COMMAND = ("the openssl command is missing (it makes the certificate): "
                      "apt-get install openssl")
NO_OPENSSL_HEADERS = ("the OpenSSL headers are missing, so the load generator has no TLS "
                      "mode: apt-get install libssl-dev (Debian, Ubuntu; openssl-devel on "
                      "Fedora)")


class BenchError(Exception):
    """A run that could not be measured (server did not start, client failed)."""


# -- small helpers -------------------------------------------------------------


def format_size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def median(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def child_env() -> Dict[str, str]:
    """Run this source tree's reactor package, whatever is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def have_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def module_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def find_compiler() -> Optional[str]:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate:
            path = shutil.which(candidate)
            if path:
                return path
    return None


def pick_cpus() -> Tuple[Optional[int], Optional[int]]:
    """(server CPU, client CPU): 0 and 1 when both are ours to use."""
    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        return None, None
    if len(usable) < 2:
        return None, None
    return usable[0], usable[1]


def nofile_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return hard if hard != resource.RLIM_INFINITY else 1 << 20


def port_range_size() -> int:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return high - low + 1
    except (OSError, ValueError):
        return 28232


def feasible_idle(requested: int, conns: int) -> int:
    """As many idle connections as descriptors and ports allow, up to
    ``requested``.  The server and the client each hold one descriptor per
    connection; the client uses one local port per connection."""
    room = min(nofile_limit() - conns - 64, port_range_size() - conns - 2000)
    return max(0, min(requested, room))


def machine_info(cpus: Tuple[Optional[int], Optional[int]]) -> Dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    compiler = find_compiler()
    cc_version = None
    if compiler:
        try:
            out = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout
            cc_version = out.splitlines()[0] if out else None
        except (OSError, subprocess.SubprocessError):
            pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "server_cpu": cpus[0],
        "client_cpu": cpus[1],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "system": f"{platform.system()} {platform.release()}",
        "compiler": cc_version,
        "uvloop": module_version("uvloop"),
        "twisted": module_version("twisted"),
        "openssl": ssl.OPENSSL_VERSION,
        "loadavg_at_start": load,
        "nofile_limit": nofile_limit(),
    }


# -- building ------------------------------------------------------------------


@dataclass
class Tools:
    loadgen: str
    epoll_echo: str
    #: The load generator with its TLS mode (built against OpenSSL), or None
    #: with the reason in ``tls_problem``.
    loadgen_tls: Optional[str] = None
    tls_problem: Optional[str] = None


def build(build_dir: Path) -> Tools:
    """Compile the C load generator and C echo server into ``build_dir``,
    and the load generator once more with OpenSSL (``loadgen-tls``) where
    its headers are installed."""
    compiler = find_compiler()
    if compiler is None:
        raise BenchError("no C compiler found (set CC, or install cc/gcc/clang)")
    build_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, source in (("loadgen", HERE / "loadgen.c"),
                         ("epoll_echo", SERVERS / "epoll_echo.c")):
        exe = build_dir / name
        result = subprocess.run([compiler, "-O2", "-Wall", "-o", str(exe), str(source)],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise BenchError(f"{source.name} did not compile:\n{result.stderr}")
        built[name] = str(exe)
    exe = build_dir / "loadgen-tls"
    result = subprocess.run([compiler, "-O2", "-Wall", "-DHAVE_OPENSSL", "-o", str(exe),
                             str(HERE / "loadgen.c"), "-lssl", "-lcrypto"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode == 0:
        built["loadgen_tls"] = str(exe)
    elif "openssl/" in result.stderr and ("No such file" in result.stderr
                                          or "not found" in result.stderr):
        built["tls_problem"] = NO_OPENSSL_HEADERS
    else:
        first = next((line for line in result.stderr.splitlines() if "error" in line),
                     result.stderr.strip()[:300])
        built["tls_problem"] = f"loadgen.c did not build with OpenSSL: {first}"
    return Tools(**built)


def make_certificate(directory: Path) -> Tuple[str, str]:
    """A self-signed ECDSA P-256 certificate for ``localhost``, and its key,
    made with the ``openssl`` command (the TLS servers load it; the load
    generator checks nothing)."""
    cert, key = directory / "tls-cert.pem", directory / "tls-key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise BenchError(f"openssl could not make the certificate: "
                         f"{exc.stderr.decode('utf-8', 'replace').strip()[-500:]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"openssl could not make the certificate: {exc}")
    return str(cert), str(key)


# -- the servers ---------------------------------------------------------------


def echo_command(server: str, tools: Tools, unix: Optional[str] = None,
                 tls: Optional[Tuple[str, str]] = None) -> List[str]:
    py = sys.executable
    if tls is not None:  # (certificate, key): the same servers with ssl=
        return echo_command(server, tools, unix) + ["--tls-cert", tls[0], "--tls-key", tls[1]]
    if unix is not None:
        cmd = {"reactor": [py, str(SERVERS / "reactor_echo.py"), "--idle-timeout", "30"],
               "asyncio-protocol": [py, str(SERVERS / "asyncio_echo.py")],
               "uvloop": [py, str(SERVERS / "asyncio_echo.py"), "--uvloop"]}[server]
        return cmd + ["--unix", unix]
    commands = {
        "reactor": [py, str(SERVERS / "reactor_echo.py"), "--host", HOST, "--port", "0",
                    "--idle-timeout", "30"],
        "asyncio-protocol": [py, str(SERVERS / "asyncio_echo.py")],
        "asyncio-streams": [py, str(SERVERS / "asyncio_echo.py"), "--streams"],
        "uvloop": [py, str(SERVERS / "asyncio_echo.py"), "--uvloop"],
        "twisted": [py, str(SERVERS / "twisted_echo.py")],
        "c-epoll": [tools.epoll_echo],
    }
    return commands[server]


def ack_command(server: str) -> List[str]:
    py = sys.executable
    commands = {
        "reactor": [py, "-m", "reactor", "serve", "ack", "--host", HOST, "--port", "0"],
        "asyncio-protocol": [py, str(SERVERS / "asyncio_ack.py")],
        "uvloop": [py, str(SERVERS / "asyncio_ack.py"), "--uvloop"],
    }
    return commands[server]


#: What a server needs that may not be installed.
NEEDS = {"uvloop": "uvloop", "twisted": "twisted"}


def available(server: str) -> bool:
    return server not in NEEDS or have_module(NEEDS[server])


def pinned(cmd: List[str], cpu: Optional[int]) -> List[str]:
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


class ServerProcess:
    """A server started for one run: its output goes to files (never a pipe
    that could fill up), its first line gives the port, and it is always
    stopped on the way out (SIGTERM, then SIGKILL)."""

    def __init__(self, cmd: List[str], log_dir: Path, name: str, cpu: Optional[int],
                 start_timeout: float = 20.0) -> None:
        self.out_path = log_dir / f"{name}.out"
        self.err_path = log_dir / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(pinned(cmd, cpu), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=ROOT, env=child_env())
        self.pid = self.proc.pid
        self.path: Optional[str] = None  # a Unix socket's, for servers that say one
        try:
            if cpu is not None and not shutil.which("taskset"):
                os.sched_setaffinity(self.pid, {cpu})
            try:  # room for many idle connections
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.prlimit(self.pid, resource.RLIMIT_NOFILE, (hard, hard))
            except (OSError, AttributeError, ValueError):
                pass
            self.port = self._wait_for_port(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out_path.read_bytes().decode("utf-8", "replace")
            if "\n" in text:
                first = text.split("\n", 1)[0]
                parts = first.split()
                if len(parts) == 3 and parts[:2] == ["Socket", "port"] and parts[2].isdigit():
                    return int(parts[2])
                if len(parts) == 3 and parts[:2] == ["Socket", "path"]:
                    self.path = parts[2]
                    return 0
                raise BenchError(f"first line is not 'Socket port N' or 'Socket path P': "
                                 f"{first!r}")
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with status {self.proc.returncode}: "
                                 f"{self.stderr_tail()}")
            time.sleep(0.01)
        raise BenchError(f"no 'Socket port N' line within {timeout:g}s")

    def stderr_tail(self, size: int = 2000) -> str:
        try:
            return self.err_path.read_bytes()[-size:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover  (unkillable)
            pass

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- one measurement -----------------------------------------------------------


@dataclass
class Context:
    cfg: Config
    tools: Tools
    log_dir: Path
    server_cpu: Optional[int]
    client_cpu: Optional[int]
    #: Each run waits for the kernel's TCP sockets in use to come down to
    #: this (the count when the suite began, plus a margin); see settle().
    quiet_sockets: Optional[int] = None
    #: The TLS servers' certificate and key files, when the TLS rows run.
    tls: Optional[Tuple[str, str]] = None


def run_loadgen(ctx: Context, server: ServerProcess, args: List[str], budget: float,
                tls: bool = False) -> Dict[str, Any]:
    cfg = ctx.cfg
    where = (["--unix", server.path] if server.path
             else ["--host", HOST, "--port", str(server.port)])
    loadgen = ctx.tools.loadgen
    if tls:
        if ctx.tools.loadgen_tls is None:
            raise BenchError(ctx.tools.tls_problem or "no TLS load generator")
        loadgen = ctx.tools.loadgen_tls
        args = [*args, "--tls", "1"]
    cmd = [loadgen, *where,
           "--warmup", str(cfg.warmup), "--duration", str(cfg.duration),
           "--timeout", str(cfg.timeout), "--settle", str(cfg.settle),
           "--server-pid", str(server.pid), *args]
    if ctx.client_cpu is not None:
        cmd += ["--cpu", str(ctx.client_cpu)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator ran longer than {budget:g}s")
    if result.returncode != 0:
        raise BenchError(f"load generator failed ({result.returncode}): "
                         f"{result.stderr.strip()}")
    data: Dict[str, Any] = json.loads(result.stdout)
    if not server.alive():
        raise BenchError(f"server died during the run: {server.stderr_tail()}")
    return data


def _per_request_us(data: Dict[str, Any]) -> Optional[float]:
    cpu, requests = data.get("server_cpu_s", -1), data.get("requests", 0)
    if cpu is None or cpu < 0 or not requests:
        return None
    return float(cpu) / float(requests) * 1e6


def _utilisation(seconds: Optional[float], window: float) -> Optional[float]:
    if seconds is None or seconds < 0 or window <= 0:
        return None
    return seconds / window


def _background(data: Dict[str, Any], window: float) -> Optional[float]:
    """CPU time (in cores) the rest of the machine used during the window:
    busy time of every CPU minus the server's and the client's."""
    busy, server, client = (data.get("machine_busy_s", -1), data.get("server_cpu_s", -1),
                            data.get("client_cpu_s", -1))
    if min(busy, server, client) < 0 or window <= 0:
        return None
    return max(0.0, float(busy - server - client)) / window


def _problems(data: Dict[str, Any], expected_bytes: int) -> List[str]:
    problems = []
    if data.get("fatal"):
        problems.append(str(data["fatal"]))
    for key in ("errors", "mismatches", "unexpected_bytes", "timeouts", "connect_errors",
                "conns_lost", "tls_failures", "tls_resumed"):
        if data.get(key):
            problems.append(f"{key}={data[key]}")
    if data.get("tls_error"):
        problems.append(f"TLS: {data['tls_error']}")
    if not data.get("requests"):
        problems.append("no request completed in the window")
    if data.get("bytes_verified") != expected_bytes:
        problems.append(f"bytes_verified={data.get('bytes_verified')} != {expected_bytes}")
    if data.get("server_cpu_s", -1) < 0:
        problems.append("server CPU time unreadable")
    return problems


def tcp_sockets_in_use() -> Optional[int]:
    """The kernel's count of TCP sockets in use (``/proc/net/sockstat``)."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    fields = line.split()
                    return int(fields[fields.index("inuse") + 1])
    except (OSError, ValueError):
        pass
    return None


def settle(limit: Optional[int], timeout: float = 15.0) -> None:
    """Wait (bounded) until the kernel has torn down the sockets of earlier
    runs: closing 10,000 connections costs the kernel CPU for a while, and
    that softirq time is charged to whatever process runs next, which would
    be the next run's server."""
    if limit is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        in_use = tcp_sockets_in_use()
        if in_use is None or in_use <= limit:
            break
        time.sleep(0.1)
    time.sleep(0.2)


def _tls_description(data: Dict[str, Any]) -> str:
    """What was negotiated, e.g. ``TLSv1.3 TLS_AES_256_GCM_SHA384 x25519``."""
    return " ".join(str(data[k]) for k in ("tls_version", "tls_cipher", "tls_group")
                    if data.get(k))


def _measure(ctx: Context, record: Dict[str, Any], name: str, command: List[str],
             args: List[str], budget: float, rate: str, cpu: str, tls: bool = False
             ) -> Optional[Dict[str, Any]]:
    """Start the server ``command``, run the load generator with ``args``
    against it and fill ``record`` with what every kind of run reports: the
    load generator's JSON, what TLS negotiated (with ``tls``), the rate
    (under the key ``rate``), the server's CPU time per request (``cpu``),
    CPU use, background and latency.  Returns the JSON, or None with
    ``record["error"]`` when the run could not be measured."""
    settle(ctx.quiet_sockets)
    try:
        if tls and ctx.tls is None:
            raise BenchError("no certificate for the TLS servers")
        with ServerProcess(command, ctx.log_dir, name, ctx.server_cpu) as proc:
            record["server_pid"] = proc.pid
            data = run_loadgen(ctx, proc, args, budget, tls=tls)
    except BenchError as exc:
        record["error"] = str(exc)
        return None
    record["loadgen"] = data
    if tls:
        record["tls"] = _tls_description(data)
    window = data.get("window_s", 0.0)
    record[rate] = data.get("rps")
    record[cpu] = _per_request_us(data)
    record["server_cpu_util"] = _utilisation(data.get("server_cpu_s"), window)
    record["client_cpu_util"] = _utilisation(data.get("client_cpu_s"), window)
    record["background_cpu"] = _background(data, window)
    record["p50_us"] = data["latency_us"]["p50"]
    record["p99_us"] = data["latency_us"]["p99"]
    return data


def _judged(record: Dict[str, Any], problems: List[str]) -> Dict[str, Any]:
    """``record``, good if there are no ``problems``, else failed with them."""
    record["ok"] = not problems
    if problems:
        record["error"] = "; ".join(problems)
    return record


def run_echo(ctx: Context, server: str, wl: EchoWorkload, rnd: int, idle: int
             ) -> Dict[str, Any]:
    record: Dict[str, Any] = {"kind": "echo", "workload": wl.key, "label": wl.label,
                              "server": server, "round": rnd, "conns": wl.conns,
                              "size": wl.size, "idle_requested": idle, "ok": False}
    name = f"echo-{wl.key}-{server}-r{rnd}"
    budget = ctx.cfg.warmup + ctx.cfg.duration + 3 * ctx.cfg.timeout + 60 + idle / 100
    unix = str(ctx.log_dir / f"{name}.sock") if wl.unix else None
    data = _measure(ctx, record, name,
                    echo_command(server, ctx.tools, unix, ctx.tls if wl.tls else None),
                    ["--mode", "echo", "--conns", str(wl.conns), "--size", str(wl.size),
                     "--idle", str(idle)], budget, "rps", "cpu_us_per_request", tls=wl.tls)
    if data is None:
        return record
    problems = _problems(data, data.get("total_requests", 0) * wl.size)
    if idle:
        accepted = data.get("idle_accepted", 0)
        record["idle_open"] = data.get("idle_open")
        record["idle_accepted"] = accepted
        if data.get("idle_open") != idle or accepted != idle:
            problems.append(f"idle connections: asked {idle}, open {data.get('idle_open')}, "
                            f"accepted {accepted}")
        if data.get("idle_closed_by_server"):
            problems.append(f"server closed {data['idle_closed_by_server']} idle connections")
        before, after = data.get("server_rss_kb_before_idle", -1), \
            data.get("server_rss_kb_with_idle", -1)
        if accepted > 0 and before >= 0 and after >= 0:
            record["kib_per_idle_conn"] = (after - before) / accepted
    return _judged(record, problems)


def run_churn(ctx: Context, server: str, rnd: int) -> Dict[str, Any]:
    record: Dict[str, Any] = {"kind": "churn", "server": server, "round": rnd,
                              "conns": ctx.cfg.churn_conns, "ok": False}
    name = f"churn-{server}-r{rnd}"
    budget = ctx.cfg.warmup + ctx.cfg.duration + 3 * ctx.cfg.timeout + 30
    data = _measure(ctx, record, name, ack_command(server),
                    ["--mode", "churn", "--conns", str(ctx.cfg.churn_conns), "--expect", ACK,
                     "--message", ACK_MESSAGE, "--sources", str(CHURN_SOURCES)], budget,
                    "cps", "cpu_us_per_conn")
    if data is None:
        return record
    return _judged(record, _problems(data, data.get("total_requests", 0) * len(ACK)))


def run_tls_churn(ctx: Context, server: str, rnd: int) -> Dict[str, Any]:
    """TLS handshake churn against the TLS echo server: connect, full
    handshake, one short echo, close_notify both ways, close."""
    cfg = ctx.cfg
    record: Dict[str, Any] = {"kind": "tls-churn", "server": server, "round": rnd,
                              "conns": cfg.tls_churn_conns, "ok": False}
    name = f"tls-churn-{server}-r{rnd}"
    budget = cfg.warmup + cfg.duration + 3 * cfg.timeout + 30
    data = _measure(ctx, record, name, echo_command(server, ctx.tools, tls=ctx.tls),
                    ["--mode", "churn", "--conns", str(cfg.tls_churn_conns),
                     "--message", ACK_MESSAGE, "--sources", str(CHURN_SOURCES)], budget,
                    "cps", "cpu_us_per_conn", tls=True)
    if data is None:
        return record
    #: Servers that closed without their close_notify (reported, not a failure).
    record["unclean_closes"] = data.get("tls_unclean_closes", 0)
    problems = _problems(data, data.get("total_requests", 0) * len(ACK_MESSAGE))
    if data.get("tls_handshakes", 0) < data.get("total_requests", 0):
        problems.append(f"tls_handshakes={data.get('tls_handshakes')} < connections "
                        f"{data.get('total_requests')}")
    return _judged(record, problems)


def run_timers(ctx: Context, impl: str, rnd: int) -> Dict[str, Any]:
    record: Dict[str, Any] = {"kind": "timers", "impl": impl, "round": rnd,
                              "count": ctx.cfg.timers, "ok": False}
    cmd = pinned([sys.executable, str(HERE / "timers.py"), impl, str(ctx.cfg.timers)],
                 ctx.server_cpu)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=child_env(),
                                timeout=120)
    except subprocess.TimeoutExpired:
        record["error"] = "timer benchmark ran longer than 120s"
        return record
    if result.returncode != 0:
        record["error"] = f"timers.py failed: {result.stderr.strip()[-2000:]}"
        return record
    data = json.loads(result.stdout)
    record.update(seconds=data["seconds"], us_per_pair=data["us_per_pair"], ok=True)
    return record


# -- the whole suite -----------------------------------------------------------


class Progress:
    """One line on the terminal that says what is running (a line per step
    when not a terminal).  ``stream=None`` is silent."""

    def __init__(self, total: int, stream: Optional[IO[str]]) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.start = time.monotonic()
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())

    def step(self, what: str) -> None:
        self.done += 1
        if self.stream is None:
            return
        elapsed = time.monotonic() - self.start
        line = f"[{self.done:3d}/{self.total}] {elapsed:5.0f}s  {what}"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def rotate(items: Sequence[str], by: int) -> List[str]:
    """Change the order from round to round, so no server is always first."""
    items = list(items)
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


def servers_for(wl: EchoWorkload, echo_servers: Sequence[str]) -> List[str]:
    """The servers that run ``wl``: for a Unix socket or TLS, those that can."""
    return [s for s in echo_servers if (not wl.unix or s in UNIX_ECHO_SERVERS)
            and (not wl.tls or s in TLS_SERVERS)]


def tls_churn_servers(cfg: Config, echo_servers: Sequence[str]) -> List[str]:
    """The servers that run TLS handshake churn (none if ``cfg`` has none)."""
    return [s for s in echo_servers if s in TLS_SERVERS] if cfg.tls_churn_conns else []


def tls_unavailable(tools: Tools) -> Optional[str]:
    """Why the TLS rows cannot run here, or None if they can."""
    if shutil.which("openssl") is None:
        return NO_OPENSSL_COMMAND
    return tools.tls_problem if tools.loadgen_tls is None else None


def run_suite(cfg: Config, out_dir: Path, build_dir: Path,
              progress: Optional[IO[str]] = sys.stderr) -> Dict[str, Any]:
    """Build, run every measurement, write ``latest.json``/``latest.svg`` in
    ``out_dir`` and return the results (with the table as ``"table"``)."""
    started = time.monotonic()
    tools = build(build_dir)
    cpus = pick_cpus()
    machine = machine_info(cpus)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = []
    no_tls = tls_unavailable(tools)
    if no_tls is not None and (cfg.tls_churn_conns or any(wl.tls for wl in cfg.echo)):
        notes.append(f"TLS rows skipped: {no_tls}")
        cfg = dataclasses.replace(cfg, echo=tuple(wl for wl in cfg.echo if not wl.tls),
                                  tls_churn_conns=0)
    echo_servers = [s for s in cfg.echo_servers if available(s)]
    churn_servers = [s for s in cfg.churn_servers if available(s)]
    skipped = sorted({s for s in cfg.echo_servers + cfg.churn_servers if not available(s)})
    idle_of = {wl.key: feasible_idle(wl.idle, wl.conns) for wl in cfg.echo}
    tls_churn = tls_churn_servers(cfg, echo_servers)
    for wl in cfg.echo:
        if wl.idle and idle_of[wl.key] < wl.idle:
            notes.append(f"{wl.label}: only {idle_of[wl.key]:,} idle connections are possible "
                         f"here (descriptor limit {nofile_limit()}, {port_range_size()} "
                         f"local ports)")
    for name in skipped:
        notes.append(f"{name} is not installed: pip install '.[bench]'")
    steps = cfg.rounds * (sum(len(servers_for(wl, echo_servers)) for wl in cfg.echo)
                          + len(churn_servers) + len(tls_churn) + len(cfg.timer_impls))
    bar = Progress(steps, progress)
    records: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reactor-bench-logs-") as logs:
        in_use = tcp_sockets_in_use()
        ctx = Context(cfg, tools, Path(logs), cpus[0], cpus[1],
                      None if in_use is None else in_use + 200)
        if tls_churn or any(wl.tls for wl in cfg.echo):
            try:
                ctx.tls = make_certificate(Path(logs))
            except BenchError as exc:  # the TLS runs then fail, each saying so
                notes.append(str(exc))
        try:
            for rnd in range(1, cfg.rounds + 1):
                for wl in cfg.echo:
                    for server in rotate(servers_for(wl, echo_servers), rnd - 1):
                        bar.step(f"round {rnd}/{cfg.rounds}  {'echo ' + wl.label:<32} {server}")
                        records.append(run_echo(ctx, server, wl, rnd, idle_of[wl.key]))
                for server in rotate(churn_servers, rnd - 1):
                    bar.step(f"round {rnd}/{cfg.rounds}  "
                             f"{f'ack churn, {cfg.churn_conns} at a time':<32} {server}")
                    records.append(run_churn(ctx, server, rnd))
                for server in rotate(tls_churn, rnd - 1):
                    bar.step(f"round {rnd}/{cfg.rounds}  "
                             f"{f'TLS churn, {cfg.tls_churn_conns} at a time':<32} {server}")
                    records.append(run_tls_churn(ctx, server, rnd))
                for impl in rotate(cfg.timer_impls, rnd - 1):
                    bar.step(f"round {rnd}/{cfg.rounds}  {f'timers x {cfg.timers:,}':<32} {impl}")
                    records.append(run_timers(ctx, impl, rnd))
        finally:
            bar.finish()
    summary = summarize(cfg, records, echo_servers, churn_servers, tls_churn)
    targets = evaluate_targets(cfg, records, summary)
    results: Dict[str, Any] = {
        "suite": "reactor benchmarks",
        "format": 1,
        "mode": cfg.name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": dataclasses.asdict(cfg),
        "machine": machine,
        "notes": notes,
        "idle_connections": {k: v for k, v in idle_of.items() if v},
        "records": records,
        "summary": summary,
        "targets": targets,
    }
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["table"] = format_table(results)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "latest.svg").write_text(render_svg(results))
    return results


# -- summarising ---------------------------------------------------------------


def _find(records: List[Dict[str, Any]], **match: Any) -> List[Dict[str, Any]]:
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


def paired(records: List[Dict[str, Any]], metric: str, a: Dict[str, Any],
           b: Dict[str, Any]) -> List[float]:
    """Per round, ``a``'s metric divided by ``b``'s (both runs good)."""
    ratios = []
    for ra in _find(records, ok=True, **a):
        for rb in _find(records, ok=True, round=ra["round"], **b):
            x, y = ra.get(metric), rb.get(metric)
            if x is not None and y:
                ratios.append(x / y)
    return ratios


def _stats(records: List[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, Any]:
    good = [r for r in records if r.get("ok")]
    out: Dict[str, Any] = {"rounds": len(records), "good_rounds": len(good),
                           "failures": [r.get("error") for r in records if not r.get("ok")]}
    for key in keys:
        out[key] = median([r.get(key) for r in good])
    return out


def _churn_rows(records: List[Dict[str, Any]], kind: str,
                servers: Sequence[str]) -> Dict[str, Any]:
    """The summary rows of a churn kind ("churn" or "tls-churn"), a server each."""
    rows = {}
    for server in servers:
        row = _stats(_find(records, kind=kind, server=server),
                     ("cps", "cpu_us_per_conn", "server_cpu_util", "client_cpu_util",
                      "p50_us", "p99_us"))
        row["cps_ratio"] = median(paired(records, "cps", {"kind": kind, "server": server},
                                         {"kind": kind, "server": BASELINE}))
        row["cpu_ratio"] = median(paired(records, "cpu_us_per_conn",
                                         {"kind": kind, "server": server},
                                         {"kind": kind, "server": BASELINE}))
        rows[server] = row
    return rows


def summarize(cfg: Config, records: List[Dict[str, Any]], echo_servers: Sequence[str],
              churn_servers: Sequence[str], tls_churn: Sequence[str] = ()) -> Dict[str, Any]:
    echo: Dict[str, Any] = {}
    for wl in cfg.echo:
        rows = {}
        for server in servers_for(wl, echo_servers):
            recs = _find(records, kind="echo", workload=wl.key, server=server)
            row = _stats(recs, ("rps", "cpu_us_per_request", "server_cpu_util",
                                "client_cpu_util", "p50_us", "p99_us", "kib_per_idle_conn"))
            row["ratio"] = median(paired(records, "cpu_us_per_request",
                                         {"kind": "echo", "workload": wl.key, "server": server},
                                         {"kind": "echo", "workload": wl.key,
                                          "server": BASELINE}))
            if wl.idle:
                row["kib_ratio"] = median(paired(
                    records, "kib_per_idle_conn",
                    {"kind": "echo", "workload": wl.key, "server": server},
                    {"kind": "echo", "workload": wl.key, "server": BASELINE}))
            rows[server] = row
        echo[wl.key] = {"label": wl.label, "conns": wl.conns, "size": wl.size,
                        "idle": wl.idle, "tls": wl.tls, "servers": rows}
    churn = _churn_rows(records, "churn", churn_servers)
    tls_churn_rows = _churn_rows(records, "tls-churn", tls_churn)
    for server, row in tls_churn_rows.items():
        row["unclean_closes"] = sum(r.get("unclean_closes") or 0
                                    for r in _find(records, kind="tls-churn", server=server))
    timers = {}
    for impl in cfg.timer_impls:
        row = _stats(_find(records, kind="timers", impl=impl), ("us_per_pair",))
        row["ratio"] = median(paired(records, "us_per_pair", {"kind": "timers", "impl": impl},
                                     {"kind": "timers", "impl": "asyncio"}))
        timers[impl] = row
    background = [r["background_cpu"] for r in records
                  if r.get("ok") and r.get("background_cpu") is not None]
    tls = sorted({r["tls"] for r in records if r.get("ok") and r.get("tls")})
    return {"echo": echo, "churn": churn, "tls_churn": tls_churn_rows, "tls": tls,
            "timers": timers,
            "background_cpu": {"median": median(background),
                               "max": max(background) if background else None}}


def evaluate_targets(cfg: Config, records: List[Dict[str, Any]],
                     summary: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The issue's targets, each with the measured figure and pass/miss
    (n/a when a server it needs did not run).  Reported, never asserted."""
    targets: List[Dict[str, Any]] = []

    def add(name: str, ratios: List[float], goal: str, passes: Callable[[float], bool],
            unit: str = "x") -> None:
        value = median(ratios)
        targets.append({
            "target": name, "goal": goal, "measured": value, "unit": unit,
            "rounds": len(ratios),
            "result": "n/a" if value is None else ("pass" if passes(value) else "miss"),
        })

    def echo(wl: str, server: str) -> Dict[str, Any]:
        return {"kind": "echo", "workload": wl, "server": server}

    labels = {wl.key: wl.label for wl in cfg.echo}
    for wl in PLAIN_ECHO:
        if wl not in labels:
            continue
        cpu = "cpu_us_per_request"
        add(f"echo {labels[wl]}: CPU/request, uvloop / reactor",
            paired(records, cpu, echo(wl, "uvloop"), echo(wl, "reactor")),
            ">= 1.05x", lambda v: v >= 1.05)
        add(f"echo {labels[wl]}: CPU/request, asyncio-Protocol / reactor",
            paired(records, cpu, echo(wl, BASELINE), echo(wl, "reactor")),
            ">= 1.3x", lambda v: v >= 1.3)
        add(f"echo {labels[wl]}: CPU/request, reactor / C epoll floor",
            paired(records, cpu, echo(wl, "reactor"), echo(wl, "c-epoll")),
            "<= 1.25x", lambda v: v <= 1.25)
    idle = next((wl for wl in cfg.echo if wl.idle and not wl.tls), None)
    if idle is not None:
        add(f"echo {idle.label}: reactor CPU/request with idle / without",
            paired(records, "cpu_us_per_request", echo(idle.key, "reactor"),
                   echo("1k", "reactor")),
            "<= 1.05x", lambda v: v <= 1.05)
        add("memory per idle connection, reactor",
            [r["kib_per_idle_conn"] for r in _find(records, ok=True, **echo(idle.key, "reactor"))
             if r.get("kib_per_idle_conn") is not None],
            "<= 0.75 KiB", lambda v: v <= 0.75, unit=" KiB")
    # Without idle connections where that ran (quick mode has only the idle one).
    tls = next((wl for wl in sorted(cfg.echo, key=lambda wl: wl.idle) if wl.tls), None)
    if tls is not None:
        add(f"echo {tls.label}: CPU/request, reactor / asyncio-Protocol",
            paired(records, "cpu_us_per_request", echo(tls.key, "reactor"),
                   echo(tls.key, BASELINE)),
            "<= 1.0x", lambda v: v <= 1.0)
    churn = {"kind": "churn"}
    add("ack churn: connections/s, reactor / asyncio-Protocol",
        paired(records, "cps", dict(churn, server="reactor"), dict(churn, server=BASELINE)),
        ">= 1.5x", lambda v: v >= 1.5)
    add("ack churn: connections/s, reactor / uvloop",
        paired(records, "cps", dict(churn, server="reactor"), dict(churn, server="uvloop")),
        "> 1.0x", lambda v: v > 1.0)
    add("timers: call_later+cancel time, asyncio / reactor",
        paired(records, "us_per_pair", {"kind": "timers", "impl": "asyncio"},
               {"kind": "timers", "impl": "reactor"}),
        ">= 4x", lambda v: v >= 4.0)
    return targets


# -- the table -----------------------------------------------------------------


def _num(value: Optional[float], fmt: str, missing: str = "-") -> str:
    return missing if value is None else format(value, fmt)


def _x(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _failed(row: Dict[str, Any]) -> str:
    if not row["failures"]:
        return ""
    return f"  ({len(row['failures'])}/{row['rounds']} failed: {row['failures'][0]})"


def _churn_table(title: str, rows: Dict[str, Any]) -> List[str]:
    """The lines of a churn table (plain or TLS): a blank line, ``title``,
    the head and a line a server."""
    head = (f"{'server':<17} {'conn/s':>9} {'ratio':>7} {'CPU us/conn':>11} "
            f"{'CPU ratio':>9} {'srv CPU':>7} {'cli CPU':>7} {'p50 us':>8} {'p99 us':>8}")
    lines = ["", title, head, "-" * len(head)]
    for server, row in rows.items():
        unclean = row.get("unclean_closes")     # only TLS churn counts them
        lines.append(
            f"{server:<17} {_num(row['cps'], ',.0f'):>9} "
            f"{_x(row['cps_ratio']):>7} "
            f"{_num(row['cpu_us_per_conn'], '.1f'):>11} "
            f"{_x(row['cpu_ratio']):>9} "
            f"{_pct(row['server_cpu_util']):>7} {_pct(row['client_cpu_util']):>7} "
            f"{_num(row['p50_us'], '.0f'):>8} {_num(row['p99_us'], '.0f'):>8}"
            + (f"  ({unclean} closed without close_notify)" if unclean else "")
            + _failed(row))
    return lines


def format_table(results: Dict[str, Any]) -> str:
    cfg, m, summary = results["config"], results["machine"], results["summary"]
    lines = []
    rounds = cfg["rounds"]
    lines.append(f"reactor benchmarks ({results['mode']}): {rounds} round(s), "
                 f"{cfg['duration']:g} s windows after {cfg['warmup']:g} s warm-up, "
                 f"medians; server on CPU {m['server_cpu']}, client on CPU {m['client_cpu']}")
    extras = ", ".join(f"{k} {m[k]}" for k in ("uvloop", "twisted") if m.get(k))
    lines.append(f"machine: {m['cpu_model']}, {m['cores']} cores, {m['python']}, "
                 f"{m['system']}" + (f", {extras}" if extras else "")
                 + (f"; load average at start {' '.join(m['loadavg_at_start'])}"
                    if m.get("loadavg_at_start") else ""))
    for note in results.get("notes", []):
        lines.append(f"note: {note}")
    if summary.get("tls"):
        lines.append(f"TLS: {', '.join(summary['tls'])}, ECDSA P-256 certificate"
                     + (f"; servers on {m['openssl']}" if m.get("openssl") else "")
                     + "; the client resumes no session")
    bg = summary.get("background_cpu", {})
    if bg.get("median") is not None:
        lines.append(f"background: other processes used {bg['median'] * 100:.0f}% of a core "
                     f"during the median window (max {bg['max'] * 100:.0f}%)"
                     + ("  -- the machine was not quiet; figures are noisier"
                        if bg["max"] > 0.15 else ""))

    lines.append("")
    lines.append("Echo: server CPU time per request; ratio = that / asyncio-Protocol's in the "
                 "same round (lower is better)")
    head = (f"{'workload':<28} {'server':<17} {'req/s':>9} {'CPU us/req':>10} {'ratio':>7} "
            f"{'srv CPU':>7} {'cli CPU':>7} {'p50 us':>8} {'p99 us':>8}")
    lines.append(head)
    lines.append("-" * len(head))
    for wl in summary["echo"].values():
        first = True
        for server, row in wl["servers"].items():
            lines.append(
                f"{wl['label'] if first else '':<28} {server:<17} {_num(row['rps'], ',.0f'):>9} "
                f"{_num(row['cpu_us_per_request'], '.2f'):>10} "
                f"{_x(row['ratio']):>7} "
                f"{_pct(row['server_cpu_util']):>7} {_pct(row['client_cpu_util']):>7} "
                f"{_num(row['p50_us'], '.0f'):>8} {_num(row['p99_us'], '.0f'):>8}"
                + _failed(row))
            first = False

    if summary["churn"]:
        title = (f"Connection churn, ack conversation (connect, read the 18-byte greeting, "
                 f"send one line, close), {cfg['churn_conns']} at a time")
        lines += _churn_table(title, summary["churn"])
    if summary.get("tls_churn"):
        title = (f"TLS handshake churn (connect, full handshake, one 18-byte echo, "
                 f"close_notify both ways, close), {cfg['tls_churn_conns']} at a time")
        lines += _churn_table(title, summary["tls_churn"])

    timers = summary["timers"]
    if timers:
        lines.append("")
        lines.append(f"Timers: {cfg['timers']:,} call_later + cancel pairs in one process "
                     f"(ratio = time / asyncio's, lower is better)")
        head = f"{'loop':<17} {'us/pair':>9} {'ratio':>7}"
        lines.append(head)
        lines.append("-" * len(head))
        for impl, row in timers.items():
            lines.append(f"{impl:<17} {_num(row['us_per_pair'], '.3f'):>9} "
                         f"{_x(row['ratio']):>7}"
                         + _failed(row))

    accepted = results.get("idle_connections", {})
    for key, idle in summary["echo"].items():
        if not idle["idle"]:
            continue
        count = accepted.get(key, idle["idle"])
        lines.append("")
        if idle.get("tls"):
            lines.append(f"Memory per idle TLS connection: server RSS growth / {count:,} idle "
                         f"TLS connections, each after its handshake and one 16-byte echo "
                         f"(ratio = that / asyncio-Protocol's)")
        else:
            lines.append(f"Memory per idle connection: server RSS growth / {count:,} idle "
                         f"connections (ratio = that / asyncio-Protocol's)")
        head = f"{'server':<17} {'KiB/conn':>9} {'ratio':>7}"
        lines.append(head)
        lines.append("-" * len(head))
        for server, row in idle["servers"].items():
            ratio = row.get("kib_ratio")
            lines.append(f"{server:<17} {_num(row['kib_per_idle_conn'], '.2f'):>9} "
                         f"{_x(ratio):>7}")

    lines.append("")
    lines.append("Targets (reported, not asserted)")
    width = max(len(t["target"]) for t in results["targets"])
    head = f"{'target':<{width}} {'measured':>9} {'goal':>11}  result"
    lines.append(head)
    lines.append("-" * len(head))
    for t in results["targets"]:
        value = "-" if t["measured"] is None else f"{t['measured']:.2f}{t['unit']}"
        lines.append(f"{t['target']:<{width}} {value:>9} {t['goal']:>11}  {t['result']}")
    if "wall_seconds" in results:
        lines.append("")
        lines.append(f"wall time {results['wall_seconds']:.0f} s")
    return "\n".join(lines)


# -- the chart -----------------------------------------------------------------


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _panels(results: Dict[str, Any]) -> Iterator[Tuple[str, List[Tuple[str, Optional[float]]]]]:
    summary = results["summary"]
    for wl in summary["echo"].values():
        yield (f"Echo {wl['label']}: CPU time per request / asyncio-Protocol (lower is better)",
               [(s, row["ratio"]) for s, row in wl["servers"].items()])
    if summary["churn"]:
        yield ("Ack churn: connections/s / asyncio-Protocol (higher is better)",
               [(s, row["cps_ratio"]) for s, row in summary["churn"].items()])
    if summary.get("tls_churn"):
        yield ("TLS handshake churn: server CPU time per connection / asyncio-Protocol "
               "(lower is better)",
               [(s, row["cpu_ratio"]) for s, row in summary["tls_churn"].items()])
    if summary["timers"]:
        yield ("Timers: time per call_later + cancel / asyncio (lower is better)",
               [(s, row["ratio"]) for s, row in summary["timers"].items()])
    for idle in summary["echo"].values():
        if idle["idle"]:
            yield (f"Memory per idle {'TLS ' if idle.get('tls') else ''}connection / "
                   f"asyncio-Protocol (lower is better)",
                   [(s, row.get("kib_ratio")) for s, row in idle["servers"].items()
                    if s != "c-epoll"])


def render_svg(results: Dict[str, Any]) -> str:
    """A bar chart of every ratio, written by hand (no plotting library)."""
    width, left, right, bar_h, gap = 860, 170, 90, 18, 6
    plot_w = width - left - right
    m = results["machine"]
    out: List[str] = []
    y = 64
    body: List[str] = []
    for title, bars in _panels(results):
        body.append(f'<text x="12" y="{y}" class="title">{_esc(title)}</text>')
        y += 10
        values = [v for _, v in bars if v is not None]
        scale = plot_w / (max(values + [1.0]) * 1.1)
        one = left + 1.0 * scale  # the reference line goes first, behind the bars
        body.append(f'<line x1="{one:.1f}" y1="{y - 4}" x2="{one:.1f}" '
                    f'y2="{y + len(bars) * (bar_h + gap) - gap + 4}" class="ref"/>')
        for name, value in bars:
            body.append(f'<text x="{left - 8}" y="{y + bar_h - 5}" class="label" '
                        f'text-anchor="end">{_esc(name)}</text>')
            if value is None:
                body.append(f'<text x="{left + 4}" y="{y + bar_h - 5}" class="value">'
                            f'not measured</text>')
            else:
                w = max(1.0, value * scale)
                cls = "ours" if name == "reactor" else ("base" if name in (BASELINE, "asyncio")
                                                        else "other")
                body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                            f'class="{cls}"/>')
                body.append(f'<text x="{left + w + 5:.1f}" y="{y + bar_h - 5}" '
                            f'class="value">{value:.2f}x</text>')
            y += bar_h + gap
        y += 26
    height = y
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">')
    out.append("<style>.title{font-size:13px;font-weight:bold;fill:#222}"
               ".label{font-size:12px;fill:#333}.value{font-size:11px;fill:#333}"
               ".ours{fill:#c0392b}.base{fill:#2c6fbb}.other{fill:#9aa5b1}"
               ".ref{stroke:#222;stroke-width:1;stroke-dasharray:4 3}"
               ".sub{font-size:11px;fill:#555}</style>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>')
    out.append(f'<text x="12" y="20" class="title">reactor benchmarks ({_esc(results["mode"])}, '
               f'{results["config"]["rounds"]} round(s), medians; dashed line = 1.0)</text>')
    out.append(f'<text x="12" y="36" class="sub">{_esc(m["cpu_model"])}, {m["cores"]} cores, '
               f'{_esc(m["python"])}, {_esc(m["system"])}; {_esc(results["date"])}</text>')
    out.extend(body)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- command line --------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the reactor benchmark suite: echo, churn, timers, memory, TLS.")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one round, reactor + asyncio + C floor only")
    parser.add_argument("--rounds", type=int, help="rounds (default: 3, quick: 1)")
    parser.add_argument("--duration", type=float, help="seconds per measured window")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each window")
    parser.add_argument("--out-dir", type=Path,
                        help="where latest.json and latest.svg go (default: benchmarks/results; "
                             "quick: a new temporary directory)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD,
                        help="where the C programs are built (default: benchmarks/build)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    changes = {k: v for k, v in (("rounds", args.rounds), ("duration", args.duration),
                                  ("warmup", args.warmup)) if v is not None}
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    if cfg.rounds < 1 or cfg.duration <= 0 or cfg.warmup < 0:
        parser.error("need --rounds >= 1, --duration > 0 and --warmup >= 0")
    out_dir = args.out_dir
    if out_dir is None:
        out_dir = (Path(tempfile.mkdtemp(prefix="reactor-bench-quick-")) if args.quick
                   else DEFAULT_RESULTS)

    # SIGTERM ends the run like Ctrl-C: every server is stopped on the way out.
    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        results = run_suite(cfg, out_dir, args.build_dir)
    except BenchError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbenchmarks: interrupted; servers stopped", file=sys.stderr)
        return 130
    print(results["table"])
    print(f"\nwrote {out_dir / 'latest.json'} and {out_dir / 'latest.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
