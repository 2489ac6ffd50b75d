"""Sans-IO framers: a byte stream in, whole frames out.

A TCP stream has no message boundaries: one ``send`` by the peer may arrive
in several reads, and several in one.  A framer takes the bytes as they come
(``feed(data)``) and returns the frames completed so far, keeping the rest;
``encode(frame)`` gives the bytes that send one frame.  It never touches a
socket or a clock, so it gives the same frames whatever the split, one byte
at a time included, and can be tested by feeding it bytes.

Every framer has a limit on the frame length, on by default
(``max_length``).  A frame that would pass it raises ``FrameTooLong`` as
soon as that is known, and the framer never holds more than the limit (plus
the last chunk fed while it was still undecided); it cannot be used after
that.  The frames that chunk completed before the bad one are not lost:
they are the exception's ``frames``, so that every split of a stream gives
the same frames, an error included.  ``pending`` is how many bytes of an
unfinished frame it has received, header included: a protocol's message
deadline runs while it is not zero.

``LineFramer``
    frames end at a delimiter (``b"\\n"``, ``b"\\r\\n"``, ``b"\\0"``, any
    bytes); the delimiter is not part of the frame.
``LengthPrefixFramer``
    each frame is preceded by its length, an unsigned integer of 1, 2, 4 or
    8 bytes (big-endian by default).
``NetstringFramer``
    djb's netstrings: ``<length>:<bytes>,``.
``RecordFramer``
    fixed-size records (no limit needed: the size is one).
"""

from __future__ import annotations

from typing import List, Optional

__all__ = ["Framer", "FrameTooLong", "FrameError", "IncompleteFrame", "LineFramer",
           "LengthPrefixFramer", "NetstringFramer", "RecordFramer", "DEFAULT_MAX_LENGTH"]

#: The default limit on a frame's length: 64 KiB, ample for lines and
#: messages of a request/response protocol, small enough that a peer
#: cannot make one connection buffer much.  Raise it for bulk frames.
DEFAULT_MAX_LENGTH = 65536


class FrameError(ValueError):
    """The peer sent something that is not a frame of this kind.
    ``frames`` are those completed, by the same ``feed``, before it."""

    frames: List[bytes] = []


class FrameTooLong(FrameError):
    """A frame longer than ``max_length``: ``length`` is how long it is (or
    at least is), ``limit`` the limit."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes or more, longer than the limit of "
                         f"{limit} bytes")
        self.length = length
        self.limit = limit


class IncompleteFrame(FrameError):
    """The stream ended inside a frame: ``pending`` bytes of it had come
    (the framer's ``pending``, header included).
    Framers do not raise it (they cannot see the end of the stream); a
    protocol built on one closes with it as the reason."""

    def __init__(self, pending: int) -> None:
        super().__init__(f"the stream ended {pending} bytes into a frame")
        self.pending = pending


class Framer:
    """What every framer offers; see the module docstring."""

    __slots__ = ("max_length", "_buffer", "_broken")

    def __init__(self, max_length: Optional[int]) -> None:
        if max_length is not None and max_length < 0:
            raise ValueError(f"max_length must be >= 0 or None, not {max_length!r}")
        #: The longest frame accepted; ``None`` for no limit.
        self.max_length = max_length
        self._buffer = bytearray()
        self._broken: Optional[FrameError] = None

    @property
    def pending(self) -> int:
        """Bytes received of a frame not yet complete, its header included
        (zero between frames)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> List[bytes]:
        """Take ``data``; return the frames it completed, in order.  Raises
        ``FrameTooLong`` (or ``FrameError``) when the peer broke the
        framing, with the frames completed before that as its ``frames``;
        the framer is unusable after that."""
        if self._broken is not None:
            self._broken.frames = []  # those were handed over the first time
            raise self._broken
        self._buffer += data
        frames: List[bytes] = []
        try:
            self._frames(frames)
        except FrameError as exc:
            exc.frames = frames
            self._broken = exc
            self._buffer = bytearray()  # let the memory go
            self._restart()  # and hold no frame under way
            raise
        return frames

    def take_pending(self) -> bytes:
        """Hand over (and forget) the bytes of an unfinished frame, and
        start afresh: for a protocol switching to raw data, or one that
        counts what a stream ends with as a last frame."""
        data, self._buffer = bytes(self._buffer), bytearray()
        self._restart()
        return data

    def encode(self, frame: bytes) -> bytes:  # pragma: no cover  (each framer has one)
        raise NotImplementedError

    def _frames(self, out: List[bytes]) -> None:  # pragma: no cover  (each framer has one)
        """Append the frames the buffer completes to ``out``, consuming them."""
        raise NotImplementedError

    def _restart(self) -> None:
        """Forget any state about the buffer (it was just emptied)."""

    def _check(self, length: int) -> None:
        if self.max_length is not None and length > self.max_length:
            raise FrameTooLong(length, self.max_length)


class LineFramer(Framer):
    """Frames that end at ``delimiter`` (any non-empty bytes)."""

    __slots__ = ("delimiter", "_scanned")

    def __init__(self, delimiter: bytes = b"\n",
                 max_length: Optional[int] = DEFAULT_MAX_LENGTH) -> None:
        if not delimiter:
            raise ValueError("the delimiter must not be empty")
        super().__init__(max_length)
        self.delimiter = bytes(delimiter)
        self._scanned = 0  # bytes of the buffer known to hold no delimiter

    def encode(self, frame: bytes) -> bytes:
        if self.delimiter in frame:
            raise ValueError(f"a line may not contain its delimiter {self.delimiter!r}")
        self._check(len(frame))
        return bytes(frame) + self.delimiter

    def _restart(self) -> None:
        self._scanned = 0

    def _frames(self, frames: List[bytes]) -> None:
        buffer, delimiter = self._buffer, self.delimiter
        start = 0
        # A delimiter may straddle the previous feed: look from just before it.
        search = max(0, self._scanned - len(delimiter) + 1)
        while True:
            end = buffer.find(delimiter, search)
            if end < 0:
                break
            self._check(end - start)
            frames.append(bytes(buffer[start:end]))
            start = search = end + len(delimiter)
        if start:
            del buffer[:start]
        self._scanned = len(buffer)
        # What is held may still be a frame plus the start of a delimiter.
        self._check(len(buffer) - len(delimiter) + 1)


class LengthPrefixFramer(Framer):
    """Frames preceded by their length: an unsigned integer of ``size``
    bytes (1, 2, 4 or 8) in ``byteorder``."""

    __slots__ = ("size", "byteorder", "_needed")

    def __init__(self, size: int = 4, byteorder: str = "big",
                 max_length: Optional[int] = DEFAULT_MAX_LENGTH) -> None:
        if size not in (1, 2, 4, 8):
            raise ValueError(f"size must be 1, 2, 4 or 8 bytes, not {size!r}")
        if byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}")
        super().__init__(max_length)
        self.size = size
        self.byteorder = byteorder
        self._needed: Optional[int] = None  # the frame length being waited for

    def encode(self, frame: bytes) -> bytes:
        self._check(len(frame))
        if len(frame) >= 1 << (8 * self.size):
            raise ValueError(f"a {self.size}-byte header cannot say {len(frame)} bytes")
        return len(frame).to_bytes(self.size, self.byteorder) + bytes(frame)  # type: ignore

    @property
    def pending(self) -> int:
        header = self.size if self._needed is not None else 0  # parsed, so not held
        return header + len(self._buffer)

    def _restart(self) -> None:
        self._needed = None

    def _frames(self, frames: List[bytes]) -> None:
        buffer, size = self._buffer, self.size
        start = 0
        while True:
            if self._needed is None:
                if len(buffer) - start < size:
                    break
                self._needed = int.from_bytes(buffer[start:start + size],
                                              self.byteorder)  # type: ignore[arg-type]
                self._check(self._needed)
                start += size
            if len(buffer) - start < self._needed:
                break
            frames.append(bytes(buffer[start:start + self._needed]))
            start += self._needed
            self._needed = None
        if start:
            del buffer[:start]


