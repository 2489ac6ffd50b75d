"""Socket addresses as people read them."""

from __future__ import annotations

from typing import Any

__all__ = ["format_address"]


def format_address(address: Any) -> str:
    """``ip:port``, or ``[ip]:port`` for IPv6; anything else (a Unix
    socket's path, say) as ``str()``."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)
