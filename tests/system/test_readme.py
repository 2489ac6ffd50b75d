"""README.rst stays true: its commands are the ones CI runs, and its
examples work."""

from __future__ import annotations

import re
import socket
import threading

from ..procs import ROOT
from ..tlscerts import needs_openssl

README = (ROOT / "README.rst").read_text()


def code_blocks() -> list:
    return re.findall(r"\.\. code-block:: (\w+)\n\n((?:    .*\n|\n)+)", README)


def test_readme_opens_with_exactly_two_setup_commands() -> None:
    shell = [body.strip() for lang, body in code_blocks() if lang == "sh"]
    assert len(shell) == 2
    install_and_run, test = shell
    assert install_and_run == "pip install . && python -m reactor demo"
    assert test.startswith('pip install ".[test]" && ') and "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines(), ".ci/run must run the README's test command verbatim"
    assert "set -e" in ci


def python_blocks() -> list:
    return ["\n".join(line[4:] for line in body.splitlines())
            for lang, body in code_blocks() if lang == "python"]


def test_every_python_block_is_run_below() -> None:
    assert len(python_blocks()) == 9


def test_readme_protocol_example_runs() -> None:
    source = python_blocks()[0]
    # Run it for real, with run() replaced by a bounded exchange.
    source = source.replace("reactor.run()", "exchange(reactor, listener)")
    source = source.replace('print("listening on port", listener.port)', "")
    reply = []

    def exchange(reactor, listener) -> None:
        def client() -> None:
            with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
                s.sendall(b"quiet please")
                s.shutdown(socket.SHUT_WR)
                reply.append(s.recv(100))
                reply.append(s.recv(100))
        thread = threading.Thread(target=client)
        thread.start()
        while thread.is_alive():
            reactor.run_once(0.05)
        thread.join()
        for _ in range(3):
            reactor.run_once(0)
        listener.close()
        reactor.close()

    exec(compile(source, "README.rst", "exec"), {"exchange": exchange})
    assert reply == [b"QUIET PLEASE", b""]


def test_every_guarantee_names_tests_that_exist() -> None:
    section = README.split("Guarantees\n----------")[1].split("\nLayout\n")[0]
    names = re.findall(r"``(?:(test_\w+\.py))?::(test_[\w*]+)``", section)
    files = re.findall(r"``(test_\w+\.py)::", section)
    assert len(files) >= 15
    current = None
    sources = {}
    for path in (ROOT / "tests" / "reliability").glob("test_*.py"):
        sources[path.name] = path.read_text()
    for match in re.finditer(r"``(test_\w+\.py)?::(test_[\w*]+)``", section):
        current = match.group(1) or current
        pattern = "def " + re.escape(match.group(2)).replace(r"\*", r"\w*") + r"\("
        assert current in sources, current
        assert re.search(pattern, sources[current]), f"{current}::{match.group(2)}"
    assert names


def test_readme_deadline_example_says_goodbye_then_closes() -> None:
    source = python_blocks()[2]
    assert "idle_timeout=30" in source and "deadline_exceeded" in source
    namespace: dict = {}
    exec(compile(source.replace("idle_timeout=30", "idle_timeout=0.3"), "README.rst", "exec"),
         namespace)
    reactor, listener = namespace["reactor"], namespace["listener"]
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as client:
            client.setblocking(False)
            client.sendall(b"bob")
            got = b""
            for _ in range(200):  # a greeting, then silence: the goodbye and EOF
                reactor.run_once(0.01)
                try:
                    chunk = client.recv(100)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                got += chunk
        assert got == b"hello, bobbye: no data received for 0.3s\n"
    finally:
        listener.close()
        for _ in range(3):
            reactor.run_once(0)
        reactor.close()


def test_readme_add_reader_example_runs(capsys) -> None:
    source = python_blocks()[3]
    assert "add_reader" in source
    exec(compile(source, "README.rst", "exec"), {})
    assert capsys.readouterr().out == "read b'hello'\n"


def test_readme_toolkit_example_runs() -> None:
    source = python_blocks()[1]
    assert "MemoryPair" in source and "LineProtocol" in source
    exec(compile(source, "README.rst toolkit example", "exec"), {})


def test_readme_unix_example_runs() -> None:
    source = python_blocks()[4]
    assert "listen_unix" in source and "peercred" in source
    exec(compile(source, "README.rst Unix example", "exec"), {})


def test_readme_udp_example_runs() -> None:
    source = python_blocks()[5]
    assert "listen_udp" in source and "connect_udp" in source
    exec(compile(source, "README.rst UDP example", "exec"), {})


def test_readme_process_example_runs() -> None:
    source = python_blocks()[6]
    assert "spawn_process" in source and "ProcessProtocol" in source
    exec(compile(source, "README.rst process example", "exec"), {})


def test_readme_pipe_example_runs() -> None:
    source = python_blocks()[7]
    assert "connect_read_pipe" in source and "connect_write_pipe" in source
    exec(compile(source, "README.rst pipe example", "exec"), {})


@needs_openssl
def test_readme_tls_example_runs() -> None:
    source = python_blocks()[8]
    assert "ssl=server_context" in source and "ssl=client_context" in source
    exec(compile(source, "README.rst TLS example", "exec"), {})
