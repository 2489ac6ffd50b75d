"""``python -m reactor`` (also installed as ``reactor``): run the seed
conversations' servers and clients, or the demo that runs them all at once.

    reactor serve {ack,read,echo} [--host H] [--port P] [--timeout S]
                  [--max-connections N] [--max-connections-per-host M]
                  [--tls-cert FILE --tls-key FILE] ...
    reactor send HOST PORT [MESSAGE ...] [--nul] [--tls [--cafile F] [--insecure]]
    reactor ack-client HOST [PORT] [--tls ...]
    reactor echo-client HOST [PORT] [--size N] [--count N] [--tls ...]
    reactor demo [--tls]

Servers print ``Socket port <n>`` first, then one line per listening
address, then one line per connection event, flushed as they happen.
SIGINT or SIGTERM stops a server cleanly (exit 0); a second one exits at
once.  A mistake the user can make (port in use, unknown host, refused
connection, bad arguments) is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import traceback
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, TextIO

from .addresses import format_address
from .clients import AckClient, Client, DatagramEchoClient, EchoClient, SendClient
from .conversations import DEFAULT_PORTS, PROTOCOLS, Settings, serve, serve_udp_echo
from .listeners import Listener
from .loop import Reactor
from .tcp import Connector
from .trace import Tracer

__all__ = ["main"]

#: Seconds a stopping server waits for connections to flush before aborting.
SHUTDOWN_GRACE = 5.0


class UserError(Exception):
    """Something the user can fix; printed as one line, no traceback."""


class StdoutClosed(SystemExit):
    """Whoever read our output went away (``reactor serve | head``)."""


def _stdout_gone() -> NoReturn:
    # Exit quietly, as a program killed by SIGPIPE would; point stdout at
    # /dev/null so the interpreter's final flush does not complain again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise StdoutClosed(141) from None


def out(line: str) -> None:
    """Print one line and flush it at once."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _stdout_gone()


class StepOutput:
    """A server's log: each line is written when it happens and flushed at
    the end of the loop step that wrote it.  A busy server then makes one
    write() for many lines (each costs a system call), while a quiet one
    still shows every line at once."""

    def __init__(self, reactor: Reactor) -> None:
        self.reactor = reactor
        self.pending = False

    def __call__(self, line: str) -> None:
        try:
            sys.stdout.write(line + "\n")
        except BrokenPipeError:
            _stdout_gone()
        if not self.pending:
            self.pending = True
            self.reactor.call_soon(self.flush)

    def flush(self) -> None:
        self.pending = False
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_gone()


