"""Certificates for the TLS tests, made at run time with the openssl
command (by the demo's own helper): a self-signed one for ``localhost`` (and 127.0.0.1, ::1), and an
expired copy of it."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any, NamedTuple, Tuple

import pytest

from reactor.demo import self_signed_certificate

NO_OPENSSL = ("the openssl command makes the test certificates "
              "(.ci/run installs it; apt-get install openssl)")

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason=NO_OPENSSL)


class Certs(NamedTuple):
    cert: Path
    key: Path
    expired: Path  # the same key and names, valid until yesterday

    def server(self, expired: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.expired if expired else self.cert, self.key)
        return context

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_certs(where: Path) -> Certs:
    cert, key = self_signed_certificate(where)
    expired = where / "expired.pem"
    subprocess.run(["openssl", "x509", "-in", str(cert), "-signkey", str(key),
                    "-days", "-1", "-out", str(expired)],
                   check=True, capture_output=True, timeout=30)
    return Certs(cert, key, expired)


def handshake_in_memory(certs: Certs, app: Any, reactor: Any) -> Tuple[Any, Any, Any, Any]:
    """A server ``TLSLayer`` for ``app`` on a ``MemoryTransport``, and a
    client ``SSLObject`` that has finished its handshake with it; returns
    ``(layer, transport, client, to_server)``: what the client writes
    comes out of the ``to_server`` BIO, for the test to feed."""
    from reactor.testing import MemoryTransport
    from reactor.tls import TLSLayer

    layer = TLSLayer(app, certs.server(), server_side=True)
    transport = MemoryTransport(reactor=reactor)
    transport.connect(layer)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = certs.client().wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            layer.data_received(outgoing.read())
            incoming.write(bytes(transport.written))
            transport.written.clear()
    layer.data_received(outgoing.read())
    return layer, transport, client, outgoing