class NetstringFramer(Framer):
    """Netstrings: ``b"5:hello,"`` is the frame ``b"hello"``."""

    __slots__ = ("_needed",)

    def __init__(self, max_length: Optional[int] = DEFAULT_MAX_LENGTH) -> None:
        super().__init__(max_length)
        self._needed: Optional[int] = None

    def encode(self, frame: bytes) -> bytes:
        self._check(len(frame))
        return b"%d:%s," % (len(frame), frame)

    @property
    def pending(self) -> int:
        # The parsed "<length>:" is no longer held, but it was received.
        header = len(str(self._needed)) + 1 if self._needed is not None else 0
        return header + len(self._buffer)

    def _restart(self) -> None:
        self._needed = None

    def _frames(self, frames: List[bytes]) -> None:
        buffer = self._buffer
        start = 0
        while True:
            if self._needed is None:
                colon = buffer.find(b":", start)
                digits = bytes(buffer[start:colon if colon >= 0 else len(buffer)])
                if not digits.isdigit() and digits:
                    raise FrameError(f"a netstring's length must be digits, not {digits!r}")
                if digits and (len(digits) > 1 and digits.startswith(b"0")):
                    raise FrameError("a netstring's length has no leading zeros")
                if colon < 0:
                    # Still reading the length: it can only grow.
                    if digits:
                        self._check(int(digits))
                    break
                if not digits:
                    raise FrameError("a netstring starts with its length")
                self._needed = int(digits)
                self._check(self._needed)
                start = colon + 1
            if len(buffer) - start < self._needed + 1:
                break
            end = start + self._needed
            if buffer[end] != 0x2C:  # ","
                raise FrameError(f"a netstring ends with ',', not {bytes(buffer[end:end + 1])!r}")
            frames.append(bytes(buffer[start:end]))
            start = end + 1
            self._needed = None
        if start:
            del buffer[:start]


class RecordFramer(Framer):
    """Fixed-size records of ``size`` bytes (seed 2's SO_RCVLOWAT = 250)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size!r}")
        super().__init__(size)
        self.size = size

    def encode(self, frame: bytes) -> bytes:
        if len(frame) != self.size:
            raise ValueError(f"a record is {self.size} bytes, not {len(frame)}")
        return bytes(frame)

    def _frames(self, frames: List[bytes]) -> None:
        buffer, size = self._buffer, self.size
        whole = len(buffer) - len(buffer) % size
        if whole:
            frames += [bytes(buffer[i:i + size]) for i in range(0, whole, size)]
            del buffer[:whole]