def report_error(reactor: Reactor, context: Dict[str, Any]) -> None:
    """The CLI's exception handler: one line on stdout with the rest of the
    log; a traceback on stderr only for errors in code, not from the OS."""
    exc = context.get("exception")
    out(f"error: {context.get('message', 'unhandled error')}"
        + (f": {exc!r}" if exc is not None else ""))
    if exc is not None and not isinstance(exc, OSError):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0-65535: {port}")
    return port


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reactor", description="Run the seed conversations' servers and "
                     "clients, or a demo that runs them all at once on one reactor.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    p = commands.add_parser("serve", help="run an ack, read or echo server")
    p.add_argument("kind", choices=sorted(PROTOCOLS))
    p.add_argument("--host", default="localhost",
                   help="name or address to listen on (default: localhost = 127.0.0.1 "
                        "and ::1; '::' for all interfaces, dual-stack)")
    p.add_argument("--port", type=_port, default=None,
                   help="port (default: echo 3005, ack 50544, read 0 = any free port)")
    p.add_argument("--unix", metavar="PATH", default=None,
                   help="listen on this Unix socket instead of TCP (a leading @ is a "
                        "Linux abstract name)")
    p.add_argument("--udp", action="store_true",
                   help="echo: echo each UDP datagram to its sender instead of serving TCP")
    p.add_argument("--timeout", type=_seconds, default=30.0,
                   help="close a connection idle this many seconds (0: never; default 30)")
    p.add_argument("--message-timeout", type=_seconds, default=0.0,
                   help="close a connection whose message is unfinished this long (0: never)")
    p.add_argument("--record-size", type=_positive_int, default=None,
                   help="echo: send back only whole records of N bytes (like SO_RCVLOWAT)")
    p.add_argument("--max-message", type=_positive_int, default=65536,
                   help="ack/read: close a connection whose message exceeds N bytes")
    p.add_argument("--write-timeout", type=_seconds, default=60.0,
                   help="close a connection that reads none of our output this long "
                        "(0: never; default 60)")
    p.add_argument("--max-connections", type=_positive_int, default=None, metavar="N",
                   help="stop accepting while N connections are open (the rest wait)")
    p.add_argument("--max-connections-per-host", type=_positive_int, default=None,
                   metavar="M", help="close at once a connection from a host that has M open")
    p.add_argument("--grace", type=_seconds, default=SHUTDOWN_GRACE,
                   help="on SIGINT/SIGTERM, seconds to let connections finish "
                        f"before aborting them (default {SHUTDOWN_GRACE:g})")
    p.add_argument("--verbose", action="store_true", help="echo: log every echoed chunk")
    p.add_argument("--trace", action="store_true",
                   help="print the loop's timeline: select() calls, accepts, reads, writes, "
                        "state changes")
    p.add_argument("--stats", type=_seconds, default=0, metavar="N",
                   help="print the loop's statistics every N seconds")
    p.add_argument("--tls-cert", metavar="FILE", default=None,
                   help="serve over TLS with this certificate (PEM; the chain may follow)")
    p.add_argument("--tls-key", metavar="FILE", default=None,
                   help="the certificate's private key (PEM; default: in --tls-cert)")
    p.set_defaults(func=cmd_serve)

    p = commands.add_parser("send", help="connect, write each MESSAGE, close",
                            usage="reactor send [-h] [--nul] [--timeout T] "
                                  "(HOST PORT | --unix PATH) [MESSAGE ...]")
    p.add_argument("target", nargs="*", metavar="HOST PORT MESSAGE",
                   help="where to connect (unless --unix), then what to send "
                        "(default: hello there)")
    p.add_argument("--unix", metavar="PATH", default=None,
                   help="connect to this Unix socket instead of HOST PORT")
    p.add_argument("--nul", action="store_true",
                   help="end each message with a NUL byte, as the C client does")
    p.add_argument("--timeout", type=_seconds, default=10.0)
    _tls_client_options(p)
    p.set_defaults(func=cmd_send)

    p = commands.add_parser("ack-client", help="read the acknowledgement, send one line")
    p.add_argument("host")
    p.add_argument("port", type=_port, nargs="?", default=DEFAULT_PORTS["ack"])
    p.add_argument("--timeout", type=_seconds, default=60.0)
    _tls_client_options(p)
    p.set_defaults(func=cmd_ack_client)

    p = commands.add_parser("echo-client", help="send records, check every byte comes back")
    p.add_argument("host", nargs="?", default=None)
    p.add_argument("port", type=_port, nargs="?", default=DEFAULT_PORTS["echo"])
    p.add_argument("--unix", metavar="PATH", default=None,
                   help="connect to this Unix socket instead of HOST PORT")
    p.add_argument("--udp", action="store_true",
                   help="send UDP datagrams (one per record) instead of a TCP stream")
    p.add_argument("--size", type=_positive_int, default=250)
    p.add_argument("--count", type=_positive_int, default=1)
    p.add_argument("--timeout", type=_seconds, default=30.0)
    _tls_client_options(p)
    p.set_defaults(func=cmd_echo_client)

    p = commands.add_parser("demo", help="run every conversation at once, many clients each")
    p.add_argument("--clients", type=_positive_int, default=3,
                   help="clients per conversation (default 3)")
    p.add_argument("--timeout", type=_seconds, default=20.0)
    p.add_argument("--tls", action="store_true",
                   help="run every conversation over TLS, with a throwaway self-signed "
                        "certificate (made with the openssl command)")
    p.set_defaults(func=cmd_demo)

    p = commands.add_parser("trace-demo",
                            help="one ack, one read and one echo conversation, with the "
                                 "loop's timeline")
    p.add_argument("--timeout", type=_seconds, default=20.0)
    p.set_defaults(func=cmd_trace_demo)
    return parser


def _tls_client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls", action="store_true", help="connect over TLS")
    p.add_argument("--cafile", metavar="FILE", default=None,
                   help="--tls: trust the certificates in FILE (PEM) instead of the "
                        "system's")
    p.add_argument("--insecure", action="store_true",
                   help="--tls: check neither the certificate nor the host name "
                        "(encrypted, but anyone could be at the other end)")
    p.add_argument("--server-name", metavar="NAME", default=None,
                   help="--tls: the name the certificate must have (default: HOST; "
                        "localhost with --unix)")


