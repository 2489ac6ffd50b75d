"""reactor: a single-threaded event loop on the standard library's selectors.

Public names only; each lives in the module named after its concept.
"""

from .framed import LengthPrefixedProtocol, LineProtocol
from .framing import FrameTooLong, IncompleteFrame
from .listeners import Listener
from .loop import EVENT_READ, EVENT_WRITE, Handle, InternalError, IOHandler, Reactor
from .process import ProcessProtocol, ProcessTransport
from .protocols import DatagramProtocol, Protocol
from .reconnect import ReconnectingClient
from .streams import StreamTransport, TransportSettings
from .tcp import ConnectError, Connector
from .timers import Clock, MonotonicClock, TimerHandle
from .tls import TLSTransport, start_tls
from .transports import (
                         DatagramTransport,
                         DatagramTruncated,
                         DeadlineExceeded,
                         Transport,
                         WriteBufferFull,
)

__all__ = [
    "Clock",
    "ConnectError",
    "Connector",
    "DatagramProtocol",
    "DatagramTransport",
    "DatagramTruncated",
    "DeadlineExceeded",
    "EVENT_READ",
    "EVENT_WRITE",
    "FrameTooLong",
    "IncompleteFrame",
    "Handle",
    "InternalError",
    "IOHandler",
    "LengthPrefixedProtocol",
    "LineProtocol",
    "Listener",
    "MonotonicClock",
    "ProcessProtocol",
    "ProcessTransport",
    "Protocol",
    "Reactor",
    "ReconnectingClient",
    "StreamTransport",
    "TimerHandle",
    "TLSTransport",
    "Transport",
    "TransportSettings",
    "WriteBufferFull",
    "start_tls",
]

__version__ = "0.1.0"
