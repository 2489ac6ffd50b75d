"""Socket addresses as people read them."""

from __future__ import annotations

from typing import Any

__all__ = ["format_address"]


def format_address(address: Any) -> str:
    """``ip:port``, or ``[ip]:port`` for IPv6.  A Unix socket's address
    is its path, ``@name`` for a Linux abstract name (one that begins with
    NUL), or ``(unnamed)`` for a client that did not bind one.  Anything
    else as ``str()``."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(address, bytes):
        address = address.decode("utf-8", "backslashreplace")
    if isinstance(address, str):
        if not address:
            return "(unnamed)"
        if address.startswith("\0"):
            return "@" + address[1:]
    return str(address)