def _client_tls(args: argparse.Namespace) -> Dict[str, Any]:
    """The ``connect_tcp`` / ``connect_unix`` keywords for a client's
    ``--tls`` options."""
    if not args.tls:
        return {}
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"cannot load --cafile {args.cafile}: {exc}")
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    name = args.server_name or (args.host if args.unix is None else "localhost")
    return {"ssl": context, "server_hostname": name}


def _server_tls(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    if args.tls_cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        hint = "" if args.tls_key else " (if the key is in a file of its own, give --tls-key)"
        raise UserError(f"cannot load the TLS certificate {args.tls_cert}"
                        + (f" and key {args.tls_key}" if args.tls_key else "")
                        + f": {exc.strerror or exc}{hint}")
    return context


def _split_send_target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``send``'s positionals: HOST PORT MESSAGE... over TCP, MESSAGE...
    with ``--unix``."""
    target = list(args.target)
    args.host = args.port = None
    if args.unix is None:
        if len(target) < 2:
            parser.error("send needs HOST PORT (or --unix PATH)")
        args.host = target.pop(0)
        try:
            args.port = _port(target.pop(0))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument port: {exc}")
    args.messages = target


def _unix_path(path: str) -> str:
    """``@name`` on the command line is the abstract name ``\\0name``."""
    return "\0" + path[1:] if path.startswith("@") else path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    # parse_known_args so that `send HOST PORT --nul MESSAGE` works: argparse
    # alone cannot take positionals that come after an option.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "send" and not any(e.startswith("-") for e in extra):
        args.target += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "send":
        _split_send_target(parser, args)
    if args.command == "echo-client" and (args.host is None) == (args.unix is None):
        parser.error("echo-client needs HOST [PORT] or --unix PATH (not both)")
    if args.command == "serve" and args.unix is not None and args.port is not None:
        parser.error("serve takes --port or --unix, not both")
    if args.command == "serve" and args.udp and (args.kind != "echo" or args.unix):
        parser.error("--udp serves the echo conversation over UDP (not with --unix)")
    if args.command == "echo-client" and args.udp and args.unix:
        parser.error("echo-client takes --udp or --unix, not both")
    if args.command == "serve" and (args.tls_key and not args.tls_cert):
        parser.error("--tls-key goes with --tls-cert")
    if args.command == "serve" and args.udp and args.tls_cert:
        parser.error("--tls-cert serves TLS over a stream (not with --udp)")
    if getattr(args, "tls", False) and getattr(args, "udp", False):
        parser.error("--tls runs over a stream (not with --udp)")
    if hasattr(args, "cafile") and not args.tls and (args.cafile or args.insecure
                                                     or args.server_name):
        parser.error("--cafile, --insecure and --server-name go with --tls")
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"reactor {args.command}: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


# -- serve ----------------------------------------------------------------------


class GracefulStop:
    """Stops a server on SIGINT/SIGTERM with ``Reactor.shutdown``: listeners
    close at once, open connections flush and close, whatever is left after
    ``grace`` seconds is aborted, then the loop stops.  A second signal exits
    immediately."""

    def __init__(self, reactor: Reactor, grace: float, log: Callable[[str], None]) -> None:
        self.reactor = reactor
        self.grace = grace
        self.log = log
        self.stopping = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.reactor.add_signal_handler(sig, self.on_signal, sig)

    def on_signal(self, sig: int) -> None:
        if self.stopping:
            self.log("second signal: exiting now")
            sys.stdout.flush()
            os._exit(1)
        self.stopping = True
        # Listeners close first: whoever reads the line below may connect.
        self.reactor.shutdown(self.grace)
        self.log(f"{signal.Signals(sig).name}: shutting down")


def _listen(reactor: Reactor, kind: str, host: str, port: Optional[int],
            settings: Settings, log: Callable[[str], None],
            unix: Optional[str] = None, tls: Optional[ssl.SSLContext] = None) -> Listener:
    try:
        return serve(reactor, kind, host, port, settings=settings, log=log,
                     unix=None if unix is None else _unix_path(unix), ssl=tls)
    except socket.gaierror as exc:
        raise UserError(f"unknown host {host!r}: {exc.strerror}")
    except OSError as exc:
        raise UserError(exc.strerror or str(exc))


class LogLines(logging.Handler):
    """The library's own warnings (a refused connection, a slow callback)
    as lines of the server's log, ``warning: ...``."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log(f"{record.levelname.lower()}: {record.getMessage()}")


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings(idle_timeout=args.timeout, message_timeout=args.message_timeout,
                        max_message=args.max_message, record_size=args.record_size,
                        write_timeout=args.write_timeout, verbose=args.verbose,
                        max_connections=args.max_connections,
                        max_connections_per_host=args.max_connections_per_host)
    library_log = logging.getLogger("reactor")
    with Reactor() as reactor:
        log = StepOutput(reactor)
        handler = LogLines(log)
        library_log.addHandler(handler)
        library_log.propagate = False
        try:
            if args.trace:
                reactor.tracer = Tracer(echo=log)
            reactor.set_exception_handler(report_error)
            if args.stats:
                _print_stats_every(reactor, args.stats)
            if args.udp:
                return _serve_udp(reactor, args, log)
            listener = _listen(reactor, args.kind, args.host, args.port, settings, log,
                               args.unix, _server_tls(args))
            # Handlers first: whoever reads the port line may signal at once.
            GracefulStop(reactor, args.grace, log).install()
            if args.unix is None:
                out(f"Socket port {listener.port}")
            else:
                out(f"Socket path {args.unix}")
            over = " over TLS" if args.tls_cert else ""
            for address in listener.addresses:
                out(f"{args.kind} server listening on {format_address(address)}{over}")
            reactor.run()
            log.flush()
            listener.close()
        finally:
            library_log.removeHandler(handler)
            library_log.propagate = True
    return 0


def _serve_udp(reactor: Reactor, args: argparse.Namespace, log: "StepOutput") -> int:
    try:
        endpoint = serve_udp_echo(reactor, args.host, args.port, log=log, verbose=args.verbose)
    except socket.gaierror as exc:
        raise UserError(f"unknown host {args.host!r}: {exc.strerror}")
    except OSError as exc:
        raise UserError(exc.strerror or str(exc))
    GracefulStop(reactor, args.grace, log).install()
    sockets = endpoint.get_extra_info("sockets")
    out(f"Socket port {sockets[0].getsockname()[1]}")
    for sock in sockets:
        out(f"echo server listening for UDP datagrams on {format_address(sock.getsockname())}")
    reactor.run()
    log.flush()
    endpoint.abort()
    return 0


# -- clients ----------------------------------------------------------------------


def _run_client(host: Optional[str], port: Optional[int], client: Client, timeout: float,
                setup: Optional[Callable[[Reactor], None]] = None,
                unix: Optional[str] = None, tls: Optional[Dict[str, Any]] = None) -> Client:
    """Connect ``client`` to ``host:port``, or to the Unix socket ``unix``,
    and run until it is done; ``tls`` are ``_client_tls``'s keywords."""
    with Reactor() as reactor:
        if setup is not None:
            setup(reactor)
        failure: List[str] = []

        def connected(connector: Connector) -> None:
            if connector.error is not None:
                failure.append(str(connector.error))
                reactor.stop()

        client.on_done = lambda _client: reactor.stop()
        if unix is not None:
            connector = reactor.connect_unix(lambda: client, _unix_path(unix),
                                             timeout=timeout or None, **(tls or {}))
        else:
            assert host is not None and port is not None
            connector = reactor.connect_tcp(lambda: client, host, port, timeout=timeout or None,
                                            **(tls or {}))
        connector.add_done_callback(connected)
        if timeout:
            reactor.call_later(timeout, client.fail, f"no answer within {timeout:g}s")
        reactor.run()
        reactor.run_once(0)  # deliver a pending connection_lost
        if client.transport is not None and not client.transport.is_closing():
            client.transport.abort()
            reactor.run_once(0)
    if failure:
        raise UserError(failure[0])
    return client


def cmd_send(args: argparse.Namespace) -> int:
    messages = [m.encode() for m in args.messages or ["hello there"]]
    client = _run_client(args.host, args.port, SendClient(messages, nul=args.nul, log=out),
                         args.timeout, unix=args.unix, tls=_client_tls(args))
    if not client.ok:
        raise UserError(client.problem or "failed")
    return 0


def cmd_ack_client(args: argparse.Namespace) -> int:
    holder: List[Reactor] = []

    def ask(answer: Callable[[Optional[str]], None]) -> None:
        print("What message for the server? : ", end="", flush=True)
        read_line(holder[0], answer)

    args.unix = None
    client = _run_client(args.host, args.port, AckClient(ask, log=out), args.timeout,
                         setup=holder.append, tls=_client_tls(args))
    if not client.ok:
        raise UserError(client.problem or "failed")
    return 0


def read_line(reactor: Reactor, answer: Callable[[Optional[str]], None],
              stream: Optional[TextIO] = None) -> None:
    """Read one line of ``stream`` (standard input by default) without
    blocking the loop, then call ``answer(line)`` on the reactor thread,
    ``answer(None)`` at end of input.

    A pipe, terminal or socket is watched with ``add_reader``: no thread.  A
    regular file (or ``/dev/null``) cannot be watched (epoll refuses it: a
    file is always "ready"), so for those one daemon thread reads the line;
    a daemon, so that a client that gives up first is not kept alive by it.

    It reads one line for a one-line prompt: what arrives after the newline
    in the same read is dropped.  The descriptor is left in blocking mode
    (standard input is often a terminal shared with the shell, and
    non-blocking mode would be shared too), so each read happens only when
    the descriptor is readable, one read per readiness.
    """
    stream = stream if stream is not None else sys.stdin
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        fd = stream.fileno()
        line = bytearray()

        def readable() -> None:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            line.extend(chunk)
            end = line.find(b"\n")
            if chunk and end < 0:
                return  # a pipe may deliver a line in pieces
            reactor.remove_reader(fd)
            text = bytes(line if end < 0 else line[:end + 1])
            answer(text.decode(encoding, "replace") if text else None)

        reactor.add_reader(fd, readable)
        return
    except (OSError, ValueError, AttributeError):  # EPERM from epoll; no descriptor
        pass

    def read() -> None:
        try:
            text: Optional[str] = stream.readline() or None
        except (OSError, ValueError):
            text = None
        try:
            reactor.call_soon_threadsafe(answer, text)
        except RuntimeError:
            pass  # the client finished (and closed its reactor) without it

    threading.Thread(target=read, name="reactor-stdin", daemon=True).start()


def _udp_echo_client(args: argparse.Namespace) -> int:
    client = DatagramEchoClient(args.size, args.count, log=out)
    with Reactor() as reactor:
        client.on_done = lambda _client: reactor.stop()
        try:
            endpoint = reactor.connect_udp(lambda: client, args.host, args.port)
        except OSError as exc:
            raise UserError(f"cannot send to {args.host} port {args.port}: {exc}")
        if args.timeout:
            reactor.call_later(args.timeout, client.finish, f"no answer within {args.timeout:g}s")
        reactor.run()
        endpoint.abort()
    if not client.ok:
        raise UserError(client.problem or "failed")
    out(f"echo-client: {args.count} datagram(s) of {args.size} bytes came back intact")
    return 0


def cmd_echo_client(args: argparse.Namespace) -> int:
    if args.udp:
        return _udp_echo_client(args)
    client = _run_client(args.host, args.port,
                         EchoClient(args.size, args.count, log=out), args.timeout,
                         unix=args.unix, tls=_client_tls(args))
    if not client.ok:
        raise UserError(client.problem or "failed")
    out(f"echo-client: {args.count} record(s) of {args.size} bytes came back intact")
    return 0


# -- demo -----------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    return run_demo(args.clients, args.timeout, out, tls=args.tls)


def cmd_trace_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    return run_demo(1, args.timeout, out, trace=True)


def format_stats(stats: Dict[str, Any]) -> str:
    return ("stats: {iterations} steps, {select_time:.3f}s in select, {callback_time:.3f}s "
            "in callbacks, slowest callback {slowest_callback:.4f}s ({slowest_callback_name}), "
            "{slow_callbacks} slow; {registered} fds, {open_connections} connections, "
            "{pending_timers} timers; {bytes_in} bytes in, {bytes_out} out; "
            "{accept_errors} accept errors, {accept_pauses} pauses at the connection "
            "limit, {refused_per_host} refused per host").format(**stats)


def _print_stats_every(reactor: Reactor, seconds: float) -> None:
    def tick() -> None:
        out(format_stats(reactor.stats()))
        reactor.call_later(seconds, tick)

    reactor.call_later(seconds, tick)
