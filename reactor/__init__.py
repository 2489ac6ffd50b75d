"""reactor: a single-threaded event loop on the standard library's selectors.

Public names only; each lives in the module named after its concept.
"""

from .loop import Handle, Reactor
from .protocols import Protocol
from .servers import ConnectError, Connector, Listener
from .timers import Clock, MonotonicClock, TimerHandle
from .transports import Transport

__all__ = [
    "Clock",
    "ConnectError",
    "Connector",
    "Handle",
    "Listener",
    "MonotonicClock",
    "Protocol",
    "Reactor",
    "TimerHandle",
    "Transport",
]

__version__ = "0.1.0"
