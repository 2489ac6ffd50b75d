"""Addresses for people: IPv4, IPv6 and the Unix socket kinds."""

from __future__ import annotations

import pytest

from reactor.addresses import format_address


@pytest.mark.parametrize("address, shown", [
    (("127.0.0.1", 3005), "127.0.0.1:3005"),
    (("::1", 3005, 0, 0), "[::1]:3005"),
    ("/run/app.sock", "/run/app.sock"),
    (b"/run/app.sock", "/run/app.sock"),
    ("\0abstract", "@abstract"),
    (b"\0abstract", "@abstract"),
    ("", "(unnamed)"),
    (b"", "(unnamed)"),
    (None, "None"),
])
def test_format_address(address: object, shown: str) -> None:
    assert format_address(address) == shown
